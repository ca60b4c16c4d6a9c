"""Roundcube (Debian's) on php-fpm, behind the nginx of roles/web.py at
https://webmail.<domain>/ for every domain; and, in a pool of its own, the
script that serves mail client settings (autoconfig, autodiscover, Apple profiles).

Roundcube talks IMAP and submission to this host's own Dovecot and Postfix over
TLS, with the users' own accounts. Its database is SQLite (Debian's dbconfig) or,
with `webmail: {database: postgresql}` in the data, PostgreSQL on this host.
Its secret key is made here on the host once and kept across deploys; it never
leaves the host. Password changes go to `mailstack-password` (roles/dovecot.py),
which wants the current password, and survive the next deploy.
"""
import json

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.facts.systemd import SystemdStatus
from pyinfra.operations import files, server, systemd

from mailstack.clients import ADDRESS, client_settings
from roles import Service, release
from roles.dovecot import PASSWORD_PORT

DSN_FILE = "/etc/roundcube/mailstack-db.inc.php"
PGSQL_SETUP = "/usr/local/sbin/mailstack-roundcube-pgsql"
ROUNDCUBE_SOCKET = "/run/php/roundcube.sock"
CLIENTS_SOCKET = "/run/php/mailstack-clients.sock"
CLIENTS_PHP = "/usr/share/mailstack/clients.php"
SECRET = "/etc/roundcube/mailstack-secret.inc.php"


class Webmail(Service):
    name = "webmail"
    PACKAGES = ("dbconfig-sqlite3", "roundcube-core", "roundcube-sqlite3", "roundcube-plugins")
    POSTGRESQL = ("postgresql", "roundcube-pgsql")
    debconf = {"roundcube-core": [f"roundcube-core roundcube/{line}" for line in (
        "dbconfig-install boolean true", "database-type select sqlite3",
        "db/dbname string roundcube", "db/basepath string /var/lib/dbconfig-common/sqlite3/roundcube",
        "reconfigure-webserver multiselect", "restart-webserver boolean false",
        "language select en_US")]}

    def packages(self):
        postgresql = host.data.mail.webmail.database == "postgresql"
        # php-fpm named first: otherwise apt satisfies Roundcube's "php" with Apache's module.
        return [release().php_fpm, *self.PACKAGES, *(self.POSTGRESQL if postgresql else ())]

    def configure(self):
        mail = host.data.mail
        postgresql = mail.webmail.database == "postgresql"
        if postgresql:
            self.template(PGSQL_SETUP, mode="755", dsn_file=DSN_FILE, watch=False)
            ready = host.get_fact(Command, f"{PGSQL_SETUP} check 2>/dev/null || true")
            server.shell(name="webmail: PostgreSQL role, database and schema",
                         commands=[PGSQL_SETUP], _if=lambda: ready != "ready")
        # Roundcube's des_key: made here once, kept across deploys, never in the repo.
        server.shell(
            name="webmail: Roundcube secret key",
            commands=[f"umask 027 && key=$(head -c18 /dev/urandom | base64) && "
                      f"printf '<?php\\n$config[\"des_key\"] = \"%s\";\\n' \"$key\" > {SECRET} && "
                      f"chgrp www-data {SECRET}"],
            _if=lambda missing=host.get_fact(File, SECRET) is None: missing)
        # Roundcube reads its configuration on every request: nothing to restart.
        self.template("/etc/roundcube/config.inc.php", group="www-data", mode="640",
                      secret=SECRET, dsn_file=DSN_FILE if postgresql else None, watch=False)
        for plugin in ("managesieve", "markasjunk", "password"):
            self.template(f"/etc/roundcube/plugins/{plugin}/config.inc.php", group="www-data",
                          mode="640", password_port=PASSWORD_PORT, watch=False)
        # Password changes no longer go through sudo (earlier versions had this rule).
        files.file(name="webmail: no sudo rule for www-data",
                   path="/etc/sudoers.d/mailstack-password", present=False)
        self.put("/var/lib/mailstack/clients.json",
                 json.dumps(client_settings(mail), indent=1, sort_keys=True),
                 create_remote_dir=True, watch=False)
        self.template(CLIENTS_PHP, mode="644", address_placeholder=ADDRESS, watch=False)
        # php-fpm: only these pools, not Debian's default one.
        pools = f"/etc/php/{release().php}/fpm/pool.d"
        self.changed.append(files.file(name="webmail: no default php-fpm pool",
                                       path=f"{pools}/www.conf", present=False))
        self.template(f"{pools}/roundcube.conf", src="/etc/php/fpm/pool.d/roundcube.conf",
                      socket=ROUNDCUBE_SOCKET, upload=mail.limits.message_size)
        self.template(f"{pools}/mailstack-clients.conf", src="/etc/php/fpm/pool.d/mailstack-clients.conf",
                      socket=CLIENTS_SOCKET)

    def activate(self):
        php = release().php
        self.restart_on_change(f"php{php}-fpm", check=f"php-fpm{php} -t")
        # PostgreSQL serves Roundcube only: running while chosen, stopped (its data
        # kept) once the data switches back to SQLite.
        postgresql = host.data.mail.webmail.database == "postgresql"
        if postgresql or "postgresql.service" in host.get_fact(SystemdStatus):
            systemd.service(name="webmail: PostgreSQL", service="postgresql",
                            running=postgresql, enabled=postgresql)


webmail = Webmail()

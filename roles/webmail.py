"""Roundcube (Debian's) on php-fpm, behind the nginx of roles/web.py at
https://webmail.<domain>/ for every domain; and, in a pool of its own, the
script that serves mail client settings (autoconfig, autodiscover, Apple profiles).

Roundcube talks IMAP and submission to this host's own Dovecot and Postfix over
TLS, with the users' own accounts. Its database is SQLite (Debian's dbconfig) or,
with `webmail: {database: postgresql}` in the data, PostgreSQL on this host.
Its secret key is made here on the host once and kept across deploys; it never
leaves the host. Password changes go through `mailstack-password` (roles/dovecot.py)
and survive the next deploy.
"""
import json
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.clients import ADDRESS, client_settings
from roles import template

PHP = "8.2"
# php-fpm named first: otherwise apt satisfies Roundcube's "php" with Apache's module.
PACKAGES = [f"php{PHP}-fpm", "dbconfig-sqlite3", "roundcube-core", "roundcube-sqlite3",
            "roundcube-plugins", "sudo"]
DEBCONF = [f"roundcube-core roundcube/{line}" for line in (
    "dbconfig-install boolean true", "database-type select sqlite3",
    "db/dbname string roundcube", "db/basepath string /var/lib/dbconfig-common/sqlite3/roundcube",
    "reconfigure-webserver multiselect", "restart-webserver boolean false",
    "language select en_US")]
POSTGRESQL = ["postgresql", "roundcube-pgsql"]
DSN_FILE = "/etc/roundcube/mailstack-db.inc.php"
PGSQL_SETUP = "/usr/local/sbin/mailstack-roundcube-pgsql"
ROUNDCUBE_SOCKET = "/run/php/roundcube.sock"
CLIENTS_SOCKET = "/run/php/mailstack-clients.sock"
CLIENTS_PHP = "/usr/share/mailstack/clients.php"
SECRET = "/etc/roundcube/mailstack-secret.inc.php"


def packages():
    return PACKAGES + (POSTGRESQL if host.data.mail.webmail.database == "postgresql" else [])


def apply():
    mail = host.data.mail
    postgresql = mail.webmail.database == "postgresql"
    if postgresql:
        template("webmail", PGSQL_SETUP, mode="755", dsn_file=DSN_FILE)
        ready = host.get_fact(Command, f"{PGSQL_SETUP} check 2>/dev/null || true")
        server.shell(name="webmail: PostgreSQL role, database and schema", commands=[PGSQL_SETUP],
                     _if=lambda: ready != "ready")
    # Roundcube's des_key: made here once, kept across deploys, never in the repo.
    server.shell(
        name="webmail: Roundcube secret key",
        commands=[f"umask 027 && key=$(head -c18 /dev/urandom | base64) && "
                  f"printf '<?php\\n$config[\"des_key\"] = \"%s\";\\n' \"$key\" > {SECRET} && "
                  f"chgrp www-data {SECRET}"],
        _if=lambda missing=host.get_fact(File, SECRET) is None: missing)
    # Roundcube reads its configuration on every request: nothing to restart.
    template("webmail", "/etc/roundcube/config.inc.php", group="www-data", mode="640", secret=SECRET,
             dsn_file=DSN_FILE if postgresql else None)
    for plugin in ("managesieve", "markasjunk", "password"):
        template("webmail", f"/etc/roundcube/plugins/{plugin}/config.inc.php", group="www-data",
                 mode="640")
    template("webmail", "/etc/sudoers.d/mailstack-password", mode="440")
    files.put(name="webmail: client settings", dest="/var/lib/mailstack/clients.json",
              src=StringIO(json.dumps(client_settings(mail), indent=1, sort_keys=True)),
              create_remote_dir=True, mode="644")
    template("webmail", CLIENTS_PHP, mode="644", address_placeholder=ADDRESS)
    pools = [
        # Debian's default pool is not used.
        files.file(name="webmail: no default php-fpm pool", path=f"/etc/php/{PHP}/fpm/pool.d/www.conf",
                   present=False),
        template("webmail", f"/etc/php/{PHP}/fpm/pool.d/roundcube.conf", socket=ROUNDCUBE_SOCKET,
                 upload=mail.limits.message_size),
        template("webmail", f"/etc/php/{PHP}/fpm/pool.d/mailstack-clients.conf", socket=CLIENTS_SOCKET),
    ]
    server.shell(name="webmail: php-fpm configuration check", commands=[f"php-fpm{PHP} -t"],
                 _if=any_changed(*pools))
    systemd.service(name="webmail: php-fpm", service=f"php{PHP}-fpm", running=True, enabled=True,
                    restarted=True, _if=any_changed(*pools))

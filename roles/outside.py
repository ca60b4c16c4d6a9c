"""Lab only: the rest of the internet. A plain Postfix for the outside domain
(example.test) that delivers to MX hosts found in DNS, like any sender out there,
and keeps every message it receives in one Maildir (user `catchall`). It is also
a storage provider the operator rents (account `offsite`, SFTP and Borg over SSH):
the lab's second backup copy (backup.repositories)."""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.backup import clients
from mailstack.dns import mta_sts_text
from mailstack.secrets import backup_secrets
from roles import template
from roles.postfix import DEBCONF  # noqa: F401  (same package, same answers)

# dkimpy and pyspf check what mailstack's mail looks like to a receiver; nginx serves
# the outside domain's MTA-STS policy.
PACKAGES = ["postfix", "swaks", "python3-dkim", "python3-spf", "nginx-light", "borgbackup"]
# outside's certificate (made by labctl, trusted by the lab's hosts).
TLS_CERT, TLS_KEY = "/etc/ssl/mailstack/outside.pem", "/etc/ssl/mailstack/outside.key"


def apply():
    server.user(name="outside: catchall user", user="catchall", shell="/usr/sbin/nologin")
    tls = [
        files.put(name="outside: TLS certificate", src=host.data.acme_api_cert, dest=TLS_CERT,
                  create_remote_dir=True),
        files.put(name="outside: TLS key", src=host.data.acme_api_key, dest=TLS_KEY, mode="600"),
    ]
    changed = tls + [
        files.put(name="outside: /etc/mailname", src=StringIO(host.data.fqdn + "\n"),
                  dest="/etc/mailname"),
        template("outside", "/etc/postfix/main.cf", tls_cert=TLS_CERT, tls_key=TLS_KEY),
        template("outside", "/etc/aliases"),
    ]
    server.shell(name="outside: newaliases", commands=["newaliases"], _if=changed[-1].did_change)
    server.shell(name="outside: check postfix configuration", commands=["postfix check"],
                 _if=any_changed(*changed))
    systemd.service(name="outside: postfix", service="postfix", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))

    web = tls + [
        files.link(name="outside: no default site", path="/etc/nginx/sites-enabled/default",
                   present=False),
        files.put(name="outside: MTA-STS policy",
                  src=StringIO(mta_sts_text("enforce", [host.data.fqdn], max_age=86400)),
                  dest="/var/www/mta-sts/.well-known/mta-sts.txt", create_remote_dir=True),
        template("outside", "/etc/nginx/conf.d/mta-sts.conf", tls_cert=TLS_CERT, tls_key=TLS_KEY),
    ]
    systemd.service(name="outside: nginx", service="nginx", running=True, enabled=True,
                    restarted=True, _if=any_changed(*web))

    # The storage provider: one account, each mail host's backup key registered.
    mail = host.data.mail
    server.user(name="outside: offsite storage account", user="offsite", home="/srv/offsite",
                shell="/bin/sh", public_keys=[backup_secrets(mail.name, h.fqdn)["ssh_public_key"]
                                               for h in clients(mail)])

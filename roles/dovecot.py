"""Dovecot on the primary MX: Maildir storage, IMAP and POP3 per mailbox, LMTP
delivery from Postfix."""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.dovecot import SERVICES, VMAIL_UID, passwd_file, users_file
from roles import template, tls

PACKAGES = ["dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"]


def apply():
    mail = host.data.mail
    server.group(name="dovecot: vmail group", group="vmail", gid=VMAIL_UID, system=True)
    server.user(name="dovecot: vmail user", user="vmail", uid=VMAIL_UID, group="vmail",
                home="/var/vmail", shell="/usr/sbin/nologin", system=True, create_home=False)
    files.directory(name="dovecot: /var/vmail", path="/var/vmail", user="vmail", group="vmail",
                    mode="750")
    changed = [template("dovecot", "/etc/dovecot/dovecot.conf", tls_cert=tls.CERT, tls_key=tls.KEY)]
    # Password files hold hashes: readable by Dovecot's auth process only.
    for service in SERVICES:
        changed.append(files.put(name=f"dovecot: passwd.{service}",
                                 src=StringIO(passwd_file(mail, service)),
                                 dest=f"/etc/dovecot/passwd.{service}",
                                 user="root", group="dovecot", mode="640"))
    changed.append(files.put(name="dovecot: users", src=StringIO(users_file(mail)),
                             dest="/etc/dovecot/users", user="root", group="dovecot", mode="640"))
    server.shell(name="dovecot: check configuration", commands=["doveconf -n >/dev/null"],
                 _if=any_changed(*changed))
    systemd.service(name="dovecot: service", service="dovecot", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))

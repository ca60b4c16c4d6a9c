"""Dovecot on the primary MX: Maildir storage, IMAP and POP3 per mailbox, LMTP
delivery, quotas, Sieve/ManageSieve, retention and recovery of deleted mail."""
from io import StringIO

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.dovecot import (PASSWORD_CHANGES, QUOTA_STATUS_PORT, SERVICES, VMAIL_UID,
                               passwd_file, password_changes, retention_file, users_file)
from roles import template, tls

PACKAGES = ["dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd",
            "dovecot-sieve", "dovecot-managesieved"]


def data_file(name, content, mode="640"):
    # Password files hold hashes: readable by Dovecot's auth process only.
    return files.put(name=f"dovecot: {name}", src=StringIO(content), dest=f"/etc/dovecot/{name}",
                     user="root", group="dovecot", mode=mode)


def apply():
    mail = host.data.mail
    server.group(name="dovecot: vmail group", group="vmail", gid=VMAIL_UID, system=True)
    server.user(name="dovecot: vmail user", user="vmail", uid=VMAIL_UID, group="vmail",
                home="/var/vmail", shell="/usr/sbin/nologin", system=True, create_home=False)
    files.directory(name="dovecot: /var/vmail", path="/var/vmail", user="vmail", group="vmail",
                    mode="750")
    # Passwords users changed on this host (mailstack-password) stay changed.
    changes = password_changes(host.get_fact(Command, f"cat {PASSWORD_CHANGES} 2>/dev/null || true") or "")
    template("dovecot", "/usr/local/sbin/mailstack-password", mode="755", changes=PASSWORD_CHANGES,
             services=SERVICES)
    changed = [
        template("dovecot", "/etc/dovecot/dovecot.conf", tls_cert=tls.CERT, tls_key=tls.KEY,
                 vmail_uid=VMAIL_UID, quota_status_port=QUOTA_STATUS_PORT),
        template("dovecot", "/usr/local/lib/mailstack/quota-warning", mode="755"),
        *[data_file(f"passwd.{s}", passwd_file(mail, s, changes)) for s in SERVICES],
        data_file("users", users_file(mail)),
    ]
    data_file("retention", retention_file(mail), mode="644")
    # Dovecot (as vmail) compiles the global learning scripts on first use and
    # keeps the binaries beside them.
    files.directory(name="dovecot: global sieve directory", path="/var/lib/mailstack/sieve",
                    user="root", group="vmail", mode="775")
    learn = [template("dovecot", f"/var/lib/mailstack/sieve/{name}", mode=mode)
             for name, mode in (("rspamd-learn", "755"), ("report-spam.sieve", "644"),
                                ("report-ham.sieve", "644"), ("spam-to-junk.sieve", "644"))]
    template("dovecot", "/usr/local/sbin/mailstack-expire", mode="755")
    template("dovecot", "/usr/local/sbin/mailstack-undelete", mode="755")
    units = [template("dovecot", f"/etc/systemd/system/mailstack-expire.{u}")
             for u in ("service", "timer")]
    changed += learn
    server.shell(name="dovecot: check configuration", commands=["doveconf -n >/dev/null"],
                 _if=any_changed(*changed))
    systemd.service(name="dovecot: service", service="dovecot", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))
    systemd.daemon_reload(name="dovecot: systemd reload", _if=any_changed(*units))
    systemd.service(name="dovecot: retention timer", service="mailstack-expire.timer",
                    running=True, enabled=True)

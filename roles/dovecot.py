"""Dovecot on the primary MX: Maildir storage, IMAP and POP3 per mailbox, LMTP
delivery, quotas, Sieve/ManageSieve, retention and recovery of deleted mail,
password changes by the users themselves (mailstack-password), the mail of
offboarded people kept aside until it is due (mailstack-offboarded), and mailboxes
brought over from another provider (mailstack-migrate)."""
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from mailstack.dovecot import (QUOTA_STATUS_PORT, VMAIL_UID, offboarded_settings, passwd_file,
                               retention_file, shared_settings, users_file)
from mailstack.host.offboarded import SETTINGS as OFFBOARDED
from mailstack.host.shared import SETTINGS as SHARED
from mailstack.host.password import CHANGES, PASSWD, SERVICES, parse_changes
from mailstack.monitoring import DOVECOT_STATS_PORT
# Roundcube's password changes (poppassd protocol, roles/webmail.py), on loopback.
PASSWORD_PORT = 106
from roles import Service, release
from roles.tls import CERT, KEY


# Every user with a session who is no longer in the users file (user names come from
# Dovecot, each quoted; a name is looked up as the whole first field).
KICK_REMOVED = ("doveadm who -1 | awk 'NR > 1 {print $1}' | sort -u | while read -r u; do "
                "awk -F: -v u=\"$u\" '$1 == u {found = 1} END {exit !found}' /etc/dovecot/users "
                "|| doveadm kick \"$u\"; done")

class Dovecot(Service):
    name = "dovecot"
    PACKAGES = ("dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd",
                "dovecot-sieve", "dovecot-managesieved")

    def packages(self):
        # 7-Zip makes offboarding exports a client opens anywhere.
        return [*self.PACKAGES, release().archiver]

    def configure(self):
        mail = host.data.mail
        server.group(name="dovecot: vmail group", group="vmail", gid=VMAIL_UID, system=True)
        server.user(name="dovecot: vmail user", user="vmail", uid=VMAIL_UID, group="vmail",
                    home="/var/vmail", shell="/usr/sbin/nologin", system=True, create_home=False)
        files.directory(name="dovecot: /var/vmail", path="/var/vmail", user="vmail",
                        group="vmail", mode="750")
        # Passwords users changed on this host (mailstack-password) stay changed.
        changes = parse_changes(host.get_fact(Command, f"cat {CHANGES} 2>/dev/null || true") or "")
        self.program("mailstack-password")
        # Dovecot's own statistics, where a monitoring host reads them.
        stats_port = DOVECOT_STATS_PORT if mail.hosts_with("monitoring") else None
        self.template("/etc/dovecot/dovecot.conf", tls_cert=CERT, tls_key=KEY,
                      vmail_uid=VMAIL_UID, quota_status_port=QUOTA_STATUS_PORT, stats_port=stats_port)
        self.program("mailstack-quota-warning")
        # Mailboxes brought over from an old provider (mailstack migrate).
        self.program("mailstack-migrate")
        # Until 2026-12 the warning was a shell script here.
        files.file(name="dovecot: old quota-warning script", present=False,
                   path="/usr/local/lib/mailstack/quota-warning")
        # Password files hold hashes: readable by Dovecot's auth process only. Dovecot
        # reads a passwd-file again when it changes: a person added or a password
        # changed restarts nothing (a restart would end every open IMAP session).
        for service in SERVICES:
            self.put(PASSWD.format(service=service), passwd_file(mail, service, changes),
                     group="dovecot", mode="640", watch=False)
        self.users = self.put("/etc/dovecot/users", users_file(mail, release().dovecot),
                              group="dovecot", mode="640", watch=False)
        self.put("/etc/dovecot/retention", retention_file(mail), group="dovecot", watch=False)
        self.program("mailstack-offboarded")
        self.offboarded = self.put(OFFBOARDED, offboarded_settings(mail), mode="600", watch=False,
                                   create_remote_dir=True)
        self.program("mailstack-shared")
        # The reports that reached the reporting address, for `mailstack reports`.
        self.program("mailstack-reports")
        self.shared = self.put(SHARED, shared_settings(mail), mode="600", watch=False,
                               create_remote_dir=True)
        # Dovecot (as vmail) compiles the global learning scripts on first use and
        # keeps the binaries beside them.
        files.directory(name="dovecot: global sieve directory", path="/var/lib/mailstack/sieve",
                        user="root", group="vmail", mode="775")
        self.template("/usr/local/sbin/mailstack-expire", mode="755", watch=False)
        self.template("/usr/local/sbin/mailstack-undelete", mode="755", watch=False)
        for name, mode in (("rspamd-learn", "755"), ("report-spam.sieve", "644"),
                           ("report-ham.sieve", "644"), ("spam-to-junk.sieve", "644")):
            self.template(f"/var/lib/mailstack/sieve/{name}", mode=mode)

    def activate(self):
        self.restart_on_change("dovecot", check="doveconf -n >/dev/null")
        self.units("mailstack-expire.service", "mailstack-expire.timer",
                   start=["mailstack-expire.timer"])
        self.units("mailstack-password.socket", "mailstack-password@.service",
                   start=["mailstack-password.socket"], port=PASSWORD_PORT)
        # A mailbox removed from the data: its sessions still open end now.
        server.shell(name="dovecot: sessions of removed mailboxes end",
                     commands=[KICK_REMOVED], _if=self.users.did_change)
        # After Dovecot took the new users file: homes of offboarded mailboxes move
        # aside, restored ones come back.
        server.shell(name="dovecot: offboarded mailboxes aside, restored ones back",
                     commands=["mailstack-offboarded apply"], _if=self.offboarded.did_change)
        # Shared mailboxes' folders and rights as the data says, once Dovecot knows them.
        server.shell(name="dovecot: shared mailboxes' folders and rights",
                     commands=["mailstack-shared apply"], _if=self.shared.did_change)
        self.units("mailstack-offboarded.service", "mailstack-offboarded.timer",
                   start=["mailstack-offboarded.timer"])


dovecot = Dovecot()

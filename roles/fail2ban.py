"""fail2ban (Debian's) on every host of the mail system: a client that fails to log
in `fail2ban.maxretry` times within `fail2ban.findtime` is refused on every port for
`fail2ban.bantime` (nftables). Jails: SSH everywhere; on the primary, Postfix SASL
(submission), Dovecot (IMAP, POP3, ManageSieve), Roundcube's logins and nginx's
login rate limit. The system's own hosts and loopback (Roundcube's IMAP logins
come from there) are never banned, nor blocked by sshd's own penalties (Debian 13).
"""
import ipaddress

from pyinfra import host
from pyinfra.operations import files

from roles import Service, release

# Roundcube logs every failed login here (log_logins), also those its own rate limit
# turned away; errors.log has only those that reached IMAP.
ROUNDCUBE_LOG = "/var/log/roundcube/userlogins.log"
SSHD_PENALTIES = "/etc/ssh/sshd_config.d/mailstack-penalties.conf"


class Fail2ban(Service):
    name = "fail2ban"
    # python3-systemd: the journal backend (Postfix and Dovecot log only there).
    PACKAGES = ("fail2ban", "python3-systemd", "nftables")

    def configure(self):
        mail = host.data.mail
        primary = "primary_mx" in host.groups
        if primary:
            # The jail needs the file before Roundcube's first failure writes it.
            files.file(name=f"fail2ban: {ROUNDCUBE_LOG}", path=ROUNDCUBE_LOG, user="www-data",
                       group="www-data", mode="644", touch=False)
        ignore = ["127.0.0.1/8", "::1", *[h.address for h in mail.hosts], *mail.firewall.ignore]
        # OpenSSH 9.8+ blocks addresses by itself (PerSourcePenalties): the addresses
        # fail2ban never bans (the operator's deploys, the backup clients) it never
        # blocks either. Seen: the operator's deploy refused after an upgrade.
        exempt = ",".join(sorted({str(ipaddress.ip_network(a, strict=False)) for a in ignore}))
        self.sshd = self.put(SSHD_PENALTIES, "# mailstack: never blocked by sshd (fail2ban's ignore list)\n"
                             f"PerSourcePenaltyExemptList {exempt}\n", watch=False) \
            if release().sshd_penalties else \
            files.file(name=f"fail2ban: no {SSHD_PENALTIES}", path=SSHD_PENALTIES, present=False)
        self.template("/etc/fail2ban/jail.d/mailstack.local", primary=primary, ignore=ignore,
                      roundcube_log=ROUNDCUBE_LOG)
        # Debian's fail2ban 1.0 warns at every start unless this is set.
        self.put("/etc/fail2ban/fail2ban.d/mailstack.local", "[Definition]\nallowipv6 = auto\n")
        # Dovecot 2.4's failed logins, which Debian 13's filter misses.
        dovecot24 = primary and release().dovecot == "2.4"
        if dovecot24:
            self.template("/etc/fail2ban/filter.d/dovecot.local")
        else:
            self.changed.append(files.file(name="fail2ban: no Dovecot 2.4 filter",
                                           path="/etc/fail2ban/filter.d/dovecot.local", present=False))

    def activate(self):
        self.restart_on_change("fail2ban", check="fail2ban-client --test >/dev/null")
        self.restart_on_change("ssh", check="sshd -t", reload=True, changed=[self.sshd])


fail2ban = Fail2ban()

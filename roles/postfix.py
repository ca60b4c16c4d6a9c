"""Postfix on the MX hosts.

Primary: inbound mail for every domain of the model, handed to Dovecot over LMTP;
submission on 587 and 465 for authenticated users.
Backup: accepts mail for exactly the addresses the primary accepts, with the same
checks (rspamd, size, the primary's quota answer while it is up), queues it while
the primary is away and relays it there over verified TLS when it returns.
With a smarthost (relay: in the data) the primary sends all mail to the internet
through it, over verified TLS, logged in with the password read at deploy time.
"""
import os

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.dovecot import QUOTA_STATUS_PORT
from mailstack.host.upgrade import UPGRADING
from mailstack.postfix import (relay_recipients, sasl_passwords, sender_logins, virtual_aliases,
                               virtual_mailboxes)
from mailstack.releases import RELEASES
from roles import Service, release
from roles.rspamd import MILTER
from roles.tls import CERT, KEY
from roles.tlsrpt import SOCKET as TLSRPT_SOCKET
from roles.tlsrpt import enabled as tlsrpt_enabled


class Postfix(Service):
    name = "postfix"
    # postfix-mta-sts-resolver: Debian's defaults (127.0.0.1:8461, sqlite cache) are ours.
    PACKAGES = ("postfix", "postfix-mta-sts-resolver")
    # Without this the package writes its own main.cf (and asks questions).
    debconf = {"postfix": ["postfix postfix/main_mailer_type select No configuration"]}
    # The smarthost's login, a table in /etc/postfix (root only, its .db too).
    SASL_PASSWD = "sasl_passwd"

    def packages(self):
        # Postfix's SASL client needs Cyrus' PLAIN and LOGIN mechanisms for a smarthost.
        return [*self.PACKAGES, *(["libsasl2-modules"] if self.relay_login() else [])]

    @staticmethod
    def relay_login():
        """The smarthost this host logs in to (the primary's), else None."""
        relay = host.data.mail.relay if "primary_mx" in host.groups else None
        return relay if relay and relay.username else None

    def postmap(self, name, content, mode="644"):
        """A hash: table (main.cf names them so), its .db made with the source's mode."""
        table = self.put(f"/etc/postfix/{name}", content, mode=mode)
        server.shell(name=f"postfix: postmap {name}",
                     commands=[f"umask 077 && postmap hash:/etc/postfix/{name} && "
                               f"chmod {mode} /etc/postfix/{name}.db"],
                     _if=table.did_change)

    def configure(self):
        mail = host.data.mail
        primary = "primary_mx" in host.groups
        self.put("/etc/mailname", host.data.fqdn + "\n")
        # The deploy in the middle of `mailstack upgrade` keeps Postfix's ports closed
        # (it would take mail before Dovecot runs); the host's `mailstack-upgrade
        # finish` removes the line (postconf -X), leaving what a normal deploy renders.
        closed = os.environ.get(UPGRADING) == host.name
        self.template("/etc/postfix/main.cf", tls_cert=CERT, tls_key=KEY,
                      quota_status_port=QUOTA_STATUS_PORT, milter=MILTER, primary=primary,
                      backup_mx=[h.address for h in mail.hosts_with("backup_mx")],
                      tlsrpt_socket=TLSRPT_SOCKET if tlsrpt_enabled() else None, closed=closed,
                      sasl_passwd=self.SASL_PASSWD)
        relay = mail.relay if primary else None
        self.template("/etc/postfix/master.cf", primary=primary, relay=relay)
        if primary:
            self.postmap("virtual_mailboxes", virtual_mailboxes(mail))
            self.postmap("virtual_aliases", virtual_aliases(mail))
            self.postmap("sender_logins", sender_logins(mail))
        else:
            self.postmap("relay_recipients", relay_recipients(mail))
        if self.relay_login():
            self.postmap(self.SASL_PASSWD, sasl_passwords(mail.relay, host.data.relay_password),
                         mode="600")
        else:     # no smarthost login (any more): no password left behind
            for suffix in ("", ".db"):
                path = f"/etc/postfix/{self.SASL_PASSWD}{suffix}"
                files.file(name=f"postfix: no {path}", path=path, present=False)
        # Mail for root and other local accounts goes to the postmaster.
        aliases = self.template("/etc/aliases")
        server.shell(name="postfix: newaliases", commands=["newaliases"], _if=aliases.did_change)
        # The wait for rspamd goes to the unit that runs Postfix on this release (an
        # upgraded host's other one goes).
        unit = release().postfix_unit
        others = sorted({r.postfix_unit for r in RELEASES.values()} - {unit})
        self.boot_order = [self.template(f"/etc/systemd/system/{unit}.service.d/mailstack.conf",
                                         src="/etc/systemd/system/postfix@-.service.d/mailstack.conf",
                                         milter=MILTER, watch=False)] + [
            files.file(name=f"postfix: no {name} drop-in", present=False,
                       path=f"/etc/systemd/system/{name}.service.d/mailstack.conf") for name in others]
        # With TLS-RPT, MTA-STS policies carry what Postfix reports about them.
        self.sts_resolver = self.template("/etc/mta-sts-daemon.yml", watch=False) \
            if tlsrpt_enabled() else None

    def activate(self):
        systemd.daemon_reload(name="postfix: systemd reload", _if=any_changed(*self.boot_order))
        systemd.service(name="postfix: MTA-STS resolver", service="postfix-mta-sts-resolver",
                        running=True, enabled=True)
        if self.sts_resolver:
            self.restart_on_change("postfix-mta-sts-resolver", changed=[self.sts_resolver])
        self.restart_on_change("postfix", check="postfix check")


postfix = Postfix()

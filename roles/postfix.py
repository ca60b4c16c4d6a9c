"""Postfix on the MX hosts.

Primary: inbound mail for every domain of the model, handed to Dovecot over LMTP;
submission on 587 and 465 for authenticated users.
Backup: accepts mail for exactly the addresses the primary accepts, with the same
checks (rspamd, size, the primary's quota answer while it is up), queues it while
the primary is away and relays it there over verified TLS when it returns.
"""
from pyinfra import host
from pyinfra.operations import server, systemd

from mailstack.dovecot import QUOTA_STATUS_PORT
from mailstack.postfix import relay_recipients, sender_logins, virtual_aliases, virtual_mailboxes
from roles import Service
from roles.rspamd import MILTER
from roles.tls import CERT, KEY


class Postfix(Service):
    name = "postfix"
    # postfix-mta-sts-resolver: Debian's defaults (127.0.0.1:8461, sqlite cache) are ours.
    PACKAGES = ("postfix", "postfix-mta-sts-resolver")
    # Without this the package writes its own main.cf (and asks questions).
    debconf = {"postfix": ["postfix postfix/main_mailer_type select No configuration"]}

    def postmap(self, name, content):
        table = self.put(f"/etc/postfix/{name}", content)
        server.shell(name=f"postfix: postmap {name}", commands=[f"postmap /etc/postfix/{name}"],
                     _if=table.did_change)

    def configure(self):
        mail = host.data.mail
        primary = "primary_mx" in host.groups
        self.put("/etc/mailname", host.data.fqdn + "\n")
        self.template("/etc/postfix/main.cf", tls_cert=CERT, tls_key=KEY,
                      quota_status_port=QUOTA_STATUS_PORT, milter=MILTER, primary=primary,
                      backup_mx=[h.address for h in mail.hosts_with("backup_mx")])
        self.template("/etc/postfix/master.cf", primary=primary)
        if primary:
            self.postmap("virtual_mailboxes", virtual_mailboxes(mail))
            self.postmap("virtual_aliases", virtual_aliases(mail))
            self.postmap("sender_logins", sender_logins(mail))
        else:
            self.postmap("relay_recipients", relay_recipients(mail))
        # Mail for root and other local accounts goes to the postmaster.
        aliases = self.template("/etc/aliases")
        server.shell(name="postfix: newaliases", commands=["newaliases"], _if=aliases.did_change)
        self.boot_order = self.template("/etc/systemd/system/postfix@-.service.d/mailstack.conf",
                                        milter=MILTER, watch=False)

    def activate(self):
        systemd.daemon_reload(name="postfix: systemd reload", _if=self.boot_order.did_change)
        systemd.service(name="postfix: MTA-STS resolver", service="postfix-mta-sts-resolver",
                        running=True, enabled=True)
        self.restart_on_change("postfix", check="postfix check")


postfix = Postfix()

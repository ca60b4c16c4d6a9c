"""Postfix on the MX hosts.

Primary: inbound mail for every domain of the model, handed to Dovecot over LMTP;
submission on 587 and 465 for authenticated users.
Backup: accepts mail for exactly the addresses the primary accepts, with the same
checks (rspamd, size, the primary's quota answer while it is up), queues it while
the primary is away and relays it there over verified TLS when it returns.
"""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.dovecot import QUOTA_STATUS_PORT
from mailstack.postfix import relay_recipients, sender_logins, virtual_aliases, virtual_mailboxes
from roles import rspamd, template, tls

# postfix-mta-sts-resolver: Debian's defaults (127.0.0.1:8461, sqlite cache) are ours.
PACKAGES = ["postfix", "postfix-mta-sts-resolver"]
# Without this the package writes its own main.cf (and asks questions).
DEBCONF = ["postfix postfix/main_mailer_type select No configuration"]


def postmap(name, content):
    table = files.put(name=f"postfix: {name}", src=StringIO(content),
                      dest=f"/etc/postfix/{name}", mode="644")
    server.shell(name=f"postfix: postmap {name}", commands=[f"postmap /etc/postfix/{name}"],
                 _if=table.did_change)
    return table


def apply():
    mail = host.data.mail
    primary = "primary_mx" in host.groups
    changed = [
        files.put(name="postfix: /etc/mailname", src=StringIO(host.data.fqdn + "\n"),
                  dest="/etc/mailname"),
        template("postfix", "/etc/postfix/main.cf", tls_cert=tls.CERT, tls_key=tls.KEY,
                 quota_status_port=QUOTA_STATUS_PORT, milter=rspamd.MILTER, primary=primary,
                 backup_mx=[h.address for h in mail.hosts_with("backup_mx")]),
        template("postfix", "/etc/postfix/master.cf", primary=primary),
    ]
    if primary:
        changed += [postmap("virtual_mailboxes", virtual_mailboxes(mail)),
                    postmap("virtual_aliases", virtual_aliases(mail)),
                    postmap("sender_logins", sender_logins(mail))]
    else:
        changed.append(postmap("relay_recipients", relay_recipients(mail)))
    # Mail for root and other local accounts goes to the postmaster.
    changed.append(template("postfix", "/etc/aliases"))
    server.shell(name="postfix: newaliases", commands=["newaliases"], _if=changed[-1].did_change)
    # Check the rendered configuration before (re)starting.
    server.shell(name="postfix: check configuration", commands=["postfix check"],
                 _if=any_changed(*changed))
    _, milter_host, milter_port = rspamd.MILTER.split(":")
    boot_order = template("postfix", "/etc/systemd/system/postfix@-.service.d/mailstack.conf",
                          milter_host=milter_host, milter_port=milter_port)
    systemd.daemon_reload(name="postfix: systemd reload", _if=boot_order.did_change)
    systemd.service(name="postfix: MTA-STS resolver", service="postfix-mta-sts-resolver",
                    running=True, enabled=True)
    systemd.service(name="postfix: service", service="postfix", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))

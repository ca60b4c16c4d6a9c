"""Mail from hosts without Postfix (the DNS and backup hosts): nullmailer, Debian's
relay-only MTA, hands it to the primary MX, with a queue and retries of its own.
It carries the alerts these hosts send the postmaster (a failed backup, a backup
host that refused to prune) and any mail for root.
"""
from pyinfra import host
from pyinfra.operations import files

from roles import Service


class Nullmailer(Service):
    name = "nullmailer"
    PACKAGES = ("nullmailer",)

    def configure(self):
        mail = host.data.mail
        # A private ACME CA (the lab's) is not in this host's trust store: the
        # session is still encrypted, but the primary's certificate is not checked.
        verify = "--insecure" if host.data.acme_root_url else ""
        remote = f"{mail.primary_mx.fqdn} smtp --port=25 --starttls {verify}".strip()
        self.put("/etc/nullmailer/remotes", remote + "\n", mode="600", user="mail", group="mail")
        self.put("/etc/nullmailer/adminaddr", mail.postmaster + "\n")
        # Debian's nullmailer takes the host name from /etc/mailname, never from 'me'.
        files.file(name="nullmailer: no 'me'", path="/etc/nullmailer/me", present=False)
        self.put("/etc/mailname", host.data.fqdn + "\n")

    def activate(self):
        self.restart_on_change("nullmailer")


nullmailer = Nullmailer()

"""A host firewall (nftables) on every host of the mail system: only the ports of
the services the host runs are open, SSH only from `firewall.ssh_from`, and
internal services (Dovecot's quota answer, the lab resolver) only to the system's
own hosts. What is open is computed in mailstack/firewall.py; the rules live in
a table of their own, so fail2ban's bans (roles/fail2ban.py) sit beside them.
Debian's nftables.service loads them at every boot.
"""
import ipaddress

from pyinfra import host
from pyinfra.operations import systemd

from mailstack.firewall import rules
from roles import Service

CONF = "/etc/nftables.conf"


def by_family(networks):
    v4 = sorted(n for n in networks if ipaddress.ip_network(n, strict=False).version == 4)
    v6 = sorted(n for n in networks if ipaddress.ip_network(n, strict=False).version == 6)
    return v4, v6


class Firewall(Service):
    name = "firewall"
    # netbase: /etc/protocols, which nft needs to read "icmp" (minimal systems lack it).
    PACKAGES = ("nftables", "netbase")

    def configure(self):
        mail = host.data.mail
        me = next(h for h in mail.hosts if h.fqdn == host.data.fqdn)
        r = rules(mail, me, host.data.dns_port, host.data.lab_network)
        public = [(proto, sorted(ports)) for proto, ports in sorted(r.public.items()) if ports]
        restricted = [(proto, port, *by_family(sources))
                      for (proto, port), sources in sorted(r.restricted.items())]
        self.template(CONF, mode="755", public=public, restricted=restricted)

    def activate(self):
        self.restart_on_change("nftables", check=f"nft -c -f {CONF}", reload=True)
        # Debian does not start nftables by itself; and a rule set that failed to
        # load once must not stay unloaded because the file is unchanged since.
        systemd.service(name="firewall: nftables loaded, and at boot", service="nftables",
                        running=True, enabled=True)


firewall = Firewall()

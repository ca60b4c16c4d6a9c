"""What each host lets in (pure logic, from the model): the ports of the services
its roles run, SSH from the operator, and the few ports only other hosts of the
system may reach. Everything else is dropped (roles/firewall.py)."""
from dataclasses import dataclass, field

from .dovecot import QUOTA_STATUS_PORT
from .monitoring import DOVECOT_STATS_PORT, NODE_EXPORTER_PORT
from .model import Host, MailSystem

SSH = 22
# Ports anyone may reach, by host role.
PUBLIC = {
    "primary_mx": {"tcp": (25, 80, 110, 143, 443, 465, 587, 993, 995, 4190)},
    "backup_mx": {"tcp": (25, 80, 443)},
}


@dataclass
class Rules:
    public: dict = field(default_factory=lambda: {"tcp": set(), "udp": set()})
    # (proto, port) -> the only networks that may reach it
    restricted: dict = field(default_factory=dict)

    def allow(self, proto, port, sources=None):
        if sources is None:
            self.public[proto].add(port)
        else:
            self.restricted.setdefault((proto, port), set()).update(sources)


def rules(system: MailSystem, host: Host, dns_port=53, lab_network=None) -> Rules:
    r = Rules()
    for role in host.roles:
        for proto, ports in PUBLIC.get(role, {}).items():
            for port in ports:
                r.allow(proto, port)
    others = [h.address for h in system.hosts if h.fqdn != host.fqdn]
    if "primary_mx" in host.roles:
        # Dovecot's quota answer, for the backup MX's RCPT check only.
        r.allow("tcp", QUOTA_STATUS_PORT, [h.address for h in system.backup_mx])
    if "dns" in host.roles:
        for proto in ("tcp", "udp"):
            r.allow(proto, dns_port)                       # authoritative: the world
            if dns_port != 53:
                # The resolver, for the system's own hosts (and the lab).
                r.allow(proto, 53, others + ([lab_network] if lab_network else []))
    watchers = [h.address for h in system.hosts_with("monitoring")]
    if watchers:
        # Metrics, for the monitoring hosts only.
        r.allow("tcp", NODE_EXPORTER_PORT, watchers)
        if "primary_mx" in host.roles:
            r.allow("tcp", DOVECOT_STATS_PORT, watchers)
    ssh = set(system.firewall.ssh_from)
    if "backup" in host.roles:
        # Backed-up hosts reach their repositories over SSH (their keys run nothing else).
        ssh |= set(others)
    if {"0.0.0.0/0", "::/0"} <= ssh:
        r.allow("tcp", SSH)
    else:
        r.allow("tcp", SSH, ssh)
    return r

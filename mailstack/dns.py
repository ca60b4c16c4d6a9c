"""DNS records derived from the mail system model (pure logic, no I/O)."""
from dataclasses import dataclass

from .model import MailSystem

DEFAULT_TTL = 300


@dataclass(frozen=True, order=True)
class Record:
    name: str   # absolute, with the trailing dot
    rtype: str
    value: str
    ttl: int = DEFAULT_TTL

    def line(self):
        return f"{self.name} {self.ttl} IN {self.rtype} {self.value}"


def _fqdn(name):
    return name.rstrip(".") + "."


def zone_of(name, zones):
    """The longest zone that contains `name`, or None."""
    name = name.rstrip(".")
    best = None
    for z in zones:
        if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
            best = z
    return best


def zone_records(system: MailSystem, extra_zones=None) -> dict[str, list[Record]]:
    """Records for every mail domain (and extra zones: {zone: {mx, hosts}}).

    A domain gets MX 10 for the primary and MX 20 for each backup; every host of
    the system gets its A record in the zone that contains its name.
    """
    zones = {d.name: [] for d in system.domains}
    zones.update({z: [] for z in (extra_zones or {})})
    nameservers = [h.fqdn for h in system.hosts_with("dns")]
    for z, records in zones.items():
        records += [Record(_fqdn(z), "NS", _fqdn(ns)) for ns in nameservers]
    for d in system.domains:
        zones[d.name].append(Record(_fqdn(d.name), "MX", f"10 {_fqdn(system.primary_mx.fqdn)}"))
        zones[d.name] += [Record(_fqdn(d.name), "MX", f"20 {_fqdn(b.fqdn)}") for b in system.backup_mx]
    addresses = {h.fqdn: h.address for h in system.hosts}
    for z, spec in (extra_zones or {}).items():
        zones[z].append(Record(_fqdn(z), "MX", f"10 {_fqdn(spec['mx'])}"))
        addresses.update(spec.get("hosts", {}))
    for name, address in addresses.items():
        z = zone_of(name, zones)
        if z:
            zones[z].append(Record(_fqdn(name), "AAAA" if ":" in address else "A", address))
    return {z: sorted(set(r)) for z, r in zones.items()}


def zone_file(zone, records, primary_ns, hostmaster):
    """A zone file with a fixed serial: the server (Knot: zonefile-load
    difference-no-serial) bumps its own serial when the content changes."""
    lines = [f"$ORIGIN {_fqdn(zone)}", f"$TTL {DEFAULT_TTL}",
             f"@ IN SOA {_fqdn(primary_ns)} {hostmaster.replace('@', '.')}. 1 3600 900 1209600 300"]
    lines += [r.line() for r in records]
    return "\n".join(lines) + "\n"

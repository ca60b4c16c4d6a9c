"""DNS records derived from the mail system model (pure logic, no I/O).

Some values live on the hosts, not in the data: each mail domain's DKIM public
keys (by selector) and each MX's TLS public key hash. They come in as `facts`:
    {"dkim": {domain: {selector: base64 public key}}, "tlsa": {mx fqdn: sha256 hex}}
Without them those records are left out.
"""
import hashlib
import ipaddress
from dataclasses import dataclass

from .model import MailSystem

MTA_STS_MAX_AGE = 604800
# Names every mail domain points at the primary's web server (HTTPS).
WEB_NAMES = ("mta-sts", "autoconfig", "autodiscover", "webmail")


@dataclass(frozen=True, order=True)
class Record:
    name: str   # absolute, with the trailing dot
    rtype: str
    value: str
    ttl: int = 300

    def line(self):
        return f"{self.name} {self.ttl} IN {self.rtype} {self.value}"


def _fqdn(name):
    return name.rstrip(".") + "."


def txt(text):
    """A TXT value, split in 255-byte strings (long DKIM keys)."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))


def zone_of(name, zones):
    """The longest zone that contains `name`, or None."""
    name = name.rstrip(".")
    best = None
    for z in zones:
        if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
            best = z
    return best


def mta_sts_text(mode, mxs, max_age=MTA_STS_MAX_AGE) -> str:
    """An MTA-STS policy file (RFC 8461), as served at /.well-known/mta-sts.txt."""
    return f"version: STSv1\nmode: {mode}\n" + "".join(f"mx: {mx}\n" for mx in mxs) + f"max_age: {max_age}\n"


def mta_sts_policy(system: MailSystem) -> str:
    """The policy every domain of the system serves: the primary and every backup MX."""
    return mta_sts_text(system.dns.mta_sts_mode,
                        [system.primary_mx.fqdn] + [b.fqdn for b in system.backup_mx])


def mail_domain_records(system: MailSystem, domain: str, facts) -> list[tuple[str, str, str]]:
    """(name, type, value) for one mail domain."""
    d, dns = _fqdn(domain), system.dns
    primary = _fqdn(system.primary_mx.fqdn)
    records = [(d, "MX", f"10 {primary}")]
    records += [(d, "MX", f"20 {_fqdn(b.fqdn)}") for b in system.backup_mx]
    records.append((d, "TXT", txt("v=spf1 mx -all")))
    for selector, key in sorted((facts.get("dkim") or {}).get(domain, {}).items()):
        records.append((f"{selector}._domainkey.{d}", "TXT", txt(f"v=DKIM1; k=rsa; p={key}")))
    records.append((f"_dmarc.{d}", "TXT",
                    txt(f"v=DMARC1; p={dns.dmarc_policy}; rua=mailto:{dns.dmarc_reports}")))
    policy_id = hashlib.sha256(mta_sts_policy(system).encode()).hexdigest()[:20]
    records.append((f"_mta-sts.{d}", "TXT", txt(f"v=STSv1; id={policy_id}")))
    records.append((f"_smtp._tls.{d}", "TXT", txt(f"v=TLSRPTv1; rua=mailto:{dns.dmarc_reports}")))
    records += [(f"{name}.{d}", "CNAME", primary) for name in WEB_NAMES]
    for service, port in (("submissions", 465), ("submission", 587), ("imaps", 993), ("pop3s", 995),
                          ("autodiscover", 443)):
        records.append((f"_{service}._tcp.{d}", "SRV", f"0 1 {port} {primary}"))
    return records


def own_extra_zones(system: MailSystem, extra_zones):
    """The extra zones, less those the system now hosts as mail domains: a domain
    that was someone else's (a client at their old provider, in the lab) is the
    system's own zone from the moment its data names it."""
    mail = {d.name for d in system.domains}
    return {z: spec for z, spec in (extra_zones or {}).items() if z not in mail}


def zone_names(system: MailSystem, extra_zones=None) -> list[str]:
    """Every zone the system's DNS serves: the mail domains and any extra zones."""
    return sorted({d.name for d in system.domains} | set(own_extra_zones(system, extra_zones)))


def web_names(system: MailSystem, *sites) -> list[str]:
    """The primary's HTTPS names (<site>.<domain>) for `sites` (default: all of
    WEB_NAMES), for every mail domain."""
    return [f"{site}.{d.name}" for d in system.domains for site in sites or WEB_NAMES]


def zone_records(system: MailSystem, extra_zones=None, facts=None) -> dict[str, list[Record]]:
    """Records for every mail domain (and extra zones: {zone: {mx, hosts, cname, txt,
    ptr}}), grouped by zone. Host A/AAAA and TLSA records land in the zone holding
    the host's name."""
    facts = facts or {}
    extra_zones = own_extra_zones(system, extra_zones)
    ttl = system.dns.ttl
    zones = {d.name: [] for d in system.domains}
    zones.update({z: [] for z in (extra_zones or {})})
    nameservers = [h.fqdn for h in system.hosts_with("dns")]
    for z, records in zones.items():
        records += [Record(_fqdn(z), "NS", _fqdn(ns), ttl) for ns in nameservers]
    for d in system.domains:
        zones[d.name] += [Record(*r, ttl) for r in mail_domain_records(system, d.name, facts)]
    # A domain whose DMARC reports go to an address in another zone of ours: that
    # zone says it takes them (RFC 7489 7.1), else receivers send them nowhere.
    reports = system.dns.dmarc_reports.split("@")[1]
    for d in system.domains:
        z = zone_of(reports, zones)
        if z and reports != d.name:
            zones[z].append(Record(f"{d.name}._report._dmarc.{_fqdn(reports)}", "TXT", txt("v=DMARC1"), ttl))
    addresses = {h.fqdn: h.address for h in system.hosts}
    for z, spec in (extra_zones or {}).items():
        if "mx" in spec:
            zones[z].append(Record(_fqdn(z), "MX", f"10 {_fqdn(spec['mx'])}", ttl))
        zones[z] += [Record(_fqdn(name), "TXT", txt(value), ttl)
                     for name, value in spec.get("txt", {}).items()]
        zones[z] += [Record(_fqdn(name), "CNAME", _fqdn(target), ttl)
                     for name, target in spec.get("cname", {}).items()]
        zones[z] += [Record(ipaddress.ip_address(a).reverse_pointer + ".", "PTR", _fqdn(name), ttl)
                     for a, name in spec.get("ptr", {}).items()]
        addresses.update(spec.get("hosts", {}))
    for name, address in addresses.items():
        z = zone_of(name, zones)
        if z:
            zones[z].append(Record(_fqdn(name), "AAAA" if ":" in address else "A", address, ttl))
    # SPF for each of the system's host names: what they send with an empty
    # envelope sender (Sieve vacation replies, bounces) is checked against the HELO
    # name, which is then SPF-aligned with the mail domain for DMARC.
    for h in system.hosts:
        z = zone_of(h.fqdn, zones)
        if z:
            zones[z].append(Record(_fqdn(h.fqdn), "TXT", txt("v=spf1 a -all"), ttl))
    for mx, digest in sorted((facts.get("tlsa") or {}).items()):
        z = zone_of(mx, zones)
        if z:
            zones[z].append(Record(f"_25._tcp.{_fqdn(mx)}", "TLSA", f"3 1 1 {digest}", ttl))
    return {z: sorted(set(r)) for z, r in zones.items()}


def zone_file(zone, records, primary_ns, hostmaster):
    """A zone file with a fixed serial: the server (Knot: zonefile-load
    difference-no-serial) bumps its own serial when the content changes."""
    lines = [f"$ORIGIN {_fqdn(zone)}", "$TTL 300",
             f"@ IN SOA {_fqdn(primary_ns)} {hostmaster.replace('@', '.')}. 1 3600 900 1209600 300"]
    lines += [r.line() for r in records]
    return "\n".join(lines) + "\n"


def snippet(zones: dict[str, list[Record]]) -> str:
    """Zone-file lines to paste into any DNS provider, one block per zone."""
    out = []
    for zone, records in zones.items():
        out.append(f"; {zone}")
        out += [r.line() for r in records if r.rtype != "NS"]
        out.append("")
    return "\n".join(out)

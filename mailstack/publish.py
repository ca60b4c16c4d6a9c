"""Publish DNS records by RFC 2136 dynamic updates signed with TSIG.

Only what differs is sent: a second publish with unchanged records sends nothing.
Managed per zone: every (name, type) the model produces, DKIM selectors that are
no longer wanted, and at the apex only the SPF string of the TXT set, so records
the operator keeps by hand beside ours survive.
"""
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rcode
import dns.tsigkeyring
import dns.update
import dns.zone

MANAGED_TYPES = {"MX", "TXT", "CNAME", "SRV", "TLSA", "A", "AAAA"}


def _keyring(key):
    return dns.tsigkeyring.from_text({key["name"]: (key["algorithm"], key["secret"])})


def current_rrsets(zone, server, port, key):
    """{(name, type): (ttl, {rdata text})} by zone transfer (AXFR, TSIG-signed)."""
    xfr = dns.query.xfr(server, dns.name.from_text(zone), port=port, keyring=_keyring(key),
                        keyname=key["name"], keyalgorithm=key["algorithm"], lifetime=10,
                        relativize=False)
    z = dns.zone.from_xfr(xfr, relativize=False)
    out = {}
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            rtype = dns.rdatatype.to_text(rds.rdtype)
            out[(name.to_text(), rtype)] = (rds.ttl, {r.to_text() for r in rds})
    return out


def _canonical(rtype, value):
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, value).to_text()


def plan(zone, records, current):
    """The rrsets to replace and to delete so the zone holds `records`."""
    desired = {}
    for r in records:
        if r.rtype == "NS":
            continue
        ttl, values = desired.setdefault((r.name, r.rtype), (r.ttl, set()))
        values.add(_canonical(r.rtype, r.value))
    apex = dns.name.from_text(zone).to_text()
    # At the apex, keep TXT strings that are not ours (site verifications...).
    if (apex, "TXT") in desired and (apex, "TXT") in current:
        ttl, values = desired[(apex, "TXT")]
        values |= {v for v in current[(apex, "TXT")][1] if not v.startswith('"v=spf1')}
    replace = {k: v for k, v in desired.items() if current.get(k) != v}
    delete = [k for k in current
              if k not in desired and k[1] == "TXT" and "._domainkey." in k[0]]
    return replace, delete


def publish(zones, server, port, key):
    """Bring every zone to its records; returns the number of update messages sent."""
    sent = 0
    for zone, records in zones.items():
        replace, delete = plan(zone, records, current_rrsets(zone, server, port, key))
        if not replace and not delete:
            continue
        update = dns.update.UpdateMessage(zone, keyring=_keyring(key), keyname=key["name"],
                                          keyalgorithm=key["algorithm"])
        for (name, rtype), (ttl, values) in sorted(replace.items()):
            update.replace(name, ttl, rtype, *sorted(values))
        for name, rtype in delete:
            update.delete(name, rtype)
        response = dns.query.tcp(update, server, port=port, timeout=10)
        if response.rcode() != 0:
            raise RuntimeError(f"DNS update of {zone} refused: {dns.rcode.to_text(response.rcode())}")
        sent += 1
    return sent

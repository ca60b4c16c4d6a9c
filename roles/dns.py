"""Authoritative DNS (Knot) for every mail domain of the system.

Every zone is signed (DNSSEC, Knot's automatic key management: ECDSA P-256,
KSK kept, ZSK rolled every 30 days); the DS records for the parent zone are
printed by `keymgr <zone> ds` on this host. A mail domain's zone file is only a
bootstrap (SOA, NS and the hosts' addresses), written once: every other record
arrives by RFC 2136 from `mailstack publish`, signed with the system's TSIG key,
exactly as it would at any other provider that speaks RFC 2136. Extra zones (the
lab's outside domain) are served whole from their files.
"""
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from mailstack.dns import zone_file, zone_records
from roles import Service

ZONE_DIR = "/var/lib/knot/zones"
# Answers a second to one client network before Knot's response rate limiting
# truncates or drops them (ample for resolvers, useless for amplification).
RRL_RATE = 200


def bootstrap(records):
    """What a mail domain's zone needs before the first publish: NS, the
    addresses of the system's own hosts and the names that point at them (the ACME
    CA resolves them during the deploy, before anything is published)."""
    return [r for r in records if r.rtype in ("NS", "A", "AAAA", "CNAME")]


class DNS(Service):
    name = "dns"
    PACKAGES = ("knot", "knot-dnsutils")

    def configure(self):
        mail = host.data.mail
        mail_zones = {d.name for d in mail.domains}
        records_by_zone = zone_records(mail, host.data.lab_zones)
        self.conf = self.template("/etc/knot/knot.conf", group="knot", mode="640",
                                  zones=sorted(records_by_zone), mail_zones=mail_zones,
                                  port=host.data.dns_port, key=host.data.tsig_key,
                                  rrl_rate=RRL_RATE)
        files.directory(name="dns: zone directory", path=ZONE_DIR, user="knot", group="knot")
        self.zones = []
        for zone, records in records_by_zone.items():
            path = f"{ZONE_DIR}/{zone}.zone"
            owned_by_updates = zone in mail_zones
            content = zone_file(zone, bootstrap(records) if owned_by_updates else records,
                                host.data.fqdn, mail.postmaster)
            exists = host.get_fact(File, path) is not None
            self.zones.append(self.put(
                path, content, user="knot", group="knot", mode="640", watch=False,
                # Rewriting a zone that takes updates would undo them.
                _if=lambda exists=exists, owned=owned_by_updates: not (owned and exists)))

    def activate(self):
        # New listen addresses need a restart; new zone content only a reload.
        conf, zones = self.conf, any_changed(*self.zones)
        self.restart_on_change("knot", changed=[conf])
        systemd.service(name="dns: knot reload", service="knot", reloaded=True,
                        _if=lambda: zones() and not conf.did_change())


dns = DNS()

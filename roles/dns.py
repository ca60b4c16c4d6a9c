"""Authoritative DNS (Knot) for every mail domain of the system.

Knot listens on loopback for the local resolver and on the host's address
(port from data, 53 by default) for the world and, later, RFC 2136 updates.
"""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from mailstack.dns import zone_file, zone_records
from roles import template

PACKAGES = ["knot", "knot-dnsutils"]
ZONE_DIR = "/var/lib/knot/zones"


def zones():
    mail = host.data.mail
    return zone_records(mail, host.data.lab_zones)


def apply():
    mail = host.data.mail
    conf = template("dns", "/etc/knot/knot.conf", group="knot", mode="640",
                    zones=sorted(zones()), port=host.data.dns_port)
    files.directory(name="dns: zone directory", path=ZONE_DIR, user="knot", group="knot")
    changed_zones = []
    for zone, records in zones().items():
        changed_zones.append(files.put(
            name=f"dns: zone {zone}",
            src=StringIO(zone_file(zone, records, host.data.fqdn, mail.postmaster)),
            dest=f"{ZONE_DIR}/{zone}.zone", user="knot", group="knot", mode="640"))
    # New listen addresses need a restart; new zone content only a reload.
    systemd.service(name="dns: knot restart", service="knot", running=True, enabled=True,
                    restarted=True, _if=conf.did_change)
    systemd.service(name="dns: knot reload", service="knot", reloaded=True,
                    _if=lambda: any_changed(*changed_zones)() and not conf.did_change())

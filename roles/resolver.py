"""A caching resolver (Unbound) for the hosts of the mail system.

In the lab it only answers for the lab's zones (from the local Knot) and refuses
everything else, so no query ever leaves the lab. It validates DNSSEC: hosts
get the AD flag they need for DANE (Postfix) from it.
"""
from pyinfra import host
from pyinfra.operations import systemd

from mailstack.dns import zone_names
from roles import Service


class Resolver(Service):
    name = "resolver"
    PACKAGES = ("unbound",)

    def configure(self):
        isolated = bool(host.data.lab_network)
        zones = zone_names(host.data.mail, host.data.lab_zones)
        self.template("/etc/unbound/unbound.conf", zones=zones, isolated=isolated,
                      clients=host.data.lab_network, dnsbl=host.data.lab_dnsbl)
        self.template("/usr/local/sbin/mailstack-trust-anchors", mode="755", zones=zones)
        self.dropin = self.template("/etc/systemd/system/unbound.service.d/mailstack.conf",
                                    isolated=isolated)

    def activate(self):
        systemd.daemon_reload(name="resolver: systemd reload", _if=self.dropin.did_change)
        self.restart_on_change("unbound")


resolver = Resolver()

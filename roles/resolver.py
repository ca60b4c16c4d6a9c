"""A caching resolver (Unbound) for the hosts of the mail system.

In the lab it only answers for the lab's zones (from the local Knot) and refuses
everything else, so no query ever leaves the lab. It validates DNSSEC: hosts
get the AD flag they need for DANE (Postfix) from it.
"""
from pyinfra import host
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from roles import template
from roles.dns import zones

PACKAGES = ["unbound"]


def apply():
    isolated = bool(host.data.lab_network)
    conf = template("resolver", "/etc/unbound/unbound.conf", zones=sorted(zones()),
                    isolated=isolated, clients=host.data.lab_network)
    anchors = template("resolver", "/usr/local/sbin/mailstack-trust-anchors", mode="755",
                       zones=sorted(zones()))
    dropin = template("resolver", "/etc/systemd/system/unbound.service.d/mailstack.conf",
                      isolated=isolated)
    systemd.daemon_reload(name="resolver: systemd reload", _if=dropin.did_change)
    systemd.service(name="resolver: unbound", service="unbound", running=True, enabled=True,
                    restarted=True, _if=any_changed(conf, anchors, dropin))

"""Metrics on every host of the mail system, for the monitoring host to read
(roles/monitoring.py): Debian's node exporter (with the state of this kit's
services, and the backups' last success from mailstack-backup's textfile), and on
each MX Debian's Postfix exporter (queue and delivery counts). The firewall lets
only the monitoring hosts reach them (mailstack/firewall.py)."""
from pyinfra import host

from mailstack.monitoring import NODE_EXPORTER_PORT, POSTFIX_EXPORTER_PORT, unit_include
from roles import Service


class Metrics(Service):
    name = "metrics"
    # dbus: the node exporter reads the services' state from systemd over it.
    PACKAGES = ("prometheus-node-exporter", "dbus")

    def is_mx(self):
        return bool({"primary_mx", "backup_mx"} & set(host.groups))

    def packages(self):
        return [*self.PACKAGES, *(["prometheus-postfix-exporter"] if self.is_mx() else [])]

    def configure(self):
        self.node = [self.template("/etc/default/prometheus-node-exporter", address=host.data.address,
                                   port=NODE_EXPORTER_PORT, units=unit_include(), watch=False)]
        self.postfix = [self.template("/etc/default/prometheus-postfix-exporter", address=host.data.address,
                                      port=POSTFIX_EXPORTER_PORT, watch=False)] if self.is_mx() else []

    def activate(self):
        self.restart_on_change("prometheus-node-exporter", changed=self.node)
        if self.is_mx():
            self.restart_on_change("prometheus-postfix-exporter", changed=self.postfix)


metrics = Metrics()

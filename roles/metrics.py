"""Metrics on every host of the mail system, for the monitoring host to read
(roles/monitoring.py): Debian's node exporter, with the state of this kit's
services (from systemd) and the backups' last success and failure (the textfile
mailstack-backup writes). The firewall lets only the monitoring hosts reach it
(mailstack/firewall.py). Debian's prometheus-postfix-exporter is left out: it
depends on a syslog daemon (rsyslog would write every journal line a second time)
and stops when /var/log/mail.log is missing."""
from pyinfra import host

from mailstack.monitoring import NODE_EXPORTER_PORT, unit_include, watched_units
from roles import Service, release


class Metrics(Service):
    name = "metrics"
    # dbus: the node exporter reads the services' state from systemd over it.
    PACKAGES = ("prometheus-node-exporter", "dbus")

    def configure(self):
        units = watched_units(host.data.mail, host.groups, release())
        self.node = [self.template("/etc/default/prometheus-node-exporter", address=host.data.address,
                                   port=NODE_EXPORTER_PORT, units=unit_include(units), watch=False)]

    def activate(self):
        self.restart_on_change("prometheus-node-exporter", changed=self.node)


metrics = Metrics()

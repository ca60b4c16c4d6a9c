"""Metrics on every host of the mail system, for the monitoring host to read
(roles/monitoring.py): Debian's node exporter, with the state of this kit's
services (from systemd), the backups' last success and failure (the textfile
mailstack-backup writes) and, from `mailstack-status --metrics` on a timer, the
queue, the certificate's expiry, the blocklists and rspamd's counters. The
firewall lets only the monitoring hosts reach it (mailstack/firewall.py). Debian's prometheus-postfix-exporter is left out: it
depends on a syslog daemon (rsyslog would write every journal line a second time)
and stops when /var/log/mail.log is missing."""
import shlex

from pyinfra import host
from pyinfra.facts.server import Command

from mailstack.monitoring import METRICS_EVERY, NODE_EXPORTER_PORT, TEXTFILES, unit_include, watched_units
from roles import Service, release


class Metrics(Service):
    name = "metrics"
    # dbus: the node exporter reads the services' state from systemd over it.
    PACKAGES = ("prometheus-node-exporter", "dbus")

    def configure(self):
        units = watched_units(host.data.mail, host.groups, release())
        # Without udev (a container) the disk statistics collector logs an error at
        # every start; such a host has no disks of its own to report.
        udev = host.get_fact(Command, "test -d /run/udev/data && echo yes || echo no") == "yes"
        self.node = [self.template("/etc/default/prometheus-node-exporter", address=host.data.address,
                                   port=NODE_EXPORTER_PORT, units=unit_include(units), textfiles=TEXTFILES,
                                   diskstats=udev, watch=False)]
        mail = host.data.mail
        me = next(h for h in mail.hosts if h.fqdn == host.data.fqdn)
        command = ["/usr/local/sbin/mailstack-status", "--metrics", f"{TEXTFILES}/mailstack.prom"]
        if {"primary_mx", "backup_mx"} & set(me.roles):
            command += ["--address", me.address, *[a for z in mail.dnsbls for a in ("--dnsbl", z)]]
        self.units("mailstack-metrics.service", "mailstack-metrics.timer", start=["mailstack-metrics.timer"],
                   command=shlex.join(command), every=max(METRICS_EVERY, mail.monitoring.interval))

    def activate(self):
        self.restart_on_change("prometheus-node-exporter", changed=self.node)


metrics = Metrics()

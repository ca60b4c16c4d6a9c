"""The monitoring host: Debian's Prometheus reads every host's metrics
(roles/metrics.py) each monitoring.interval and evaluates mailstack's alert rules;
Debian's Alertmanager mails the postmaster when one has held for
monitoring.alert_after, and again when it ends. Both listen on loopback only (an
operator looks through an SSH tunnel); what they say is in mailstack/monitoring.py."""
from pyinfra import host

from mailstack.monitoring import alertmanager_config, prometheus_config, prometheus_rules
from roles import Service


class Monitoring(Service):
    name = "monitoring"
    PACKAGES = ("prometheus", "prometheus-alertmanager")

    def configure(self):
        mail = host.data.mail
        # Their command lines (a restart) and their configuration (a reload: SIGHUP,
        # which keeps what Prometheus was evaluating).
        self.arguments = [self.template("/etc/default/prometheus", watch=False),
                          self.template("/etc/default/prometheus-alertmanager", watch=False)]
        self.prometheus = [
            self.put("/etc/prometheus/prometheus.yml", prometheus_config(mail), watch=False),
            self.put("/etc/prometheus/mailstack.rules.yml", prometheus_rules(mail), watch=False),
        ]
        # A private ACME CA (the lab's) is not in this host's trust store: the
        # session to the primary is still encrypted, its certificate not checked.
        self.alertmanager = [
            self.put("/etc/prometheus/alertmanager.yml",
                     alertmanager_config(mail, host.data.fqdn, verify_tls=not host.data.acme_root_url),
                     watch=False),
        ]

    def activate(self):
        check_prometheus = "promtool check config /etc/prometheus/prometheus.yml"
        check_alertmanager = "amtool check-config /etc/prometheus/alertmanager.yml"
        self.restart_on_change("prometheus", check=check_prometheus, changed=[self.arguments[0]])
        self.restart_on_change("prometheus-alertmanager", check=check_alertmanager, changed=[self.arguments[1]])
        self.restart_on_change("prometheus", check=check_prometheus, reload=True, changed=self.prometheus)
        self.restart_on_change("prometheus-alertmanager", check=check_alertmanager, reload=True,
                               changed=self.alertmanager)


monitoring = Monitoring()

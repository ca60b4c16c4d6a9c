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
        self.prometheus = [
            self.put("/etc/prometheus/prometheus.yml", prometheus_config(mail), watch=False),
            self.put("/etc/prometheus/mailstack.rules.yml", prometheus_rules(mail), watch=False),
            self.template("/etc/default/prometheus", watch=False),
        ]
        # A private ACME CA (the lab's) is not in this host's trust store: the
        # session to the primary is still encrypted, its certificate not checked.
        self.alertmanager = [
            self.put("/etc/prometheus/alertmanager.yml",
                     alertmanager_config(mail, host.data.fqdn, verify_tls=not host.data.acme_root_url),
                     watch=False),
            self.template("/etc/default/prometheus-alertmanager", watch=False),
        ]

    def activate(self):
        self.restart_on_change("prometheus", check="promtool check config /etc/prometheus/prometheus.yml",
                               changed=self.prometheus)
        self.restart_on_change("prometheus-alertmanager",
                               check="amtool check-config /etc/prometheus/alertmanager.yml",
                               changed=self.alertmanager)


monitoring = Monitoring()

"""What the monitoring host scrapes, alerts on and whom it tells (pure logic, from
the model): Prometheus' configuration and rules and Alertmanager's routing, written
as YAML from here (Prometheus' own {{ $labels }} templates would fight Jinja's)."""
import yaml

from .model import MailSystem
from .status import BACKUP_MAX_AGE, CERT_WARN, DISK_WARN, QUEUE_MAX_AGE

ALERTMANAGER = "127.0.0.1:9093"

NODE_EXPORTER_PORT = 9100
DOVECOT_STATS_PORT = 9900       # Dovecot's OpenMetrics, on the primary
# Where the node exporter reads the files programs write (Debian's default).
TEXTFILES = "/var/lib/prometheus/node-exporter"
# mailstack-status --metrics runs at most this often (seconds): each run asks
# Postfix, OpenSSL, rspamd and the resolver.
METRICS_EVERY = 30

def watched_units(system: MailSystem, roles, release) -> list[str]:
    """The services a host with `roles` runs on `release` (mailstack.releases), whose
    state its node exporter reports and the ServiceDown rule watches."""
    units = ["nftables", "fail2ban"]
    if {"primary_mx", "backup_mx"} & set(roles):
        units += [release.postfix_unit, "rspamd", "redis-server", "nginx"]
    if "primary_mx" in roles:
        units += ["dovecot", release.php_fpm]
    if "dns" in roles:
        units += ["knot", "unbound"]
    if {"dns", "backup"} & set(roles):
        units.append("nullmailer")
    if "monitoring" in roles:
        units += ["prometheus", "prometheus-alertmanager"]
    return sorted(set(units))


def unit_include(units):
    """The node exporter's --collector.systemd.unit-include (a Go regular expression)."""
    return "(" + "|".join(u.replace(".", r"\.") for u in units) + r")\.service"


def prometheus_config(system: MailSystem) -> str:
    """Every host's node exporter, labelled with the host's name; the rules below;
    Alertmanager on the same host."""
    interval = f"{system.monitoring.interval}s"

    def job(name, hosts, port):
        return {"job_name": name, "static_configs": [
            {"targets": [f"{h.address}:{port}"], "labels": {"host": h.fqdn}} for h in hosts]}
    return yaml.safe_dump({
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": ["/etc/prometheus/mailstack.rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ALERTMANAGER]}]}]},
        "scrape_configs": [job("node", system.hosts, NODE_EXPORTER_PORT),
                           job("dovecot", [system.primary_mx], DOVECOT_STATS_PORT)],
    }, sort_keys=False)


# (name, expression, summary): each fires once its expression has held for
# monitoring.alert_after, at the thresholds `mailstack status` uses. Only series with our host label: what Debian's default
# configuration scraped in the minute between the package's start and ours is not
# a host of the system. The mailstack_* series come from mailstack-status --metrics
# (mailstack/host/status.py), the backups' from mailstack-backup.
RULES = (
    ("HostDown", 'up{job="node", host!=""} == 0', "{{ $labels.host }} does not answer"),
    ("ServiceDown", 'node_systemd_unit_state{state="active", host!=""} == 0',
     "{{ $labels.name }} is not running on {{ $labels.host }}"),
    ("DiskFilling", 'node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs", host!=""} '
                    f"/ node_filesystem_size_bytes < {1 - DISK_WARN / 100:g}",
     "{{ $labels.mountpoint }} on {{ $labels.host }} is more than 90% full"),
    ("BackupOld", 'time() - mailstack_backup_last_success_timestamp_seconds{host!=""} > ' + str(BACKUP_MAX_AGE),
     "the last backup of {{ $labels.host }} is more than 26 hours old"),
    ("BackupFailed", 'mailstack_backup_last_failure_timestamp_seconds{host!=""} > '
                     "mailstack_backup_last_success_timestamp_seconds",
     "the last backup of {{ $labels.host }} failed"),
    ("QueueGrowing", 'mailstack_queue_messages{host!=""} > {warn_messages}',
     "{{ $value }} messages wait in the queue of {{ $labels.host }}"),
    ("DeliveryFailing", 'mailstack_queue_oldest_seconds{host!=""} > ' + str(QUEUE_MAX_AGE),
     "a message has waited more than an hour on {{ $labels.host }}: its delivery keeps failing"),
    ("CertificateExpiring", 'mailstack_certificate_expiry_timestamp_seconds{host!=""} - time() < ' + str(CERT_WARN),
     "the certificate of {{ $labels.host }} expires in less than 20 days (is renewal failing?)"),
    ("Blocklisted", 'mailstack_dnsbl_listed{host!=""} == 1',
     "{{ $labels.host }} is listed on the blocklist {{ $labels.zone }}"),
)


def prometheus_rules(system: MailSystem) -> str:
    return yaml.safe_dump({"groups": [{"name": "mailstack", "rules": [
        {"alert": name, "expr": expr.replace("{warn_messages}", str(system.queue.warn_messages)),
         "for": f"{system.monitoring.alert_after}s",
         "labels": {"system": system.name}, "annotations": {"summary": summary}}
        for name, expr, summary in RULES]}]}, sort_keys=False)


def alertmanager_config(system: MailSystem, fqdn: str, verify_tls=True) -> str:
    """Alerts, and their end, mailed to monitoring.alert_to (the postmaster unless the
    data says) through the primary's port 25, as mail for our domains: an address
    elsewhere is reached through an alias (STARTTLS required; verify_tls=False only
    for a private ACME CA, the lab's). One mail per alert, host and service."""
    wait = max(5, system.monitoring.interval)
    return yaml.safe_dump({
        "global": {"smtp_smarthost": f"{system.primary_mx.fqdn}:25", "smtp_from": f"alerts@{fqdn}",
                   "smtp_hello": fqdn, "smtp_require_tls": True},
        "route": {"receiver": "postmaster", "group_by": ["alertname", "host", "name", "zone"],
                  "group_wait": f"{wait}s", "group_interval": f"{wait}s", "repeat_interval": "4h"},
        "receivers": [{"name": "postmaster", "email_configs": [
            {"to": ", ".join(system.monitoring.alert_to or (system.postmaster,)), "send_resolved": True,
             "tls_config": {"insecure_skip_verify": not verify_tls}}]}],
    }, sort_keys=False)

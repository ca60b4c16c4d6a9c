"""What the monitoring host is told (mailstack/monitoring.py): every host's node
exporter and each MX's Postfix exporter, named; the rules with the data's delay;
alerts to the postmaster through the primary, TLS required."""
import yaml

from mailstack import monitoring
from mailstack.model import load_system

from .conftest import VALID

WATCHED = VALID.replace("hosts:\n", "hosts:\n  watch.example.org: {address: 192.0.2.30, roles: [monitoring]}\n") \
    + "monitoring: {interval: 15s, alert_after: 2m}\n"


def test_prometheus_reads_every_host_by_name(write_data):
    config = yaml.safe_load(monitoring.prometheus_config(load_system(write_data(WATCHED))))
    jobs = {j["job_name"]: {c["targets"][0]: c["labels"]["host"] for c in j["static_configs"]}
            for j in config["scrape_configs"]}
    assert jobs == {"node": {"192.0.2.30:9100": "watch.example.org", "192.0.2.10:9100": "mx1.example.org",
                             "192.0.2.11:9100": "mx2.example.org"},
                    "dovecot": {"192.0.2.10:9900": "mx1.example.org"}}
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}


def test_every_rule_waits_the_datas_delay_and_says_which_host(write_data):
    rules = yaml.safe_load(monitoring.prometheus_rules(load_system(write_data(WATCHED))))["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"HostDown", "ServiceDown", "DiskFilling", "BackupOld", "BackupFailed",
                                           "QueueGrowing", "DeliveryFailing", "CertificateExpiring", "Blocklisted"}
    assert all(r["for"] == "120s" and "{{ $labels.host }}" in r["annotations"]["summary"] for r in rules)


def test_the_queue_alert_uses_the_datas_threshold(write_data):
    rules = yaml.safe_load(monitoring.prometheus_rules(load_system(write_data(
        WATCHED + "queue: {warn_messages: 25}\n"))))["groups"][0]["rules"]
    assert {r["alert"]: r["expr"] for r in rules}["QueueGrowing"] == 'mailstack_queue_messages{host!=""} > 25'


def test_alerts_go_to_the_postmaster_through_the_primary_with_tls(write_data):
    system = load_system(write_data(WATCHED))
    config = yaml.safe_load(monitoring.alertmanager_config(system, "watch.example.org"))
    assert config["global"]["smtp_smarthost"] == "mx1.example.org:25"
    assert config["global"]["smtp_require_tls"] is True
    (receiver,) = config["receivers"]
    assert receiver["email_configs"] == [{"to": "postmaster@example.org", "send_resolved": True,
                                          "tls_config": {"insecure_skip_verify": False}}]
    # One mail per alert, host and service (or blocklist): a resolved service is
    # said at once, not when every other service of the host is back too.
    assert config["route"]["group_by"] == ["alertname", "host", "name", "zone"]


def test_alerts_go_to_the_addresses_the_data_names_if_they_are_ours(write_data):
    system = load_system(write_data(WATCHED.replace("monitoring: {", "monitoring: {alert_to: [postmaster@example.org, "
                                                                    "anna@example.org], ")))
    config = yaml.safe_load(monitoring.alertmanager_config(system, "watch.example.org"))
    assert config["receivers"][0]["email_configs"][0]["to"] == "postmaster@example.org, anna@example.org"


def test_an_alert_address_elsewhere_is_refused_with_the_field_named(write_data):
    import pytest

    from mailstack.model import DataError
    with pytest.raises(DataError, match=r"monitoring\.alert_to\[0\].*'ops@elsewhere\.example' is not a mailbox "
                                        r"or alias of this system"):
        load_system(write_data(WATCHED.replace("monitoring: {", "monitoring: {alert_to: [ops@elsewhere.example], ")))


def test_the_node_exporter_watches_the_services_each_host_runs(write_data):
    from mailstack.releases import named
    system = load_system(write_data(WATCHED))
    trixie, bookworm = named("trixie"), named("bookworm")
    assert monitoring.watched_units(system, ["primary_mx"], trixie) == [
        "dovecot", "fail2ban", "nftables", "nginx", "php8.4-fpm", "postfix", "redis-server", "rspamd"]
    # Debian 12's postfix.service only starts its instance: the instance is what runs.
    assert "postfix@-" in monitoring.watched_units(system, ["backup_mx"], bookworm)
    assert monitoring.watched_units(system, ["monitoring"], trixie) == [
        "fail2ban", "nftables", "prometheus", "prometheus-alertmanager"]
    include = monitoring.unit_include(["postfix@-", "php8.4-fpm"])
    assert include == r"(postfix@-|php8\.4-fpm)\.service"
    assert " " not in include and "'" not in include      # systemd splits ARGS at spaces, keeps quotes


def test_rules_read_only_the_systems_hosts():
    """Debian's default configuration scrapes localhost until ours replaces it: those
    series carry no host label and must raise nothing."""
    assert all('host!=""' in expr for _, expr, _ in monitoring.RULES)


def test_the_metrics_a_host_writes_name_queue_certificate_blocklists_and_rspamd(monkeypatch):
    from mailstack.host import status as host_status
    monkeypatch.setattr(host_status, "queue", lambda now: {"messages": 12, "oldest": 300})
    monkeypatch.setattr(host_status, "certificate", lambda now: {"not_after": "x", "seconds_left": 86400})
    monkeypatch.setattr(host_status, "listed", lambda address, zone: zone == "bl.example")
    monkeypatch.setattr(host_status, "rspamd_counters",
                        lambda: {"scanned": 40, "actions": {"no action": 30, "reject": 10}})
    lines = [line for line in host_status.metrics(1000.0, "192.0.2.10", ["bl.example", "ok.example"]).splitlines()
             if not line.startswith("#")]
    assert lines == ["mailstack_queue_messages 12", "mailstack_queue_oldest_seconds 300",
                     "mailstack_certificate_expiry_timestamp_seconds 87400",
                     'mailstack_dnsbl_listed{zone="bl.example"} 1', 'mailstack_dnsbl_listed{zone="ok.example"} 0',
                     "mailstack_rspamd_scanned_total 40", 'mailstack_rspamd_actions_total{action="no action"} 30',
                     'mailstack_rspamd_actions_total{action="reject"} 10']
    # Every series once introduced by its TYPE (the textfile collector refuses repeats).
    types = [line for line in host_status.metrics(1000.0, "192.0.2.10", ["bl.example", "ok.example"]).splitlines()
             if line.startswith("# TYPE")]
    assert len(types) == len(set(types)) == 6

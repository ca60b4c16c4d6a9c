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
                             "192.0.2.11:9100": "mx2.example.org"}}
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}


def test_every_rule_waits_the_datas_delay_and_says_which_host(write_data):
    rules = yaml.safe_load(monitoring.prometheus_rules(load_system(write_data(WATCHED))))["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"HostDown", "ServiceDown", "DiskFilling", "BackupOld", "BackupFailed"}
    assert all(r["for"] == "120s" and "{{ $labels.host }}" in r["annotations"]["summary"] for r in rules)


def test_alerts_go_to_the_postmaster_through_the_primary_with_tls(write_data):
    system = load_system(write_data(WATCHED))
    config = yaml.safe_load(monitoring.alertmanager_config(system, "watch.example.org"))
    assert config["global"]["smtp_smarthost"] == "mx1.example.org:25"
    assert config["global"]["smtp_require_tls"] is True
    (receiver,) = config["receivers"]
    assert receiver["email_configs"] == [{"to": "postmaster@example.org", "send_resolved": True,
                                          "tls_config": {"insecure_skip_verify": False}}]


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

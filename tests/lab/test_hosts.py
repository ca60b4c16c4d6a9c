"""testinfra: every lab host runs systemd cleanly, its services, and listens only
where it should."""
import pytest

from mailstack import releases

SERVICES = {
    "dns": ["ssh", "knot", "unbound", "systemd-journald", "nftables", "fail2ban", "nullmailer",
            "prometheus-node-exporter"],
    "mx1": ["ssh", "postfix", "dovecot", "rspamd", "redis-server", "mailstack-expire.timer",
            "certbot.timer", "nginx", "postfix-mta-sts-resolver", "{php_fpm}", "systemd-journald",
            "nftables", "fail2ban", "mailstack-password.socket", "prometheus-node-exporter"],
    "mx2": ["ssh", "postfix", "rspamd", "redis-server", "nginx", "postfix-mta-sts-resolver",
            "certbot.timer", "systemd-journald", "nftables", "fail2ban", "prometheus-node-exporter"],
    "backup": ["ssh", "systemd-journald", "nftables", "fail2ban", "nullmailer",
               "prometheus", "prometheus-alertmanager", "prometheus-node-exporter"],
    "outside": ["ssh", "postfix", "opendkim", "pebble", "nginx", "systemd-journald"],
}
# Listening TCP sockets, as "address:port" ("*" = every address).
LISTENING = {
    "dns": {"*:22", "127.0.0.1:53", "{address}:53", "127.0.0.2:53", "{address}:5300",
            "{address}:9100"},                                     # node exporter
    "mx1": {"*:22", "*:25", "*:465", "*:587", "*:110", "*:143", "*:993", "*:995", "*:4190",
            "*:80", "*:443",                                       # ACME, MTA-STS (nginx)
            "127.0.0.1:8461",                                      # MTA-STS resolver
            "127.0.0.1:12340", "{address}:12340",                  # Dovecot quota-status
            "127.0.0.1:106",                                       # password changes
            "127.0.0.1:11334",                                     # rspamd controller (milter: a socket)
            "127.0.0.1:6379", "[::1]:6379",                         # redis
            "{address}:9100", "{address}:9900"},                   # node exporter, Dovecot's stats
    "mx2": {"*:22", "*:25", "*:80", "*:443",
            "127.0.0.1:8461",                                      # MTA-STS resolver
            "127.0.0.1:11334",                                     # rspamd controller (milter: a socket)
            "127.0.0.1:6379", "[::1]:6379",                         # redis
            "{address}:9100"},                                     # node exporter
    "backup": {"*:22", "{address}:9100",                           # node exporter
               "127.0.0.1:9090", "127.0.0.1:9093"},                # Prometheus, Alertmanager
    "outside": {"*:22", "*:25", "*:587", "*:443", "*:14000", "*:15000", "127.0.0.1:8891"},
}


def listening(host):
    found = set()
    for line in host.check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        addr, port = local.rsplit(":", 1)
        addr = {"0.0.0.0": "*", "[::]": "*", "*": "*"}.get(addr, addr)
        found.add(f"{addr}:{port}")
    return found


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_is_running_with_no_failed_unit(hosts, name):
    state = hosts[name].run("systemctl is-system-running").stdout.strip()
    failed = hosts[name].check_output("systemctl list-units --state=failed --plain --no-legend")
    assert (state, failed) == ("running", "")


@pytest.mark.parametrize("name", SERVICES)
def test_expected_services_are_active_and_enabled(hosts, lab, name):
    release = releases.named(lab["hosts"][name]["release"])
    for service in (s.format(php_fpm=release.php_fpm) for s in SERVICES[name]):
        unit = hosts[name].service(service)
        assert unit.is_running, f"{name}: {service} is not running"
        if service != "systemd-journald":
            assert unit.is_enabled, f"{name}: {service} is not enabled"


@pytest.mark.parametrize("name", SERVICES)
def test_only_expected_ports_listen(hosts, lab, name):
    expected = {p.format(address=lab["hosts"][name]["address"]) for p in LISTENING[name]}
    assert listening(hosts[name]) == expected

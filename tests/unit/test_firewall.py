"""What each host lets in, from the model (mailstack/firewall.py)."""
from mailstack.firewall import rules
from mailstack.model import load_system

from .conftest import VALID

WITH_ALL_ROLES = VALID.replace(
    "  mx2.example.org: {address: 192.0.2.11, roles: [backup_mx]}",
    "  mx2.example.org: {address: 192.0.2.11, roles: [backup_mx]}\n"
    "  bk.example.org: {address: 192.0.2.12, roles: [backup]}\n"
    "  ns.example.org: {address: 2001:db8::53, roles: [dns]}")


def host_rules(system, fqdn, **kw):
    return rules(system, next(h for h in system.hosts if h.fqdn == fqdn), **kw)


def test_the_primary_serves_mail_web_and_client_ports_and_quota_answers_to_the_backup_mx(write_data):
    s = load_system(write_data(WITH_ALL_ROLES))
    r = host_rules(s, "mx1.example.org")
    assert r.public["tcp"] == {22, 25, 80, 110, 143, 443, 465, 587, 993, 995, 4190}
    assert r.restricted == {("tcp", 12340): {"192.0.2.11"}}


def test_the_backup_mx_serves_smtp_and_the_acme_challenge_only(write_data):
    r = host_rules(load_system(write_data(WITH_ALL_ROLES)), "mx2.example.org")
    assert r.public["tcp"] == {22, 25, 80, 443} and r.restricted == {}


def test_ssh_only_from_the_operator_and_the_backup_host_from_its_clients(write_data):
    s = load_system(write_data("firewall: {ssh_from: [198.51.100.7/32]}\n" + WITH_ALL_ROLES))
    assert host_rules(s, "mx1.example.org").restricted[("tcp", 22)] == {"198.51.100.7/32"}
    assert 22 not in host_rules(s, "mx1.example.org").public["tcp"]
    backup = host_rules(s, "bk.example.org")
    assert backup.restricted[("tcp", 22)] == {"198.51.100.7/32", "192.0.2.10", "192.0.2.11",
                                              "2001:db8::53"}
    assert backup.public == {"tcp": set(), "udp": set()}


def test_the_dns_host_answers_the_world_and_resolves_only_for_the_system(write_data):
    s = load_system(write_data(WITH_ALL_ROLES))
    production = host_rules(s, "ns.example.org")
    assert {53} <= production.public["tcp"] and {53} == production.public["udp"]
    lab = host_rules(s, "ns.example.org", dns_port=5300, lab_network="10.66.0.0/24")
    assert 5300 in lab.public["udp"] and 53 not in lab.public["udp"]
    assert "10.66.0.0/24" in lab.restricted[("udp", 53)]


def test_bad_ssh_from_and_fail2ban_settings_are_refused(write_data):
    import pytest

    from mailstack.model import DataError
    for bad, field in (("firewall: {ssh_from: [anywhere]}", "firewall.ssh_from[0]"),
                       ("fail2ban: {maxretry: 0}", "fail2ban.maxretry"),
                       ("fail2ban: {bantime: forever}", "fail2ban.bantime"),
                       ("fail2ban: {ignore: ['10.0.0.0/8; reboot']}", "fail2ban.ignore[0]")):
        with pytest.raises(DataError, match=field.replace("[", r"\[").replace("]", r"\]")):
            load_system(write_data(bad + "\n" + WITH_ALL_ROLES))


def test_metrics_are_open_to_the_monitoring_hosts_only(write_data):
    system = load_system(write_data(VALID.replace(
        "hosts:\n", "hosts:\n  watch.example.org: {address: 192.0.2.30, roles: [backup, monitoring]}\n")))
    by_name = {h.fqdn: h for h in system.hosts}
    mx1 = rules(system, by_name["mx1.example.org"])
    assert mx1.restricted[("tcp", 9100)] == {"192.0.2.30"}
    assert 9100 not in mx1.public["tcp"]
    # Dovecot's statistics: on the primary only, for the same hosts.
    assert mx1.restricted[("tcp", 9900)] == {"192.0.2.30"}
    assert ("tcp", 9900) not in rules(system, by_name["mx2.example.org"]).restricted
    without = load_system(write_data(VALID, name="other.yml"))
    assert ("tcp", 9100) not in rules(without, without.primary_mx).restricted
    assert ("tcp", 9900) not in rules(without, without.primary_mx).restricted

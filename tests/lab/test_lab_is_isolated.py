"""The lab talks only on its own bridge: shown from routing tables, never by probing."""
import subprocess
from pathlib import Path

import dns.resolver
import pytest


def test_machines_have_no_default_route_and_only_the_lab_network(hosts, lab):
    prefix = lab["operator_address"].rsplit(".", 1)[0] + ".0/24"
    for name, host in hosts.items():
        routes = host.check_output("ip -4 route show").splitlines()
        assert not [r for r in routes if r.startswith("default")], f"{name} has a default route"
        assert [r.split()[0] for r in routes] == [prefix], f"{name}: {routes}"


def test_bridge_has_no_uplink_and_forwarding_stays_off(lab):
    members = subprocess.run(["ip", "-o", "link", "show", "master", lab["bridge"]],
                             capture_output=True, text=True, check=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in members.splitlines()}
    assert names == {h["veth"] for h in lab["hosts"].values()}
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"


def test_every_machine_resolves_through_the_lab_dns(hosts, lab):
    for name, host in hosts.items():
        assert host.file("/etc/resolv.conf").contains(f"^nameserver {lab['resolver']}$"), name


def test_lab_resolver_refuses_names_outside_the_lab(resolver):
    with pytest.raises((dns.resolver.NoNameservers, dns.resolver.NXDOMAIN)):
        resolver.resolve("example.com", "A")  # a reserved name outside the lab

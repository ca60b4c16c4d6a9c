"""The lab's machines (lab/hosts.yml) and its mail data agree."""
from pathlib import Path

import yaml

from mailstack.model import parse_system

ROOT = Path(__file__).resolve().parents[2]


def test_lab_mail_hosts_are_lab_machines_with_the_same_addresses():
    machines = yaml.safe_load((ROOT / "lab" / "hosts.yml").read_text())["machines"]
    data = yaml.safe_load((ROOT / "inventory" / "lab" / "mail.yml").read_text())
    by_fqdn = {m["fqdn"]: m["address"] for m in machines.values()}
    assert {f: h["address"] for f, h in data["hosts"].items()} == \
        {f: a for f, a in by_fqdn.items() if f in data["hosts"]}
    assert set(machines) == {"dns", "mx1", "mx2", "backup", "outside"}


def test_lab_domains_use_the_test_tld():
    data = yaml.safe_load((ROOT / "inventory" / "lab" / "mail.yml").read_text())
    machines = yaml.safe_load((ROOT / "lab" / "hosts.yml").read_text())["machines"]
    names = [d["name"] for d in data["domains"]] + [m["fqdn"] for m in machines.values()]
    assert len(data["domains"]) >= 2
    assert all(n.endswith(".test") for n in names)


def test_example_production_data_is_valid():
    path = ROOT / "inventory" / "example" / "mail.yml"
    system = parse_system(yaml.safe_load(path.read_text()), path)
    assert system.primary_mx and system.backup_mx

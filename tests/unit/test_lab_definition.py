"""The lab's machines (lab/hosts.yml) and its mail data agree."""
from pathlib import Path

import pytest
import yaml

from mailstack.host.password import hash_password
from mailstack.model import DataError, load_system, parse_system

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


EXAMPLE = ROOT / "inventory" / "example" / "mail.yml"
PLACEHOLDER = "{SHA512-CRYPT}$6$REPLACE-ME..."


def test_example_production_data_is_valid_once_its_hashes_are_real():
    raw = yaml.safe_load(EXAMPLE.read_text())
    assert {m["password_hash"] for m in raw["mailboxes"]} == {PLACEHOLDER}
    for m in raw["mailboxes"]:
        m["password_hash"] = hash_password(m["address"])
    system = parse_system(raw, EXAMPLE)
    assert system.primary_mx and system.backup_mx


def test_example_placeholder_hashes_are_refused():
    with pytest.raises(DataError) as err:
        load_system(EXAMPLE)
    assert str(err.value) == (f"{EXAMPLE}: mailboxes[0].password_hash: '{PLACEHOLDER}' is a "
                              "placeholder: make a hash with `make hash-password`")

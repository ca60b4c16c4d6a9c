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
    assert {n for n, m in machines.items() if not m.get("on_demand")} == {"dns", "mx1", "mx2", "backup",
                                                                         "outside"}


def test_the_old_provider_is_made_on_demand_and_its_client_is_not_in_the_lab_data():
    """Only the migration scenario pays for oldmail; every other scenario sees the
    lab's data as it always was."""
    topology = yaml.safe_load((ROOT / "lab" / "hosts.yml").read_text())
    machines, old = topology["machines"], topology["old_provider"]
    assert {n for n, m in machines.items() if m.get("on_demand")} == {old["machine"]} == {"oldmail"}
    addresses = [m["address"] for m in machines.values()]
    assert len(set(addresses)) == len(addresses)
    data = yaml.safe_load((ROOT / "inventory" / "lab" / "mail.yml").read_text())
    assert old["domain"] not in [d["name"] for d in data["domains"]]
    assert old["domain"].endswith(".test") and machines["oldmail"]["fqdn"].endswith(".test")
    local_parts = [login.split("@")[0] for login in old["logins"]]
    assert len(set(local_parts)) == len(local_parts)
    assert all(login.split("@")[1:] in ([], [old["domain"]]) for login in old["logins"])


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


def labctl():
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader
    loader = SourceFileLoader("labctl", str(ROOT / "lab" / "labctl"))
    module = module_from_spec(spec_from_loader("labctl", loader))
    loader.exec_module(module)
    return module


def test_an_on_demand_machine_is_in_the_lab_once_made(tmp_path, monkeypatch):
    lab = labctl()
    monkeypatch.setattr(lab, "ROOT", tmp_path)
    monkeypatch.setattr(lab, "PROVIDER", "lxc")
    assert lab.present() == ["dns", "mx1", "mx2", "backup", "outside"]
    (tmp_path / ".vagrant" / "machines" / "oldmail" / "lxc").mkdir(parents=True)
    (tmp_path / ".vagrant" / "machines" / "oldmail" / "lxc" / "id").write_text("mailstack-oldmail")
    assert lab.present()[-1] == "oldmail"


def test_the_old_providers_passwords_are_made_once_for_the_operator_only(tmp_path, monkeypatch):
    lab = labctl()
    monkeypatch.setattr(lab, "LAB_DIR", tmp_path)
    first = lab.ensure_old_provider()
    creds, users = Path(first["credentials_file"]), Path(first["users_file"])
    assert {p.stat().st_mode & 0o777 for p in (creds, users)} == {0o600}
    passwords = yaml.safe_load(creds.read_text())
    assert sorted(passwords) == sorted(first["logins"]) == sorted(
        ["peter@initech.test", "milton", "samir@initech.test"])
    assert first["logins"]["milton"] == "milton@initech.test"
    # The old server knows each person by local part, and only a hash of the password.
    assert [line.split(":")[0] for line in users.read_text().splitlines()] == ["peter", "milton", "samir"]
    assert not any(p in users.read_text() for p in passwords.values())
    assert any('"' in p and "%{" in p and "\\" in p for p in passwords.values())
    assert lab.ensure_old_provider() == first and yaml.safe_load(creds.read_text()) == passwords

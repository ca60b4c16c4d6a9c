"""bench/generate_system.py: the scale check's system is valid data of the size it
says, on the lab's hosts."""
import importlib.util
from collections import Counter

import yaml

from mailstack.model import load_system

from .conftest import HASH
from .test_cli import ROOT

spec = importlib.util.spec_from_file_location("generate_system", ROOT / "bench" / "generate_system.py")
generate_system = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate_system)


def test_1000_mailboxes_over_50_domains_validate_on_the_lab_hosts(tmp_path):
    inventory = generate_system.generate(tmp_path, password_hash=HASH)
    assert inventory == tmp_path / "scale.py"
    system = load_system(tmp_path / "scale" / "mail.yml")
    assert len(system.mailboxes) == 1000 and len(system.domains) == 50
    assert set(Counter(m.domain for m in system.mailboxes).values()) == {20}
    assert system.postmaster == "postmaster@acme.test"
    assert 3 <= len([d for d in system.domains if d.catch_all]) <= 10
    assert len({m.quota for m in system.mailboxes}) >= 4
    assert len({m.protocols for m in system.mailboxes}) == 3
    assert {m.password_hash for m in system.mailboxes} == {HASH}
    # The lab's hashes live in the lab (.lab/); any valid ones do here.
    lab_data = generate_system.LAB_DATA
    lab = load_system(lab_data, hashes_text=yaml.safe_dump(
        {m["address"]: HASH for m in yaml.safe_load(lab_data.read_text())["mailboxes"]}))
    assert (system.hosts, system.backup, system.dns) == (lab.hosts, lab.backup, lab.dns)
    assert "/ \"scale\" / \"mail.yml\"" in inventory.read_text()

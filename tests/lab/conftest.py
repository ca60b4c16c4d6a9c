"""Lab scenarios share one lab: brought up and deployed once per run (only when the
tree changed since the last deploy), then each test reads it over SSH and real
mail protocols."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[2]
LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]
LAB_JSON = ROOT / ".lab" / "lab.json"


@pytest.fixture(scope="session")
def lab():
    if not LAB_JSON.exists():
        subprocess.run(LABCTL + ["up"], check=True)
    subprocess.run(LABCTL + ["ensure-deployed"], check=True)
    return json.loads(LAB_JSON.read_text())


@pytest.fixture(scope="session")
def hosts(lab):
    """name -> testinfra host over the lab's SSH config (one control master each)."""
    return {name: testinfra.get_host(f"ssh://{name}", ssh_config=lab["ssh_config"], sudo=True)
            for name in lab["hosts"]}


@pytest.fixture(scope="session")
def mailbox(lab):
    by_address = {m["address"]: m for m in lab["mailboxes"]}
    return by_address.__getitem__

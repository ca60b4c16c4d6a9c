"""A second deploy with unchanged input changes nothing; an agency deploys every
client's system with one command (mailstack deploy DIR), and one client's bad data
or unreachable hosts stop no other."""
import json
import os
import shutil
import subprocess

from .conftest import ROOT, lab_variant

# Operations allowed to report a change on every run, each with the reason.
ALLOWED_TO_CHANGE = {}

HOSTS = ["mx1.acme.test:    {address: 10.66.0.11, roles: [primary_mx]",
         "mx2.acme.test:    {address: 10.66.0.12, roles: [backup_mx]",
         "backup.acme.test: {address: 10.66.0.13, roles: [backup, monitoring]",
         "dns.acme.test:    {address: 10.66.0.10, roles: [dns]"]
INVENTORY = """from pathlib import Path
from mailstack.inventory import inventory
globals().update(inventory(Path(__file__).resolve().parent / "{name}" / "mail.yml"))
"""


def client(clients, name, *replacements):
    """clients/<name>.py and clients/<name>/mail.yml: the lab's data, changed."""
    (clients / name).mkdir()
    lab_variant(clients / name / "mail.yml", ("name: lab", f"name: {name}"), *replacements)
    (clients / f"{name}.py").write_text(INVENTORY.format(name=name))


def test_second_deploy_reports_zero_changes_and_one_clients_failure_stops_no_other(lab, tmp_path):
    clients = tmp_path / "clients"
    clients.mkdir()
    # The lab itself, as one of the agency's clients...
    (clients / "lab.py").symlink_to(ROOT / "inventory" / "lab.py")
    (clients / "lab").symlink_to(ROOT / "inventory" / "lab")
    # ... one whose data has a mistake, and one whose hosts do not answer (SSH to a
    # closed port of this machine: nothing leaves it).
    client(clients, "broken", ("  quota: 1G", "  quota: lots"))
    client(clients, "unreachable", *[(h, h + ", ssh: {hostname: 127.0.0.1, port: 1}") for h in HOSTS])
    try:
        env = {k: v for k, v in os.environ.items() if k != "MAILSTACK_LAB_DATA"}
        result = subprocess.run([str(ROOT / ".venv" / "bin" / "mailstack"), "deploy", str(clients),
                                 "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(ROOT / "secrets" / "unreachable", ignore_errors=True)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {r["system"]: r for r in json.loads(result.stdout)["systems"]}
    assert rows.keys() == {"broken", "lab", "unreachable"}
    # The lab deployed, with nothing to change; its whole output is in its log.
    lab_row = rows["lab"]
    assert (lab_row["status"], lab_row["changes"], lab_row["errors"]) == ("ok", 0, 0), lab_row
    assert lab_row["hosts"] == len(lab["hosts"]), lab_row
    log = (clients / "logs" / "lab.log").read_text()
    results = json.loads(next(line for line in reversed(log.splitlines()) if line.startswith("{")))
    operations = results["results"]["operations"]
    changed = {op["name"]: op["success"] for op in operations
               if op["success"] and op["name"] not in ALLOWED_TO_CHANGE}
    assert changed == {}
    assert not [op for op in operations if op["error"]]
    assert len(operations) > 40  # the whole deploy ran (operations, each on its hosts)
    # The mistake is named (file, field, value) and its system never ran.
    broken = rows["broken"]
    assert broken["status"] == "failed" and broken["log"] is None
    assert f"{clients}/broken/mail.yml: defaults.quota: 'lots' is not a size" in broken["message"], broken
    # The unreachable one failed on its own, and says where to read why.
    assert rows["unreachable"]["status"] == "failed", rows["unreachable"]
    assert rows["unreachable"]["message"] == ("could not connect to backup.acme.test, dns.acme.test, "
                                              "mx1.acme.test, mx2.acme.test"), rows["unreachable"]
    assert (clients / "logs" / "unreachable.log").is_file()

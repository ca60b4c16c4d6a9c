"""A second deploy with unchanged input changes nothing."""
import json
import subprocess

from .conftest import LABCTL, ROOT

# Operations allowed to report a change on every run, each with the reason.
ALLOWED_TO_CHANGE = {}


def test_second_deploy_reports_zero_changes(lab, tmp_path):
    out = tmp_path / "deploy.json"
    subprocess.run(LABCTL + ["deploy", str(out)], check=True, cwd=ROOT)
    results = json.loads(out.read_text())["results"]["operations"]
    changed = {op["name"]: op["success"] for op in results
               if op["success"] and op["name"] not in ALLOWED_TO_CHANGE}
    assert changed == {}
    assert not [op for op in results if op["error"]]
    assert len(results) > 40  # the whole deploy ran (operations, each on its hosts)

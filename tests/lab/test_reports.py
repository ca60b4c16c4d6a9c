"""Receivers' DMARC aggregate and TLS-RPT reports (made here as a receiver makes
them, for mail mx1 sent and for a forgery) mailed by outside to the postmaster:
`mailstack reports` shows mx1 passing, the forgery failing and rejected by our
policy, and the TLS failures; --mail sends the digest to the postmaster."""
import base64
import json
import subprocess
import sys
import time

from ..reports import aggregate_report, tls_report
from .conftest import ROOT
from .mailclient import wait_until

INVENTORY = "inventory/lab.py"


def mailstack_reports(*args):
    result = subprocess.run([sys.executable, "-m", "mailstack", "reports", INVENTORY, *args], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_reports_show_mx1_passing_and_a_forgery_failing(lab, hosts, mx1, mailbox):
    token = str(time.time_ns())
    mx1_address, outside = lab["hosts"]["mx1"]["address"], hosts["outside"]
    forger = "198.51.100.77"
    for raw in (aggregate_report("example.test", f"agg-{token}", "acme.test",
                                 [(mx1_address, 4, "pass", "pass"), (forger, 2, "fail", "fail")]),
                tls_report("example.test", f"tls-{token}", "acme.test", 9, {"validation-failure": 1})):
        outside.run_expect([0], f"printf %s {base64.b64encode(raw).decode()} | base64 -d | "
                                "/usr/sbin/sendmail -oi -f reports@example.test postmaster@acme.test")

    def report_arrived():
        found = json.loads(mailstack_reports("--since", "1h", "--json"))
        sources = {s["source"]: s for s in found["dmarc"].get("acme.test", {}).get("sources", [])}
        return (found if forger in sources and mx1_address in sources
                and found["tls"].get("acme.test", {}).get("failed") else None)
    wait_until(report_arrived, timeout=120, what="the reports did not reach the postmaster")
    found = report_arrived()
    sources = {s["source"]: s for s in found["dmarc"]["acme.test"]["sources"]}
    assert sources[mx1_address]["host"] == "mx1.acme.test" and sources[mx1_address]["dmarc"] == "pass"
    assert sources[forger]["dmarc"] == "fail" and sources[forger]["dispositions"] == ["reject"]
    assert found["tls"]["acme.test"]["failures"]["validation-failure"] >= 1
    text = mailstack_reports("--since", "1h", "--mail")
    (ROOT / ".lab" / "artifacts").mkdir(parents=True, exist_ok=True)
    (ROOT / ".lab" / "artifacts" / "reports.txt").write_text(text)      # for the README
    assert f"{mx1_address} (mx1.acme.test)" in text and f"{forger}" in text
    imap = mx1.imap(mailbox("alice@acme.test"))        # postmaster@acme.test delivers to her
    imap.select("INBOX")
    wait_until(lambda: imap.select("INBOX") and imap.search(
        None, "SUBJECT", '"DMARC and TLS reports for lab"', "BODY", forger)[1][0], timeout=60,
        what="the digest did not reach the postmaster")
    imap.logout()

"""TLS as an independent scanner sees it: Debian's testssl.sh, run from outside
against every TLS port of mx1 (its JSON kept in .lab/artifacts/)."""
import json

import pytest

from .conftest import ROOT

# (port, STARTTLS protocol). testssl.sh 3.0.8 has no ManageSieve STARTTLS: 4190 is
# covered by test_tls.py's handshakes.
PORTS = [(25, "smtp"), (465, None), (587, "smtp"), (143, "imap"), (993, None), (110, "pop3"),
         (995, None), (443, None)]
# Findings allowed, each with its reason (README, "Security"). Port 25 keeps CBC
# suites for old senders: opportunistic TLS with them beats plaintext, which is what
# such a sender would fall back to; testssl.sh then calls LUCKY13 "potentially" there,
# and the CBC suites' list "average" (testssl.sh 3.0, Debian 12) or "obsoleted" (3.2).
ALLOWED = {25: {"LUCKY13", "cipherlist_AVERAGE", "cipherlist_OBSOLETED"}}
PROBLEM = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@pytest.fixture(scope="module")
def scans(hosts, lab):
    """{port: testssl.sh's findings}, all ports scanned at once."""
    outside, address = hosts["outside"], lab["hosts"]["mx1"]["address"]
    outside.run("rm -rf /root/testssl && mkdir -p /root/testssl")
    jobs = " & ".join(
        f"testssl --quiet --warnings off --color 0 --ip {address} -p -s -U "
        + (f"-t {starttls} " if starttls else "")
        + f"--jsonfile /root/testssl/{port}.json mx1.acme.test:{port} >/dev/null 2>&1"
        for port, starttls in PORTS)
    outside.run(f"bash -c '{jobs} & wait'")
    artifacts = ROOT / ".lab" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    found = {}
    for port, _ in PORTS:
        text = outside.check_output(f"cat /root/testssl/{port}.json")
        (artifacts / f"testssl-{port}.json").write_text(text)
        found[port] = json.loads(text)
    return found


@pytest.mark.parametrize("port", [p for p, _ in PORTS])
def test_testssl_finds_only_tls_1_2_and_1_3_strong_ciphers_and_no_vulnerability(scans, port):
    findings = {f["id"]: f for f in scans[port]}
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[old]["finding"] == "not offered", (old, findings[old])
    assert findings["TLS1_2"]["finding"].startswith("offered")
    assert findings["TLS1_3"]["finding"].startswith("offered")
    flagged = {f["id"]: f["finding"] for f in scans[port] if f["severity"] in PROBLEM}
    assert set(flagged) <= ALLOWED.get(port, set()), flagged

"""After every scenario, no log of any lab host (the whole journal, every file
under /var/log) holds a fault other than those a scenario provoked on purpose:
each allowed line is named by the scenario that provokes it, on its host, while
it ran (tests/lab/logs.py)."""
import time
import uuid

import pytest

from .conftest import ROOT, WINDOWS
from .logs import SKIP_FILES, Provoked, unexpected

INJECTED = Provoked("tests/lab/test_logs_are_clean.py::test_the_log_check_reports_a_fault_"
                    "injected_into_every_log_of_every_host", "*",
                    r"mailstack-logcheck-injected [0-9a-f]{12}: error")
PROVOKED = [INJECTED]
REPORT = ROOT / ".lab" / "artifacts" / "log-check.txt"


def during(line):
    """The scenarios that ran when `line` was logged (for the report)."""
    return [nodeid for nodeid, spans in WINDOWS.items()
            if line.time and any(s - 2 <= line.time <= e + 15 for s, e in spans)]


@pytest.mark.after_all
def test_no_log_of_any_host_holds_a_fault_no_scenario_provoked(logs, hosts):
    for name in hosts:
        logs.read(name)
    bad, used = unexpected(logs.lines, PROVOKED, WINDOWS)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        f"{len(logs.lines)} fault lines read, {len(bad)} unexpected\n\n"
        + "".join(f"{n:5} {p.scenario} {p.host} {p.pattern}\n" for p, n in used.items())
        + "\nunexpected:\n"
        + "".join(f"{line}\n    during: {' '.join(during(line)) or '-'}\n" for line in bad))
    assert not bad, f"{len(bad)} unexpected fault lines, see {REPORT}:\n" + "\n".join(
        str(line) for line in bad[:40])


def test_the_log_check_reports_a_fault_injected_into_every_log_of_every_host(logs, hosts):
    token = uuid.uuid4().hex[:12]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    text = f"mailstack-logcheck-injected {token}: error: a fault only this test wrote"
    injected = set()
    for name, h in hosts.items():
        # The journal, under the names the mail services log as (any other is read too).
        for ident in ("postfix/submission/smtpd", "dovecot", "rspamd", "nginx", "knot",
                      "unbound", "mailstack-backup", "sshd"):
            h.run_expect([0], f"logger -p mail.info -t {ident} '{text}'")
            injected.add((name, f"journal {ident}"))
        # Every log file the check reads (at the file's end, as its program would).
        files = h.check_output(f"find /var/log -type f | grep -vE '{SKIP_FILES}' || true").split()
        assert files, name
        for path in files:
            h.run_expect([0], f"printf '%s\\n' '{stamp} {text}' >> {path}")
            injected.add((name, path))
    found = set()
    for name in hosts:
        found |= {(line.host, line.source) for line in logs.read(name) if token in line.text}
    assert found == injected
    # Without the entry that allows them, every injected line is reported.
    mine = [line for line in logs.lines if token in line.text]
    bad, _ = unexpected(mine, [p for p in PROVOKED if p is not INJECTED], WINDOWS)
    assert len(bad) == len(injected)

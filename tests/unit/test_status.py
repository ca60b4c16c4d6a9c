"""`mailstack status` reads each host's report (mailstack/host/status.py) and the
backups' status into rows; every row with a problem makes it exit 1."""
import datetime

import dns.rdata
import dns.resolver

from mailstack import status
from mailstack.host import status as host_status
from mailstack.model import load_system

from .conftest import VALID

WELL = {"services": {"units": {"postfix": "active", "dovecot": "active"}, "failed": []},
        "certificate": {"not_after": "2027-02-01T00:00:00Z", "seconds_left": 60 * 86400},
        "queue": {"messages": 2, "oldest": 30}, "disk": {"/": 41.0, "/var/vmail": 12.5},
        "quota": [], "peers": {"mx2.example.org:25": True}}


def problems(checks):
    return {(c.check, c.target): c.problem for c in checks if c.problem}


def test_a_well_host_gives_rows_without_problems():
    checks = status.host_checks("mx1.example.org", WELL)
    assert problems(checks) == {}
    assert {c.check for c in checks} == {"services", "certificate", "queue", "disk", "quota", "mx reachable"}


def test_each_fault_on_a_host_is_named():
    report = {**WELL,
              "services": {"units": {"postfix": "active", "dovecot": "inactive"}, "failed": ["foo.service"]},
              "certificate": {"not_after": "2026-12-10T00:00:00Z", "seconds_left": 5 * 86400},
              "queue": {"messages": 40, "oldest": 7200}, "disk": {"/": 95.5},
              "quota": [{"mailbox": "anna@example.org", "percent": 97}],
              "peers": {"mx2.example.org:25": False}}
    assert problems(status.host_checks("mx1.example.org", report)) == {
        ("services", "mx1.example.org"): "dovecot inactive; foo.service failed",
        ("certificate", "mx1.example.org"): "expires in 5 days",
        ("queue", "mx1.example.org"): "oldest message waits 120 min",
        ("disk", "mx1.example.org"): "/ 95.5%",
        ("quota", "mx1.example.org"): "anna@example.org 97%",
        ("mx reachable", "mx1.example.org -> mx2.example.org:25"): "no answer"}


def test_a_queue_holding_more_than_the_data_allows_is_named():
    full = {**WELL, "queue": {"messages": 12, "oldest": 60}}
    assert problems(status.host_checks("mx2.example.org", full, queue_max=10)) == {
        ("queue", "mx2.example.org"): "12 messages waiting"}
    assert problems(status.host_checks("mx2.example.org", full, queue_max=12)) == {}
    assert problems(status.host_checks("mx2.example.org", full)) == {}      # 100 by default


def test_the_queue_threshold_is_read_from_the_data():
    assert load_system("mail.yml", text=VALID).queue.warn_messages == 100
    assert load_system("mail.yml", text="queue: {warn_messages: 7}\n" + VALID).queue.warn_messages == 7


def test_a_host_that_does_not_answer_is_a_problem():
    assert problems(status.host_checks("mx2.example.org", None)) == {("host", "mx2.example.org"): "no answer"}
    assert status.parse_host_reports({"mx2.example.org": "sudo: command not found"}) == {"mx2.example.org": None}


def test_a_backup_that_failed_or_is_older_than_a_day_and_two_hours_needs_attention():
    now = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.timezone.utc)
    rows = [{"host": "a", "last_success": "2026-12-02T02:00:00+00:00", "problem": ""},
            {"host": "b", "last_success": "2026-12-01T08:00:00+00:00", "problem": ""},
            {"host": "c", "last_success": None, "problem": "no backup yet"}]
    assert problems(status.backup_checks(rows, now)) == {("backup", "b"): "last success 28 h ago",
                                                         ("backup", "c"): "no backup yet"}


def test_the_table_says_how_many_problems_and_json_says_ok():
    checks = status.host_checks("mx1.example.org", {**WELL, "disk": {"/": 99.0}})
    assert status.table("lab", checks).splitlines()[0] == f"lab: 1 problem(s) in {len(checks)} checks"
    assert status.as_json("lab", checks)["ok"] is False
    assert status.as_json("lab", status.host_checks("mx1.example.org", WELL))["ok"] is True


def test_the_host_program_skips_itself_among_the_peers(monkeypatch):
    monkeypatch.setattr(host_status.socket, "getfqdn", lambda: "mx1.example.org")
    monkeypatch.setattr(host_status.socket, "create_connection",
                        lambda address, timeout: (_ for _ in ()).throw(OSError("refused")))
    assert host_status.peers(["mx1.example.org:25", "mx2.example.org:25"]) == {"mx2.example.org:25": False}


class Blocklist:
    """A resolver that answers as a blocklist listing only 192.0.2.10 (mx1 of VALID)."""

    def resolve(self, name, rtype):
        if not name.startswith("10.2.0.192."):
            raise dns.resolver.NXDOMAIN()
        text = '"spam seen"' if rtype == "TXT" else "127.0.0.2"
        return [dns.rdata.from_text("IN", rtype, text)]


def test_an_mx_address_on_a_blocklist_the_data_names_is_a_problem(write_data):
    system = load_system(write_data("dnsbls: [dnsbl.example, bl.example]\n" + VALID))
    assert problems(status.dnsbl_checks(system, Blocklist())) == {
        ("dnsbl", "mx1.example.org on dnsbl.example"): "listed (127.0.0.2): spam seen",
        ("dnsbl", "mx1.example.org on bl.example"): "listed (127.0.0.2): spam seen"}
    assert len(status.dnsbl_checks(system, Blocklist())) == 4      # mx2 on each, clean

"""The backup host verifies what happened since it last looked before it prunes
(mailstack-backup-server), keeps on arrival times, and tells the postmaster and
`mailstack backup-status` when it refused."""
import datetime
import email
import email.policy
import json
import os

import pytest

from mailstack.backup import report
from mailstack.host import backup_server
from mailstack.host.backup_server import BACKDATE, SKEW, keep_by_arrival, verify
from mailstack.host.backup_tools import Borg, Failure, Repository, Restic

from .test_host_backup import BORG_PATH, PASS, REPO_PATH, Fake, local, over_ssh

UTC = datetime.timezone.utc
AT = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)   # a Tuesday
DAY, MINUTE = datetime.timedelta(days=1), datetime.timedelta(minutes=1)


def snap(sid, time, arrived=None):
    return {"id": sid, "time": time, "arrived": arrived}


def entry(arrived, time=None):
    return {"arrived": arrived.isoformat(), "time": (time or arrived).isoformat()}


def ledger(verified, **snapshots):
    return {"snapshots": {sid: entry(t) for sid, t in snapshots.items()},
            "verified": verified.isoformat() if verified else None, "problem": None}


# --- verify ------------------------------------------------------------------------------

def test_first_look_accepts_what_is_there_dated_by_the_tools_arrival_or_its_own_time():
    found = [snap("a", AT - 2 * DAY), snap("b", AT - DAY, arrived=AT - DAY + MINUTE),
             snap("c", AT + SKEW)]
    problems, table, refused = verify(found, {"snapshots": {}, "verified": None}, AT)
    assert problems == [] and refused == []
    assert table["a"] == entry(AT - 2 * DAY) and table["b"] == entry(AT - DAY + MINUTE, AT - DAY)
    assert set(table) == {"a", "b", "c"}


def test_first_look_caps_a_snapshots_own_time_at_now():
    _, table, _ = verify([snap("c", AT + 30 * MINUTE)], {"snapshots": {}, "verified": None}, AT)
    assert table == {"c": entry(AT, AT + 30 * MINUTE)}


def test_later_looks_date_a_new_snapshot_by_its_own_time_held_since_the_last_look():
    last = AT - DAY
    found = [snap("inside", AT - 30 * MINUTE), snap("started-before", last - 3 * 60 * MINUTE),
             snap("ahead", AT + 30 * MINUTE), snap("tool", last - 60 * MINUTE, arrived=AT - MINUTE)]
    problems, table, refused = verify(found, ledger(last), AT)
    assert problems == [] and refused == []
    assert table == {"inside": entry(AT - 30 * MINUTE),
                     "started-before": entry(last, last - 3 * 60 * MINUTE),
                     "ahead": entry(AT, AT + 30 * MINUTE),
                     "tool": entry(AT - MINUTE, last - 60 * MINUTE)}


def test_known_snapshots_keep_their_recorded_arrival():
    known = ledger(AT - DAY, a=AT - 3 * DAY)
    problems, table, refused = verify([snap("a", AT - DAY, arrived=AT - DAY)], known, AT)
    assert problems == [] and refused == [] and table == {"a": entry(AT - 3 * DAY)}


def test_a_known_snapshot_that_disappeared_was_deleted_by_the_client():
    problems, table, refused = verify([snap("a", AT - 2 * DAY)],
                                      ledger(AT - DAY, a=AT - 2 * DAY, b=AT - DAY), AT)
    assert problems == ["1 snapshot(s) deleted by the client: b"]
    # Nothing to refuse: the deleted one is gone; the ledger keeps it.
    assert refused == [] and table == {"a": entry(AT - 2 * DAY)}


def test_a_snapshot_this_host_was_forgetting_may_disappear():
    known = {**ledger(AT - DAY, a=AT - 2 * DAY, b=AT - DAY, c=AT - DAY), "forgetting": ["b"]}
    problems, _, _ = verify([snap("a", AT - 2 * DAY)], known, AT)
    assert problems == ["1 snapshot(s) deleted by the client: c"]


def test_a_new_snapshot_dated_beyond_the_skew_is_dated_in_the_future():
    found = [snap("fine", AT + SKEW), snap("forged", AT + SKEW + MINUTE)]
    problems, table, refused = verify(found, ledger(AT - DAY), AT)
    assert problems == ["1 snapshot(s) dated in the future: forged"] and refused == ["forged"]
    assert table["fine"] == entry(AT, AT + SKEW)


def test_a_new_snapshot_dated_beyond_a_day_before_the_last_verification_is_refused():
    last = AT - DAY
    found = [snap("late", last - BACKDATE), snap("backdated", last - BACKDATE - MINUTE)]
    problems, table, refused = verify(found, ledger(last), AT)
    assert problems == ["1 snapshot(s) dated before the last verification: backdated"]
    assert refused == ["backdated"] and table["late"] == entry(last, last - BACKDATE)


def test_three_hours_before_the_last_verification_is_accepted_two_days_before_refused():
    last = AT - DAY
    problems, table, refused = verify([snap("slow", last - 3 * 60 * MINUTE)], ledger(last), AT)
    assert problems == [] and refused == [] and table == {"slow": entry(last, last - 3 * 60 * MINUTE)}
    problems, _, refused = verify([snap("forged", last - 2 * DAY)], ledger(last), AT)
    assert problems == ["1 snapshot(s) dated before the last verification: forged"]
    assert refused == ["forged"]


def test_a_snapshot_refused_before_stays_refused_whatever_its_date_now():
    known = {**ledger(AT - DAY, a=AT - 2 * DAY), "refused": ["forged", "gone"]}
    problems, table, refused = verify([snap("a", AT - 2 * DAY), snap("forged", AT - MINUTE)], known, AT)
    assert problems == ["1 snapshot(s) refused before (forget or accept them): forged"]
    assert refused == ["forged"] and table == {"a": entry(AT - 2 * DAY)}


def test_many_forged_snapshots_are_named_up_to_five():
    found = [snap(f"f{i:02}", AT + 2 * DAY) for i in range(12)]
    problems, _, refused = verify(found, ledger(AT - DAY), AT)
    assert problems == ["12 snapshot(s) dated in the future: f00, f01, f02, f03, f04 and 7 more"]
    assert refused == [f"f{i:02}" for i in range(12)]


# --- keep_by_arrival ---------------------------------------------------------------------

def arrivals(**times):
    return {sid: entry(t) for sid, t in times.items()}


def test_keep_daily_holds_the_newest_days_of_arrival():
    table = arrivals(**{f"d{i}": AT - i * DAY for i in range(10)})
    assert keep_by_arrival(table, {"daily": 7}) == {f"d{i}" for i in range(7)}


def test_keep_daily_holds_the_newest_arrival_of_a_day():
    day = datetime.datetime(2026, 11, 30, tzinfo=UTC)
    table = arrivals(early=day + 60 * MINUTE, noon=day + 12 * 60 * MINUTE, late=day + DAY - MINUTE,
                     today=AT)
    assert keep_by_arrival(table, {"daily": 7}) == {"late", "today"}


def test_keep_weekly_holds_the_newest_of_each_iso_week():
    # 2026-11-16 is a Monday (ISO week 47); Sunday 2026-11-29 still belongs to week 48.
    start = datetime.datetime(2026, 11, 16, 12, tzinfo=UTC)
    table = arrivals(**{(start + i * DAY).strftime("d%m%d"): start + i * DAY for i in range(16)})
    assert keep_by_arrival(table, {"weekly": 2}) == {"d1201", "d1129"}
    assert keep_by_arrival(table, {"weekly": 3}) == {"d1201", "d1129", "d1122"}


def test_keep_monthly_holds_the_newest_of_each_month():
    table = arrivals(**{f"d{m:02}{d:02}": datetime.datetime(2026, m, d, 12, tzinfo=UTC)
                        for m, d in ((9, 15), (10, 1), (10, 31), (11, 2), (11, 30), (12, 1))})
    assert keep_by_arrival(table, {"monthly": 3}) == {"d1201", "d1130", "d1031"}


def test_forged_client_times_do_not_push_real_snapshots_out():
    real = {f"real{i}": entry(AT - i * DAY) for i in range(7)}
    forged = {f"forged{i}": entry(AT - i * DAY - MINUTE, datetime.datetime(2099, 1, 1 + i, tzinfo=UTC))
              for i in range(7)}
    assert keep_by_arrival({**real, **forged}, {"daily": 7}) == set(real)


@pytest.mark.parametrize("first", ["older", "newer"])
def test_keep_breaks_a_tie_on_arrival_by_the_snapshots_own_time(first):
    arrived = datetime.datetime(2026, 12, 2, 0, 35, tzinfo=UTC)
    both = {"older": entry(arrived, datetime.datetime(2026, 12, 1, 0, 40, tzinfo=UTC)),
            "newer": entry(arrived, datetime.datetime(2026, 12, 2, 0, 5, tzinfo=UTC))}
    table = {sid: both[sid] for sid in sorted(both, key=lambda sid: sid != first)}
    assert keep_by_arrival(table, {"daily": 1}) == {"newer"}


@pytest.mark.parametrize("last", [None, datetime.datetime(2026, 12, 1, 0, 35, tzinfo=UTC),
                                  datetime.datetime(2026, 12, 2, 0, 20, tzinfo=UTC)],
                         ids=["first look", "a day before", "in between"])
def test_the_newest_of_archives_first_seen_in_one_look_is_kept(last):
    older = snap("d1201", datetime.datetime(2026, 12, 1, 0, 40, tzinfo=UTC))
    newer = snap("d1202", datetime.datetime(2026, 12, 2, 0, 5, tzinfo=UTC))
    seen = datetime.datetime(2026, 12, 2, 0, 35, tzinfo=UTC)
    for found in ([older, newer], [newer, older]):
        problems, table, _ = verify(found, ledger(last), seen)
        assert problems == [] and keep_by_arrival(table, {"daily": 1}) == {"d1202"}


# --- mailstack-backup-server prune, check, accept, forget, status, notify-failure -------

class FakeTool:
    """A client's repository: snapshots it holds (with arrival times, as restic's).
    A step named in `failing` raises the tool's Failure once; a failing forget
    removes the snapshots first when `failing_after_removal` (stopped halfway)."""

    def __init__(self, *days):
        self.found = [snap(f"d{d}", AT + d * DAY, arrived=AT + d * DAY) for d in days]
        self.forgotten, self.checked = [], 0
        self.failing, self.failing_after_removal = {}, True

    def fail(self, step):
        if step in self.failing:
            raise Failure(self.failing.pop(step))

    def snapshots(self):
        self.fail("snapshots")
        return [dict(s) for s in self.found]

    def forget(self, ids):
        if not self.failing_after_removal:
            self.fail("forget")
        self.forgotten.append(list(ids))
        self.found = [s for s in self.found if s["id"] not in ids]
        self.fail("forget")

    def check(self):
        self.fail("check")
        self.checked += 1

    def delete(self, sid):
        """What a compromised client does."""
        self.found = [s for s in self.found if s["id"] != sid]

    def add(self, day, sid=None, time=None, arrived=True):
        time = time or AT + day * DAY
        self.found.append(snap(sid or f"d{day}", time, arrived=time if arrived else None))

    def ids(self):
        return sorted(s["id"] for s in self.found)


MX1, MX2 = "mx1.example.org", "mx2.example.org"
LOCKED = f"{MX1}: Fatal: unable to create lock in backend: repository is already locked"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Two clients with existing repositories on fake tools, the ledgers in
    tmp_path/ledger, the clock at AT (move it with server.clock[0] = ...)."""
    monkeypatch.setattr(backup_server, "LEDGER", str(tmp_path / "ledger"))
    clients = {}
    for host in (MX1, MX2):
        (tmp_path / host / "restic").mkdir(parents=True)
        (tmp_path / host / "restic" / "config").write_text("")
        clients[host] = {"host": host, "user": "bk", "repository": str(tmp_path / host / "restic")}
    settings = {"tool": "restic", "keep": {"daily": 2}, "host": "backup.example.org",
                "postmaster": "postmaster@example.org", "clients": list(clients.values())}
    (tmp_path / "clients.json").write_text(json.dumps(settings))

    class Server:
        tools = {MX1: FakeTool(-4, -3, -2, -1), MX2: FakeTool(-1)}
        clock = [AT]

        def main(self, *argv):
            backup_server.main(list(argv), settings_file=str(tmp_path / "clients.json"))

        def keep(self, **rules):
            (tmp_path / "clients.json").write_text(json.dumps({**settings, "keep": rules}))

        def ledger(self, host):
            assert os.listdir(tmp_path / "ledger")
            return backup_server.read_ledger(clients[host])

    s = Server()
    monkeypatch.setattr(backup_server, "tool_for", lambda settings, client: s.tools[client["host"]])
    monkeypatch.setattr(backup_server, "now", lambda: s.clock[0])
    return s


def refused(server, *argv):
    with pytest.raises(SystemExit) as e:
        server.main(*argv)
    return e.value.code


def refusal(host, problem, doing="pruned"):
    return f"{host}: verification failed, not {doing}: {problem}"


PROG = "mailstack-backup-server: "
DELETED = "1 snapshot(s) deleted by the client: d-1"
REFUSAL = PROG + refusal(MX1, DELETED)
GOOD = {"problem": None, "refused": [], "forgetting": []}


def test_prune_forgets_exactly_what_the_keep_rules_do_not_hold_and_records_it(server):
    server.main("prune")
    assert server.tools[MX1].forgotten == [["d-3", "d-4"]] and server.tools[MX2].forgotten == []
    assert server.ledger(MX1) == {"snapshots": {"d-1": entry(AT - DAY), "d-2": entry(AT - 2 * DAY)},
                                  "verified": AT.isoformat(), **GOOD}


def test_prune_after_a_client_deleted_a_snapshot_forgets_nothing_and_fails(server):
    server.main("prune")
    good = server.ledger(MX1)
    server.tools[MX1].delete("d-1")
    server.tools[MX1].add(0)
    server.clock[0] = AT + DAY
    assert refused(server, "prune") == REFUSAL
    assert server.tools[MX1].forgotten == [["d-3", "d-4"]]
    assert server.ledger(MX1) == {**good, "problem": DELETED}


@pytest.mark.parametrize("halfway", [True, False], ids=["stopped halfway", "removed nothing"])
def test_a_prune_the_tool_failed_is_not_taken_for_a_client_deletion_next_time(server, halfway):
    server.tools[MX1].failing["forget"] = f"{MX1}: Fatal: connection lost"
    server.tools[MX1].failing_after_removal = halfway
    server.tools[MX2] = FakeTool(-3, -2, -1)
    assert refused(server, "prune") == PROG + f"{MX1}: Fatal: connection lost"
    assert server.tools[MX1].ids() == (["d-1", "d-2"] if halfway else ["d-1", "d-2", "d-3", "d-4"])
    assert server.ledger(MX1)["forgetting"] == ["d-3", "d-4"]
    assert set(server.ledger(MX1)["snapshots"]) == {"d-1", "d-2", "d-3", "d-4"}
    assert server.tools[MX2].forgotten == [["d-3"]]
    server.clock[0] = AT + DAY
    server.main("prune")
    assert server.tools[MX1].ids() == ["d-1", "d-2"]
    assert server.ledger(MX1) == {"snapshots": {"d-1": entry(AT - DAY), "d-2": entry(AT - 2 * DAY)},
                                  "verified": (AT + DAY).isoformat(), **GOOD}


def test_the_refusal_stays_until_the_operator_accepts(server):
    server.main("prune")
    server.clock[0] = AT + DAY
    # A Borg archive has no arrival time of its own: one started before the last
    # look is dated at the last look.
    server.tools[MX1].add(None, "late", time=AT - 2 * 60 * MINUTE, arrived=False)
    server.main("prune")
    server.tools[MX1].delete("d-1")
    server.clock[0] = AT + 2 * DAY
    refused(server, "prune")
    server.clock[0] = AT + 3 * DAY
    server.tools[MX1].add(3)
    assert refused(server, "prune") == REFUSAL
    assert server.tools[MX1].forgotten == [["d-3", "d-4"], ["d-2"]]
    server.main("accept", MX1)
    assert server.ledger(MX1)["problem"] is None
    assert server.ledger(MX1)["snapshots"]["late"] == entry(AT, AT - 2 * 60 * MINUTE)
    server.clock[0] = AT + 4 * DAY
    server.tools[MX1].add(4)
    server.main("prune")
    assert server.tools[MX1].forgotten == [["d-3", "d-4"], ["d-2"], ["late"]]
    assert server.ledger(MX1)["problem"] is None


FUTURE = "1 snapshot(s) dated in the future: forged"
BEFORE = "1 snapshot(s) refused before (forget or accept them): forged"


@pytest.mark.parametrize("action", ["forget", "accept"])
def test_a_snapshot_refused_as_dated_in_the_future_stays_refused_after_that_date(server, action):
    server.main("prune")
    server.clock[0] = AT + DAY
    server.tools[MX1].add(None, "forged", time=AT + DAY + 2 * SKEW, arrived=False)
    assert refused(server, "prune") == PROG + refusal(MX1, FUTURE)
    assert server.ledger(MX1)["refused"] == ["forged"]
    server.clock[0] = AT + 2 * DAY              # its date has passed
    server.tools[MX1].add(2)
    for _ in range(2):
        assert refused(server, "prune") == PROG + refusal(MX1, BEFORE)
    assert refused(server, "check") == PROG + refusal(MX1, BEFORE, "checked")
    assert server.tools[MX1].forgotten == [["d-3", "d-4"]] and server.tools[MX1].checked == 0
    assert server.ledger(MX1) == {"snapshots": {"d-1": entry(AT - DAY), "d-2": entry(AT - 2 * DAY)},
                                  "verified": AT.isoformat(), "problem": BEFORE,
                                  "refused": ["forged"], "forgetting": []}
    server.main(action, MX1, *(["forged"] if action == "forget" else []))
    assert server.ledger(MX1)["refused"] == []
    server.main("prune")
    assert server.ledger(MX1)["problem"] is None
    if action == "forget":
        assert server.tools[MX1].forgotten == [["d-3", "d-4"], ["forged"], ["d-2"]]
        assert set(server.ledger(MX1)["snapshots"]) == {"d-1", "d2"}
    else:
        assert server.tools[MX1].forgotten == [["d-3", "d-4"], ["d-1", "d-2"]]
        assert server.ledger(MX1)["snapshots"] == {"forged": entry(AT + DAY + 2 * SKEW),
                                                   "d2": entry(AT + 2 * DAY)}


def test_forget_of_an_unknown_snapshot_names_it_and_removes_nothing(server):
    server.main("prune")
    before = server.ledger(MX1)
    assert refused(server, "forget", MX1, "d-1", "nope", "d-9") == PROG + f"no snapshot nope, d-9 of {MX1}"
    assert server.tools[MX1].forgotten == [["d-3", "d-4"]] and server.tools[MX1].ids() == ["d-1", "d-2"]
    assert server.ledger(MX1) == before


def test_forget_removes_the_snapshots_through_the_tool_and_from_the_ledger(server, capsys):
    server.main("prune")
    server.clock[0] = AT + DAY
    for sid in ("f1", "f2"):
        server.tools[MX1].add(None, sid, time=AT + 3 * DAY)
    refused(server, "prune")
    assert server.ledger(MX1)["refused"] == ["f1", "f2"]
    capsys.readouterr()
    server.main("forget", MX1, "f1", "d-1")
    assert json.loads(capsys.readouterr().out) == {"client": MX1, "forgotten": ["f1", "d-1"]}
    assert server.tools[MX1].forgotten == [["d-3", "d-4"], ["f1", "d-1"]]
    ledger = server.ledger(MX1)
    assert ledger["snapshots"] == {"d-2": entry(AT - 2 * DAY)} and ledger["refused"] == ["f2"]
    # What the operator forgot is no client's deletion; what is left stays refused.
    assert refused(server, "prune") == PROG + refusal(
        MX1, "1 snapshot(s) refused before (forget or accept them): f2")
    server.main("forget", MX1, "f2")
    server.main("prune")
    assert server.ledger(MX1)["problem"] is None and server.tools[MX1].ids() == ["d-2"]


def test_forget_the_tool_stopped_halfway_is_not_taken_for_a_client_deletion(server):
    server.main("prune")
    server.tools[MX1].failing["forget"] = f"{MX1}: Fatal: connection lost"
    refused(server, "forget", MX1, "d-1")
    server.main("prune")


def test_a_clients_tool_failure_does_not_stop_the_next_clients_prune(server):
    server.tools[MX1].failing["snapshots"] = LOCKED
    server.tools[MX2] = FakeTool(-4, -3, -2, -1)
    assert refused(server, "prune") == PROG + LOCKED
    assert server.tools[MX2].forgotten == [["d-3", "d-4"]]
    assert server.ledger(MX2)["verified"] == AT.isoformat()
    server.main("prune")
    assert server.tools[MX1].forgotten == [["d-3", "d-4"]]
    # Both outcomes, each client named.
    server.clock[0] = AT + DAY
    server.tools[MX1].failing["snapshots"] = LOCKED
    server.tools[MX2].delete("d-1")
    assert refused(server, "prune") == PROG + LOCKED + " | " + refusal(MX2, DELETED)
    damaged = f"{MX1}: Fatal: pack 1a2b is damaged"
    server.tools[MX1].failing["check"] = damaged
    assert refused(server, "check") == PROG + damaged + " | " + refusal(MX2, DELETED, "checked")
    server.main("accept", MX2)
    server.tools[MX1].failing["check"] = damaged
    assert refused(server, "check") == PROG + damaged
    assert (server.tools[MX1].checked, server.tools[MX2].checked) == (0, 1)
    server.main("check")
    assert (server.tools[MX1].checked, server.tools[MX2].checked) == (1, 2)


def test_status_prints_what_verification_found_per_client(server, capsys):
    server.main("prune")
    server.tools[MX1].delete("d-1")
    server.clock[0] = AT + DAY
    refused(server, "prune")
    capsys.readouterr()
    server.main("status")
    assert json.loads(capsys.readouterr().out) == {
        MX1: {"problem": DELETED, "verified": AT.isoformat(), "snapshots": 2},
        MX2: {"problem": None, "verified": (AT + DAY).isoformat(), "snapshots": 1}}


def test_check_runs_the_tools_check_only_for_clients_that_pass_verification(server):
    server.main("check")
    server.tools[MX1].delete("d-1")
    assert refused(server, "check") == PROG + refusal(MX1, DELETED, "checked")
    assert (server.tools[MX1].checked, server.tools[MX2].checked) == (1, 2)


def test_notify_failure_mails_the_postmaster_each_clients_problem(server, monkeypatch):
    server.main("prune")
    server.tools[MX1].delete("d-1")
    refused(server, "prune")
    sent = []
    monkeypatch.setattr(backup_server, "send", sent.append)
    monkeypatch.setattr(backup_server, "journal", lambda unit: f"LOG OF {unit}\n")
    server.main("notify-failure")
    (msg,) = sent
    parsed = email.message_from_string(msg.as_string(), policy=email.policy.strict)
    assert parsed["From"].addresses[0].addr_spec == "root@backup.example.org"
    assert parsed["To"] == "postmaster@example.org"
    assert parsed["Subject"] == "Backup verification on backup.example.org failed"
    assert parsed["Date"].datetime and parsed["Message-ID"].endswith("@backup.example.org>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    body = parsed.get_content()
    assert f"  {MX1}: {DELETED}\n" in body and MX2 not in body
    assert "LOG OF mailstack-backup-prune.service" in body and "accept CLIENT" in body


# --- the tools' side: forget by id, arrival times ----------------------------------------

def test_restic_forget_removes_the_given_snapshots_and_their_data():
    fake = Fake()
    Restic(local(), PASS, run=fake).forget(["1a2b3c4d", "5e6f7a8b"])
    assert fake.argvs == [["restic", "-r", REPO_PATH, "--no-cache", "forget", "--prune",
                           "1a2b3c4d", "5e6f7a8b"]]


def test_borg_forget_deletes_the_archives_then_compacts():
    fake = Fake()
    Borg(local(BORG_PATH), PASS, run=fake).forget(["mx1-a", "mx1-b"])
    assert fake.argvs == [["borg", "delete", BORG_PATH, "mx1-a", "mx1-b"], ["borg", "compact", BORG_PATH]]


def test_restic_arrival_is_the_time_of_the_snapshots_file(tmp_path):
    full = "1a2b3c4d" + "0" * 56
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / full).write_text("")
    os.utime(tmp_path / "snapshots" / full, (AT.timestamp(), AT.timestamp()))
    fake = Fake((0, json.dumps([{"short_id": "1a2b3c4d", "id": full, "time": "2099-01-01T00:00:00Z"}]), ""))
    tool = Restic(local(str(tmp_path)), PASS, run=fake)
    assert tool.arrival(full) == AT
    assert tool.snapshots()[0]["arrived"] == AT


def test_restic_arrival_without_a_local_repository_is_none(tmp_path):
    assert Restic(Repository("s3", url="s3:https://s3.example/b/mx1"), PASS).arrival("1a2b") is None
    assert Restic(local(str(tmp_path)), PASS).arrival("1a2b") is None


def test_restic_arrival_over_ssh_or_by_url_is_none_even_where_a_local_file_matches(tmp_path):
    full = "1a2b3c4d" + "0" * 56
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / full).write_text("")
    assert Restic(local(str(tmp_path)), PASS).arrival(full) is not None
    # This host's file times say nothing of when a remote repository got a snapshot.
    assert Restic(over_ssh(str(tmp_path)), PASS).arrival(full) is None
    assert Restic(Repository("box", path=str(tmp_path), url=f"sftp:u@store.example:{tmp_path}"),
                  PASS).arrival(full) is None
    assert Restic(Repository("box", url=str(tmp_path)), PASS).arrival(full) is None


# --- mailstack backup-status -------------------------------------------------------------

STATUS = (json.dumps({"tool": "restic", "last_success": "2026-12-01T03:00:00+00:00"})
          + "\nWed 2026-12-02 03:00:00 UTC")


def row(text, host):
    return next(line for line in text.splitlines() if line.startswith(host))


def test_report_shows_a_backup_hosts_refusal_in_the_clients_row():
    verification = {"backup.example.org": json.dumps({MX1: {"problem": DELETED}, MX2: {"problem": None}})}
    text, all_well = report({MX1: STATUS, MX2: STATUS}, verification)
    assert row(text, MX1).endswith(f"backup.example.org refused to prune: {DELETED}")
    assert row(text, MX2).endswith(" ok") and not all_well


def test_report_without_problems_is_unchanged():
    verification = {"backup.example.org": json.dumps({MX1: {"problem": None}, MX2: {"problem": None}})}
    assert report({MX1: STATUS, MX2: STATUS}, verification) == report({MX1: STATUS, MX2: STATUS})
    assert report({MX1: STATUS, MX2: STATUS})[1]

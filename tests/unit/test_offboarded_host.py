"""Offboarding on the hosts: the archive snapshot (named for the address, in every
repository, kept by every retention, never a restore's "newest"), mailstack-offboarded
(homes aside and back, the timer's choice of what is past its time, the 7z export
with its passphrase on stdin), and the settings the deploy renders for it."""
import datetime
import json
import os
import pwd
import subprocess

import pytest

from mailstack import releases
from mailstack.dovecot import offboarded_settings, users_file
from mailstack.host import backup, offboarded
from mailstack.host.backup_server import keep_by_arrival, verify
from mailstack.host.backup_tools import Borg, Failure
from mailstack.model import load_system

from .conftest import VALID
from .test_backup_verification import AT, DAY, MINUTE, arrivals, snap
from .test_host_backup import BORG_PATH, BORG_SSH, RESTIC_SSH, borg, over_ssh, restic, settings, write_settings

DAY_ONE = datetime.date(2026, 12, 3)


# --- the archive snapshot --------------------------------------------------------------

def test_restic_archive_tags_the_snapshot_with_the_address():
    tool, fake = restic(over_ssh())
    tool.archive("mx1.example.org", "ben.o+x@example.org", ["/var/vmail/example.org/ben.o+x"])
    assert fake.argvs == [RESTIC_SSH + ["backup", "--host", "mx1.example.org", "--tag", "mailstack-offboarded",
                                        "--tag", "ben.o+x@example.org", "--exclude", "dovecot*.lock*",
                                        "/var/vmail/example.org/ben.o+x"]]


def test_restic_snapshots_say_which_address_an_archive_holds():
    out = json.dumps([
        {"short_id": "a1", "id": "a1" + "0" * 62, "time": "2026-12-03T10:00:00Z", "tags": ["mailstack"]},
        {"short_id": "b2", "id": "b2" + "0" * 62, "time": "2026-12-03T11:00:00Z",
         "tags": ["mailstack-offboarded", "ben@example.org"]}])
    tool, _ = restic(over_ssh(), (0, out, ""))
    assert [s["archive"] for s in tool.snapshots()] == [None, "ben@example.org"]


def test_borg_archive_is_named_for_the_address_and_read_back():
    tool, fake = borg(over_ssh(BORG_PATH))
    tool.archive("mx1.example.org", "ben-o@ex-ample.org", ["/var/vmail/ex-ample.org/ben-o"])
    assert fake.argvs == [["borg", "create", "--compression", "zstd,3", "--one-file-system",
                           "--exclude", "*/dovecot*.lock*",
                           BORG_SSH + "::offboarded-ben-o@ex-ample.org_{utcnow:%Y-%m-%dT%H:%M:%S.%f}",
                           "/var/vmail/ex-ample.org/ben-o"]]
    assert Borg.archived("offboarded-ben-o@ex-ample.org_2026-12-03T10:00:00.000000") == "ben-o@ex-ample.org"
    assert Borg.archived("mx1.example.org-2026-12-03T10:00:00.000000") is None


def test_borg_files_skip_a_newer_archive():
    archives = json.dumps({"archives": [
        {"name": "mx1.example.org-2026-12-02", "start": "2026-12-02T10:00:00.000000"},
        {"name": "offboarded-ben@example.org_2026-12-03", "start": "2026-12-03T10:00:00.000000"}]})
    tool, fake = borg(over_ssh(BORG_PATH), (0, archives, ""), (0, "var/vmail\n", ""))
    assert tool.files() == ["/var/vmail"]
    assert fake.argvs[1][-1] == BORG_SSH + "::mx1.example.org-2026-12-02"


class ArchivingTool:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def ensure(self):
        self.calls.append((self.name, "ensure"))

    def archive(self, host, address, paths):
        self.calls.append((self.name, "archive", host, address, paths))

    def snapshots(self):
        return [{"id": "host1", "time": AT, "archive": None},
                {"id": f"{self.name}-a", "time": AT + MINUTE, "archive": "ben@example.org"}]


def test_archive_mailbox_saves_the_home_to_every_target(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(backup, "tool_for", lambda s, t: ArchivingTool(t["host"], calls))
    monkeypatch.setattr(backup, "mailbox_home", lambda address: "/var/vmail/example.org/ben")
    backup.main(["archive-mailbox", "ben@example.org"], settings_file=write_settings(tmp_path, settings()))
    home = ["/var/vmail/example.org/ben"]
    assert calls == [("bk.example.org", "ensure"), ("bk.example.org", "archive", "mx1.example.org", "ben@example.org", home),
                     ("offsite", "ensure"), ("offsite", "archive", "mx1.example.org", "ben@example.org", home)]
    out = json.loads(capsys.readouterr().out)
    assert [a["snapshot"] for a in out["archives"]] == ["bk.example.org-a", "offsite-a"]


def test_restores_never_take_an_archive_for_the_newest_snapshot():
    found = [{"id": "host", "time": AT}, {"id": "arch", "time": AT + DAY, "archive": "ben@example.org"}]
    assert backup.pick(found, "bk")["id"] == "host"
    assert backup.pick(found, "bk", as_of=(AT + 2 * DAY).isoformat())["id"] == "host"
    assert backup.pick(found, "bk", snapshot="arch")["id"] == "arch"      # by its id only
    with pytest.raises(Failure):
        backup.pick(found[1:], "bk")


def test_the_backup_host_keeps_every_archive_and_still_the_days_own_snapshot():
    table = arrivals(**{f"d{i}": AT - i * DAY for i in range(10)})
    table["arch"] = {**arrivals(arch=AT + MINUTE)["arch"], "archive": "ben@example.org"}
    table["old-arch"] = {**arrivals(x=AT - 300 * DAY)["x"], "archive": "eve@example.org"}
    assert keep_by_arrival(table, {"daily": 2}) == {"d0", "d1", "arch", "old-arch"}


def test_the_ledger_remembers_which_snapshot_is_an_archive():
    found = [snap("a", AT - DAY), {**snap("b", AT - MINUTE), "archive": "ben@example.org"}]
    _, table, _ = verify(found, {"snapshots": {}, "verified": None}, AT)
    assert "archive" not in table["a"] and table["b"]["archive"] == "ben@example.org"


# --- the settings the deploy renders -----------------------------------------------------

OFFBOARDED_DATA = VALID + """\
offboarding: {keep: 30d}
offboarded:
  - address: cleo@example.org
    date: 2026-12-03
    keep_until: 2027-01-02
    mailbox: {quota: 2G, password_hash: "%s"}
"""


def test_offboarded_settings_name_homes_asides_and_days(write_data):
    from .conftest import HASH
    system = load_system(write_data(OFFBOARDED_DATA % HASH))
    settings_ = json.loads(offboarded_settings(system))
    assert settings_["offboarded"] == [{"address": "cleo@example.org", "home": "/var/vmail/example.org/cleo",
                                        "aside": "/var/vmail/.offboarded/example.org/cleo",
                                        "keep_until": "2027-01-02"}]
    assert {"address": "anna@example.org", "home": "/var/vmail/example.org/anna",
            "aside": "/var/vmail/.offboarded/example.org/anna"} in settings_["mailboxes"]
    assert "cleo@" not in users_file(system)          # no user: no login, no quota, no retention run


def test_each_release_names_the_7zip_package():
    assert releases.RELEASES["bookworm"].archiver == "p7zip-full"
    assert releases.RELEASES["trixie"].archiver == "7zip"


# --- mailstack-offboarded on the primary -------------------------------------------------

def test_the_timer_deletes_only_what_is_past_its_keep_until():
    records = [{"address": "a@x.org", "keep_until": "2026-12-02"},
               {"address": "b@x.org", "keep_until": "2026-12-03"},
               {"address": "c@x.org", "keep_until": "2027-03-01"}]
    assert offboarded.expired(records, DAY_ONE) == records[:1]      # kept through its last day
    assert offboarded.expired(records, datetime.date(2027, 3, 2)) == records


@pytest.fixture
def vmail(tmp_path, monkeypatch):
    """/var/vmail in tmp_path; doveadm recorded, not run."""
    root = tmp_path / "vmail"
    monkeypatch.setattr(offboarded, "ASIDE", str(root / ".offboarded"))
    calls = []
    monkeypatch.setattr(offboarded, "doveadm", lambda *args: calls.append(args)
                        or subprocess.CompletedProcess(args, 0, "", ""))
    return root, calls


def record(root, address, keep_until="2027-03-03"):
    local, domain = address.split("@")
    return {"address": address, "home": str(root / domain / local),
            "aside": str(root / ".offboarded" / domain / local), "keep_until": keep_until}


def home_with_mail(path, files):
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for folder in ("", ".Sent/"):
        for sub in ("cur", "new", "tmp"):
            (path / f"Maildir/{folder}{sub}").mkdir(parents=True, exist_ok=True)


ME = pwd.getpwuid(os.getuid())


def test_apply_moves_an_offboarded_home_aside_whole_and_a_restored_one_back(vmail):
    root, calls = vmail
    ben = record(root, "ben@example.org")
    home_with_mail(root / "example.org" / "ben", {"Maildir/cur/1.a:2,S": "A", "Maildir/dovecot-uidlist": "u",
                                                 "sieve/filters.sieve": "keep;"})
    offboarded.apply({"offboarded": [ben], "mailboxes": []}, None, owner=ME)
    assert not os.path.exists(ben["home"])
    assert sorted(p.relative_to(ben["aside"]).as_posix() for p in root.joinpath(".offboarded").rglob("*")
                  if p.is_file() and str(p).startswith(ben["aside"])) == [
        "Maildir/cur/1.a:2,S", "Maildir/dovecot-uidlist", "sieve/filters.sieve"]   # indexes, filters kept
    assert calls == [("kick", "ben@example.org")]
    mailbox = {k: ben[k] for k in ("address", "home", "aside")}
    offboarded.apply({"offboarded": [], "mailboxes": [mailbox]}, None, owner=ME)
    assert (root / "example.org/ben/Maildir/cur/1.a:2,S").read_text() == "A"
    assert not os.path.exists(ben["aside"]) and os.listdir(root / ".offboarded") == []
    assert calls[1:] == [("force-resync", "-u", "ben@example.org", "*"), ("quota", "recalc", "-u", "ben@example.org")]


def test_apply_merges_mail_that_arrived_before_the_home_came_back(vmail):
    root, _ = vmail
    ben = record(root, "ben@example.org")
    home_with_mail(root / ".offboarded/example.org/ben", {"Maildir/cur/1.a:2,S": "old"})
    home_with_mail(root / "example.org/ben", {"Maildir/new/2.b": "new"})
    offboarded.apply({"offboarded": [], "mailboxes": [ben]}, None, owner=ME)
    live = root / "example.org/ben/Maildir"
    assert (live / "cur/1.a:2,S").read_text() == "old" and (live / "new/2.b").read_text() == "new"
    assert not os.path.exists(ben["aside"])


def test_apply_twice_changes_nothing_more(vmail):
    root, calls = vmail
    ben = record(root, "ben@example.org")
    home_with_mail(root / "example.org/ben", {"Maildir/cur/1.a:2,S": "A"})
    settings_ = {"offboarded": [ben], "mailboxes": []}
    offboarded.apply(settings_, None, owner=ME)
    offboarded.apply(settings_, None, owner=ME)
    assert os.path.isdir(ben["aside"]) and calls == [("kick", "ben@example.org")]


def test_expire_deletes_expired_mail_aside_and_nothing_else(vmail, capsys):
    root, _ = vmail
    old, kept = record(root, "old@example.org", "2026-12-02"), record(root, "kept@example.org", "2026-12-03")
    for r in (old, kept):
        home_with_mail(root / ".offboarded/example.org" / r["address"].split("@")[0], {"Maildir/cur/1:2,": "x"})
    home_with_mail(root / "example.org/old", {"Maildir/cur/2:2,": "a new mailbox of the address"})
    offboarded.expire({"offboarded": [old, kept]}, None, today=DAY_ONE)
    assert not os.path.exists(old["aside"]) and os.path.isdir(kept["aside"])
    assert (root / "example.org/old/Maildir/cur/2:2,").exists()
    assert json.loads(capsys.readouterr().out)["deleted"] == old["aside"]


def test_expire_never_deletes_outside_the_offboarded_directory(vmail, tmp_path):
    root, _ = vmail
    elsewhere = tmp_path / "precious"
    home_with_mail(elsewhere, {"Maildir/cur/1:2,": "x"})
    (root / ".offboarded" / "example.org").mkdir(parents=True)
    bad = {"address": "x@example.org", "aside": str(root / ".offboarded/example.org/../../../precious"), "keep_until": "2020-01-01"}
    with pytest.raises(Failure, match="not under"):
        offboarded.expire({"offboarded": [bad]}, None, today=DAY_ONE)
    assert elsewhere.joinpath("Maildir/cur/1:2,").exists()


def test_export_gives_7z_its_passphrase_on_stdin_never_as_an_argument(tmp_path, monkeypatch, capsysbinary):
    home = tmp_path / "ben"
    home_with_mail(home, {"Maildir/cur/1:2,S": "A", "Maildir/.Sent/cur/2:2,S": "B", "Maildir/new/3": "C",
                          "Maildir/.EXPUNGED/cur/4:2,": "deleted"})
    monkeypatch.setattr(offboarded, "mailbox_home", lambda address: str(home))
    seen = []

    def fake_7z(argv, cwd, input, capture_output, text):
        seen.append((argv, cwd, input))
        with open(argv[6], "wb") as f:
            f.write(b"7z\xbc\xaf\x27\x1c archive")
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(offboarded.subprocess, "run", fake_7z)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a-long-random-passphrase-0123\n"))
    offboarded.main(["export", "ben@example.org"], settings_file=write_settings(tmp_path, {"offboarded": []}))
    (argv, cwd, given), = seen
    assert argv[:6] == ["7z", "a", "-t7z", "-mhe=on", "-p", "-bd"] and argv[7:] == ["Maildir", "-xr!dovecot*",
                                                                                  "-xr!.EXPUNGED*"]
    assert cwd == str(home) and given == "a-long-random-passphrase-0123\n"
    assert not any("passphrase" in a for a in argv)
    out = capsysbinary.readouterr()
    assert out.out == b"7z\xbc\xaf\x27\x1c archive"
    assert json.loads(out.err) == {"address": "ben@example.org", "messages": 3, "bytes": 14}


def test_export_refuses_a_short_passphrase(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    with pytest.raises(SystemExit) as e:
        offboarded.main(["export", "ben@example.org"], settings_file=write_settings(tmp_path, {"offboarded": []}))
    assert "shorter than 16" in e.value.code


def test_export_of_an_offboarded_mailbox_reads_it_where_it_waits(tmp_path, monkeypatch):
    aside = tmp_path / "aside"
    home_with_mail(aside, {"Maildir/cur/1:2,S": "A"})
    monkeypatch.setattr(offboarded, "mailbox_home", lambda address: pytest.fail("not a Dovecot user any more"))
    cwds = []
    monkeypatch.setattr(offboarded.subprocess, "run", lambda argv, cwd, **kw: cwds.append(cwd) or
                        open(argv[6], "wb").close() or subprocess.CompletedProcess(argv, 0, "", ""))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("p" * 20 + "\n"))
    offboarded.main(["export", "ben@example.org"], settings_file=write_settings(
        tmp_path, {"offboarded": [{"address": "ben@example.org", "aside": str(aside)}]}))
    assert cwds == [str(aside)]


def test_paths_of_an_address():
    assert offboarded.home_of("b.o+x@ex-ample.org") == "/var/vmail/ex-ample.org/b.o+x"
    assert offboarded.aside_of("b.o+x@ex-ample.org") == "/var/vmail/.offboarded/ex-ample.org/b.o+x"

"""mailstack/host backup programs: the tool adapters' command lines, mailstack-backup
and mailstack-backup-server, with fake runners instead of restic and Borg."""
import datetime
import json
import os
import subprocess
import time

import pytest

from mailstack.host import backup, backup_server
from mailstack.host.backup_tools import (CACHE, STATE, TOOLS, Borg, Failure, Repository, Restic,
                                         explain, parse_time, repository_path)

UTC = datetime.timezone.utc
SSH = ["ssh", "-i", "/etc/mailstack/backup/id_ed25519", "-o", "BatchMode=yes"]
SSH_TEXT = " ".join(SSH)
PASS = "/etc/mailstack/backup/passphrase"
REPO_PATH = "/srv/mailstack-backup/mx1.example.org/restic"
BORG_PATH = "/srv/mailstack-backup/mx1.example.org/borg"


class Fake:
    """A tool runner: records (argv, env, cwd), answers with the queued results."""

    def __init__(self, *results):
        self.calls, self.results = [], list(results)

    def __call__(self, argv, env, cwd=None):
        self.calls.append((argv, env, cwd))
        rc, out, err = self.results.pop(0) if self.results else (0, "", "")
        return subprocess.CompletedProcess(argv, rc, out, err)

    @property
    def argvs(self):
        return [argv for argv, _, _ in self.calls]


def over_ssh(path=REPO_PATH):
    return Repository("bk.example.org", path=path, login="bk-mx1@192.0.2.12", ssh=list(SSH))


def local(path=REPO_PATH):
    return Repository("mx1.example.org", path=path, cache=False)


def restic(repo, *results):
    fake = Fake(*results)
    return Restic(repo, PASS, run=fake), fake


def borg(repo, *results):
    fake = Fake(*results)
    return Borg(repo, PASS, run=fake), fake


RESTIC_SSH = ["restic", "-r", "rclone:mailstack", "-o", f"rclone.program={SSH_TEXT} bk-mx1@192.0.2.12"]
BORG_SSH = f"ssh://bk-mx1@192.0.2.12{BORG_PATH}"


# --- restic: how the repository is reached -----------------------------------------------

def test_restic_reaches_a_backup_host_through_rclone_over_ssh():
    tool, fake = restic(over_ssh())
    tool.check()
    argv, env, cwd = fake.calls[0]
    assert argv == RESTIC_SSH + ["check", "--read-data-subset=10%"]
    assert env == {"RESTIC_PASSWORD_FILE": PASS, "RESTIC_CACHE_DIR": f"{CACHE}/restic"}
    assert cwd is None


def test_restic_sftp_url_uses_this_hosts_backup_key():
    repo = Repository("offsite", url="sftp:u123@store.example:/mail/mx1", ssh=list(SSH))
    tool, fake = restic(repo)
    tool.check()
    assert fake.argvs[0] == ["restic", "-r", "sftp:u123@store.example:/mail/mx1",
                             "-o", f"sftp.command={SSH_TEXT} u123@store.example -s sftp",
                             "check", "--read-data-subset=10%"]


def test_restic_other_urls_get_their_credentials_and_no_ssh_option():
    repo = Repository("s3", url="s3:https://s3.example/b/mx1", ssh=list(SSH),
                      environment={"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"})
    tool, fake = restic(repo)
    tool.check()
    argv, env, _ = fake.calls[0]
    assert argv == ["restic", "-r", "s3:https://s3.example/b/mx1", "check", "--read-data-subset=10%"]
    assert env == {"RESTIC_PASSWORD_FILE": PASS, "AWS_ACCESS_KEY_ID": "AK",
                   "AWS_SECRET_ACCESS_KEY": "SK", "RESTIC_CACHE_DIR": f"{CACHE}/restic"}


def test_restic_local_repository_without_cache():
    tool, fake = restic(local())
    tool.check()
    argv, env, _ = fake.calls[0]
    assert argv == ["restic", "-r", REPO_PATH, "--no-cache", "check", "--read-data-subset=10%"]
    assert env == {"RESTIC_PASSWORD_FILE": PASS}


# --- restic: commands --------------------------------------------------------------------

MISSING_RESTIC = ("Fatal: unable to open config file: <config/> does not exist\n"
                  "Is there a repository at the following location?\nrclone:mailstack\n")


def test_restic_ensure_initialises_a_missing_repository():
    tool, fake = restic(over_ssh(), (1, "", MISSING_RESTIC))
    tool.ensure()
    assert fake.argvs == [RESTIC_SSH + ["cat", "config"], RESTIC_SSH + ["init"]]


def test_restic_ensure_leaves_an_existing_repository_alone():
    tool, fake = restic(over_ssh(), (0, "{}", ""))
    tool.ensure()
    assert fake.argvs == [RESTIC_SSH + ["cat", "config"]]


def test_restic_ensure_wrong_passphrase_is_a_clear_failure_and_no_init():
    tool, fake = restic(over_ssh(), (1, "", "Fatal: wrong password or no key found\n"))
    with pytest.raises(Failure, match=r"^the passphrase does not open the repository on "
                                      r"bk.example.org \(wrong passphrase\)$"):
        tool.ensure()
    assert len(fake.calls) == 1


def test_restic_ensure_other_error_names_the_host_and_the_error():
    tool, fake = restic(over_ssh(), (1, "", "ssh: connect to host 192.0.2.12 port 22: Connection refused\n"))
    with pytest.raises(Failure) as e:
        tool.ensure()
    assert str(e.value) == "bk.example.org: ssh: connect to host 192.0.2.12 port 22: Connection refused"
    assert len(fake.calls) == 1


def test_restic_ensure_failing_init_is_a_failure():
    tool, fake = restic(over_ssh(), (1, "", MISSING_RESTIC), (1, "", "Fatal: create repository failed\n"))
    with pytest.raises(Failure, match="create repository failed"):
        tool.ensure()


def test_restic_backup_tags_and_names_the_host():
    tool, fake = restic(over_ssh())
    tool.backup("mx1.example.org", ["/var/vmail", "/etc/postfix"])
    assert fake.argvs == [RESTIC_SSH + ["backup", "--host", "mx1.example.org", "--tag", "mailstack",
                                        "--exclude", "dovecot*.lock*", "/var/vmail", "/etc/postfix"]]


def test_restic_backup_failure_is_raised():
    tool, _ = restic(over_ssh(), (1, "", "a\nb\nc\nFatal: unable to save snapshot\n"))
    with pytest.raises(Failure, match=r"^bk.example.org: b / c / Fatal: unable to save snapshot$"):
        tool.backup("mx1.example.org", ["/var/vmail"])


def test_restic_snapshots_parses_json_with_nanosecond_times():
    out = json.dumps([
        {"short_id": "1a2b3c4d", "id": "1a2b3c4d" + "0" * 56, "time": "2026-11-30T10:00:00.123456789+01:00"},
        {"short_id": "5e6f7a8b", "id": "5e6f7a8b" + "0" * 56, "time": "2026-11-30T12:00:00.5Z"}])
    tool, fake = restic(over_ssh(), (0, out, ""))
    found = tool.snapshots()
    assert fake.argvs == [RESTIC_SSH + ["snapshots", "--json"]]
    assert found == [
        {"id": "1a2b3c4d", "time": datetime.datetime(2026, 11, 30, 9, 0, 0, 123456, UTC),
         "raw_time": "2026-11-30T10:00:00.123456789+01:00", "arrived": None, "archive": None},
        {"id": "5e6f7a8b", "time": datetime.datetime(2026, 11, 30, 12, 0, 0, 500000, UTC),
         "raw_time": "2026-11-30T12:00:00.5Z", "arrived": None, "archive": None}]


def test_restic_snapshots_of_an_empty_answer_is_none():
    tool, _ = restic(over_ssh(), (0, "", ""))
    assert tool.snapshots() == []


def test_restic_restore_includes_each_path():
    tool, fake = restic(over_ssh())
    tool.restore("1a2b3c4d", "/var/tmp/r", ["/var/vmail/example.org/anna/Maildir", "/etc/knot"])
    assert fake.calls == [(RESTIC_SSH + ["restore", "1a2b3c4d", "--target", "/var/tmp/r",
                                         "--include", "/var/vmail/example.org/anna/Maildir",
                                         "--include", "/etc/knot"],
                           tool.env(), None)]


def test_restic_restore_without_paths_restores_everything():
    tool, fake = restic(over_ssh())
    tool.restore("1a2b3c4d", "/var/tmp/r")
    assert fake.argvs == [RESTIC_SSH + ["restore", "1a2b3c4d", "--target", "/var/tmp/r"]]


def test_restic_prune_forgets_by_host_and_retention():
    tool, fake = restic(Repository("s3", url="s3:https://s3.example/b/mx1"))
    tool.prune({"daily": 7, "weekly": 4}, host="mx1.example.org")
    assert fake.argvs == [["restic", "-r", "s3:https://s3.example/b/mx1", "forget", "--prune",
                           "--host", "mx1.example.org", "--keep-daily=7", "--keep-weekly=4",
                           "--keep-tag", "mailstack-offboarded"]]


def test_restic_prune_without_host_on_the_backup_host():
    tool, fake = restic(local())
    tool.prune({"daily": 7})
    assert fake.argvs == [["restic", "-r", REPO_PATH, "--no-cache", "forget", "--prune", "--keep-daily=7",
                           "--keep-tag", "mailstack-offboarded"]]


def test_restic_files_of_the_newest_snapshot_skip_the_header():
    listing = "snapshot 1a2b3c4d of [/var/vmail] at 2026-11-30:\n/var\n/var/vmail\n"
    tool, fake = restic(local(), (0, listing, ""))
    assert tool.files() == ["/var", "/var/vmail"]
    assert fake.argvs == [["restic", "-r", REPO_PATH, "--no-cache", "ls", "latest", "--tag", "mailstack"]]


def test_restic_serve_is_append_only_rclone():
    assert Restic.serve("/srv/r") == "rclone serve restic --stdio --append-only --config '' /srv/r"


def test_restic_refuses_rollback():
    tool, fake = restic(local())
    with pytest.raises(Failure, match=r"^rollback is for Borg \(restic refuses deletions outright\)$"):
        tool.rollback(datetime.datetime(2026, 11, 30))
    assert fake.calls == []


# --- Borg: how the repository is reached -------------------------------------------------

def test_borg_reaches_a_backup_host_over_ssh_with_its_key():
    tool, fake = borg(over_ssh(BORG_PATH))
    tool.check()
    argv, env, cwd = fake.calls[0]
    assert argv == ["borg", "check", BORG_SSH]
    assert env == {"BORG_PASSCOMMAND": f"cat {PASS}", "BORG_BASE_DIR": f"{STATE}/borg",
                   "BORG_RSH": SSH_TEXT, "BORG_CACHE_DIR": f"{CACHE}/borg"}
    assert cwd is None


def test_borg_ssh_url_of_the_operator_uses_borg_rsh():
    url = "ssh://u123@store.example:23/./mail/mx1"
    tool, fake = borg(Repository("offsite", url=url, ssh=list(SSH), environment={"X": "1"}))
    tool.check()
    argv, env, _ = fake.calls[0]
    assert argv == ["borg", "check", url]
    assert env["BORG_RSH"] == SSH_TEXT and env["X"] == "1"


def test_borg_local_repository_without_cache_or_ssh():
    tool, fake = borg(local(BORG_PATH))
    tool.check()
    argv, env, _ = fake.calls[0]
    assert argv == ["borg", "check", BORG_PATH]
    assert env == {"BORG_PASSCOMMAND": f"cat {PASS}", "BORG_BASE_DIR": f"{STATE}/borg"}


# --- Borg: commands ----------------------------------------------------------------------

@pytest.mark.parametrize("stderr", [f"Repository {BORG_PATH} does not exist.\n",
                                    f"{BORG_PATH} is not a valid repository. Check repo config.\n"])
def test_borg_ensure_initialises_a_missing_or_empty_repository(stderr):
    tool, fake = borg(over_ssh(BORG_PATH), (2, "", stderr))
    tool.ensure()
    assert fake.argvs == [["borg", "info", BORG_SSH],
                          ["borg", "init", "--encryption", "repokey-blake2", BORG_SSH]]


def test_borg_ensure_leaves_an_existing_repository_alone():
    tool, fake = borg(over_ssh(BORG_PATH), (0, "Repository ID: ...", ""))
    tool.ensure()
    assert fake.argvs == [["borg", "info", BORG_SSH]]


def test_borg_ensure_wrong_passphrase_is_a_clear_failure():
    err = ("passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via "
           "BORG_PASSPHRASE_FD is incorrect.\n")
    tool, fake = borg(over_ssh(BORG_PATH), (2, "", err))
    with pytest.raises(Failure, match=r"wrong passphrase"):
        tool.ensure()
    assert len(fake.calls) == 1


def test_borg_ensure_other_error_is_a_failure():
    tool, fake = borg(over_ssh(BORG_PATH), (2, "", "Remote: ssh: Could not resolve hostname\n"))
    with pytest.raises(Failure, match=r"^bk.example.org: Remote: ssh: Could not resolve hostname$"):
        tool.ensure()
    assert len(fake.calls) == 1


def test_borg_backup_creates_a_host_named_archive():
    tool, fake = borg(over_ssh(BORG_PATH))
    tool.backup("mx1.example.org", ["/var/vmail", "/etc/postfix"])
    assert fake.argvs == [["borg", "create", "--compression", "zstd,3", "--one-file-system",
                           "--exclude", "*/dovecot*.lock*", BORG_SSH + "::mx1.example.org-{utcnow:%Y-%m-%dT%H:%M:%S.%f}",
                           "/var/vmail", "/etc/postfix"]]


@pytest.fixture
def utc_plus_3(monkeypatch):
    """Local time three hours ahead of UTC (POSIX TZ, no tzdata needed)."""
    monkeypatch.setenv("TZ", "XYZ-3")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_borg_snapshots_read_naive_local_times(utc_plus_3):
    out = json.dumps({"archives": [
        {"name": "mx1.example.org-2026-11-30T07:00:00.000000", "start": "2026-11-30T10:00:00.000000"}]})
    tool, fake = borg(over_ssh(BORG_PATH), (0, out, ""))
    assert tool.snapshots() == [{"id": "mx1.example.org-2026-11-30T07:00:00.000000",
                                 "time": datetime.datetime(2026, 11, 30, 7, 0, tzinfo=UTC),
                                 "raw_time": "2026-11-30T10:00:00.000000", "arrived": None,
                                 "archive": None}]
    assert fake.argvs == [["borg", "list", "--json", BORG_SSH]]


def test_borg_restore_extracts_relative_paths_in_the_target():
    tool, fake = borg(over_ssh(BORG_PATH))
    tool.restore("mx1-1", "/var/tmp/r", ["/var/vmail/example.org/anna/Maildir", "/etc/knot"])
    assert fake.calls == [(["borg", "extract", BORG_SSH + "::mx1-1",
                            "var/vmail/example.org/anna/Maildir", "etc/knot"],
                           tool.env(), "/var/tmp/r")]


def test_borg_prune_of_the_hosts_own_archives_then_compact():
    tool, fake = borg(local(BORG_PATH))
    tool.prune({"daily": 7, "monthly": 6}, host="mx1.example.org")
    assert fake.argvs == [["borg", "prune", "--keep-daily=7", "--keep-monthly=6",
                           "--glob-archives", "mx1.example.org-*", BORG_PATH],
                          ["borg", "compact", BORG_PATH]]


def test_borg_prune_failure_stops_before_compact():
    tool, fake = borg(local(BORG_PATH), (2, "", "Failed to create/acquire the lock\n"))
    with pytest.raises(Failure, match="lock"):
        tool.prune({"daily": 7})
    assert len(fake.calls) == 1


def test_borg_files_of_the_newest_archive_are_absolute():
    archives = json.dumps({"archives": [{"name": "old", "start": "2026-11-29T10:00:00.000000"},
                                        {"name": "new", "start": "2026-11-30T10:00:00.000000"}]})
    tool, fake = borg(local(BORG_PATH), (0, archives, ""), (0, "var\nvar/vmail\n", ""))
    assert tool.files() == ["/var", "/var/vmail"]
    assert fake.argvs[1] == ["borg", "list", "--format", "{path}{NL}", BORG_PATH + "::new"]


def test_borg_serve_is_append_only_and_restricted():
    assert Borg.serve("/srv/r") == "borg serve --append-only --restrict-to-repository /srv/r"


def test_tools_are_registered_by_name_and_repositories_live_per_client_and_tool():
    assert TOOLS == {"restic": Restic, "borg": Borg}
    assert repository_path("mx1.example.org", "borg") == "/srv/mailstack-backup/mx1.example.org/borg"


# --- Borg rollback -----------------------------------------------------------------------

@pytest.fixture
def borg_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "data" / "0").mkdir(parents=True)
    (repo / "transactions").write_text(
        "transaction 1, UTC time 2026-11-30T09:00:00.000000\n"
        "transaction 3, UTC time 2026-11-30T10:00:00.000000\n"
        "transaction 5, UTC time 2026-11-30T11:00:00.000000\n")
    for name in ("data/0/1", "data/0/2", "data/0/3", "data/0/4", "data/0/5",
                 "hints.5", "index.5", "integrity.5", "README", "nonce"):
        (repo / name).write_text("x")
    (repo / "config").write_text("[repository]\nversion = 1\nid = 5ca1ab1e\nappend_only = 0\n")
    return repo


def remaining(repo):
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())


def test_borg_rollback_drops_transactions_after_the_limit(borg_repo):
    tool = Borg(Repository("mx1.example.org", path=str(borg_repo), cache=False), PASS, run=Fake())
    assert tool.rollback(datetime.datetime(2026, 11, 30, 10, 30)) == (3, 5)
    assert remaining(borg_repo) == ["README", "config", "data/0/1", "data/0/2", "data/0/3",
                                    "nonce", "transactions"]


def test_borg_rollback_keeps_a_transaction_at_exactly_the_limit(borg_repo):
    tool = Borg(Repository("mx1.example.org", path=str(borg_repo)), PASS, run=Fake())
    assert tool.rollback(datetime.datetime(2026, 11, 30, 11, 0)) == (5, 0)
    assert "data/0/5" in remaining(borg_repo) and "index.5" in remaining(borg_repo)


def test_borg_rollback_before_every_transaction_fails_and_removes_nothing(borg_repo):
    before = remaining(borg_repo)
    tool = Borg(Repository("mx1.example.org", path=str(borg_repo)), PASS, run=Fake())
    with pytest.raises(Failure, match=r"^no transaction of mx1.example.org at or before "
                                      r"2026-11-30T08:00:00$"):
        tool.rollback(datetime.datetime(2026, 11, 30, 8, 0))
    assert remaining(borg_repo) == before


# --- explain, parse_time -----------------------------------------------------------------

def test_explain_wrong_passphrase():
    assert explain("bk", "Fatal: wrong password or no key found") == \
        "the passphrase does not open the repository on bk (wrong passphrase)"


def test_explain_keeps_the_last_three_lines():
    assert explain("bk", "one\n\ntwo\nthree\n  \nfour\n") == "bk: two / three / four"


def test_explain_without_output():
    assert explain("bk", "  \n") == "bk: failed"


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30T10:00:00.123456789Z", datetime.datetime(2026, 11, 30, 10, 0, 0, 123456, UTC)),
    ("2026-11-30T10:00:00.123456789+01:00", datetime.datetime(2026, 11, 30, 9, 0, 0, 123456, UTC)),
    ("2026-11-30T10:00:00.1234567-05:30", datetime.datetime(2026, 11, 30, 15, 30, 0, 123456, UTC)),
    ("2026-11-30T10:00:00Z", datetime.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),
    ("2026-11-30T10:00:00", datetime.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),
])
def test_parse_time_of_restic_and_iso_times(text, expected):
    t = parse_time(text)
    assert t == expected and t.utcoffset() == datetime.timedelta(0)


def test_parse_time_of_borg_local_times(utc_plus_3):
    assert parse_time("2026-11-30T10:00:00.000000", local=True) == \
        datetime.datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


# --- mailstack-backup: arguments ---------------------------------------------------------

@pytest.mark.parametrize("argv, func", [
    (["run"], backup.run), (["status"], backup.print_status),
    (["notify-failure"], backup.notify_failure), (["snapshots"], backup.snapshots),
    (["restore-mailbox", "anna@example.org"], backup.restore_mailbox),
    (["restore-host"], backup.restore_host), (["extract", "--into", "/tmp/x"], backup.extract),
])
def test_backup_commands_choose_their_function(argv, func):
    assert backup.parser().parse_args(argv).func is func


def test_backup_snapshots_take_target_and_passphrase_file():
    args = backup.parser().parse_args(["snapshots", "--target", "offsite", "--passphrase-file", "/p"])
    assert (args.target, args.passphrase_file) == ("offsite", "/p")


def test_backup_restore_mailbox_takes_an_address_and_as_of():
    args = backup.parser().parse_args(["restore-mailbox", "anna@example.org", "--as-of",
                                       "2026-11-30T10:00:00Z", "--target", "bk"])
    assert (args.address, args.as_of, args.target, args.passphrase_file) == \
        ("anna@example.org", "2026-11-30T10:00:00Z", "bk", None)


def test_backup_restore_host_takes_a_snapshot():
    args = backup.parser().parse_args(["restore-host", "--snapshot", "1a2b", "--passphrase-file", "/p"])
    assert (args.snapshot, args.passphrase_file, args.target) == ("1a2b", "/p", None)


def test_backup_extract_takes_into_snapshot_and_paths():
    args = backup.parser().parse_args(["extract", "--into", "/tmp/x", "--snapshot", "1a2b",
                                       "/etc/knot", "/var/lib/knot"])
    assert (args.into, args.snapshot, args.paths) == ("/tmp/x", "1a2b", ["/etc/knot", "/var/lib/knot"])
    assert backup.parser().parse_args(["extract", "--into", "/tmp/x"]).paths == []


@pytest.mark.parametrize("argv", [
    [], ["backup"], ["restore-mailbox"], ["extract"], ["extract", "/etc"],
    ["run", "--target", "bk"], ["restore-mailbox", "a@example.org", "--snapshot", "x"],
    ["restore-host", "--as-of", "2026-11-30"], ["snapshots", "extra"],
])
def test_backup_bad_invocations_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        backup.parser().parse_args(argv)
    assert e.value.code == 2
    assert "usage: mailstack-backup" in capsys.readouterr().err


# --- mailstack-backup: settings, targets, snapshots --------------------------------------

TARGET_HOST = {"host": "bk.example.org", "address": "192.0.2.12", "user": "bk-mx1-example-org",
               "repository": REPO_PATH}


def settings(tmp_path=None, **extra):
    return {"tool": "restic", "host": "mx1.example.org", "postmaster": "postmaster@example.org",
            "paths": ["/var/vmail"], "targets": [TARGET_HOST, {"host": "offsite",
                                                              "url": "s3:https://s3.example/b/mx1",
                                                              "environment": None,
                                                              "keep": {"daily": 7}}], **extra}


def test_environment_reads_key_value_lines(tmp_path):
    env = tmp_path / "offsite.env"
    env.write_text("# credentials for S3\n"
                   "export AWS_ACCESS_KEY_ID=\"AKIA123\"\n"
                   "AWS_SECRET_ACCESS_KEY='s3cr=et'\n"
                   "  RESTIC_X = plain  \n"
                   "\n"
                   "#COMMENTED=1\n"
                   "not a pair\n")
    assert backup.environment(str(env)) == {"AWS_ACCESS_KEY_ID": "AKIA123",
                                            "AWS_SECRET_ACCESS_KEY": "s3cr=et", "RESTIC_X": "plain"}


def test_environment_without_a_file_is_empty():
    assert backup.environment(None) == {}


def test_repository_of_a_backup_host():
    repo = backup.repository(TARGET_HOST)
    assert repo == Repository("bk.example.org", path=REPO_PATH, login="bk-mx1-example-org@192.0.2.12",
                              ssh=backup.ssh("bk.example.org"))
    assert repo.url is None and repo.cache and repo.environment == {}
    assert ["-i", backup.KEY] == repo.ssh[1:3] and "HostKeyAlias=bk.example.org" in repo.ssh


def test_repository_of_an_operator_url_reads_its_credentials(tmp_path):
    (tmp_path / "offsite.env").write_text("AWS_ACCESS_KEY_ID=AK\n")
    repo = backup.repository({"host": "offsite", "url": "sftp:u@store.example:/mx1",
                              "environment": str(tmp_path / "offsite.env")})
    assert (repo.name, repo.url, repo.path, repo.login) == ("offsite", "sftp:u@store.example:/mx1", None, None)
    assert repo.environment == {"AWS_ACCESS_KEY_ID": "AK"}
    assert repo.ssh == backup.ssh("offsite")


def test_tool_for_uses_the_settings_tool_and_this_hosts_passphrase():
    tool = backup.tool_for({**settings(), "tool": "borg"}, TARGET_HOST)
    assert isinstance(tool, Borg) and tool.passphrase == backup.PASSPHRASE
    assert tool.location == f"ssh://bk-mx1-example-org@192.0.2.12{REPO_PATH}"


def test_chosen_tool_defaults_to_the_first_target():
    args = backup.parser().parse_args(["snapshots"])
    tool = backup.chosen_tool(settings(), args)
    assert isinstance(tool, Restic) and tool.repo.name == "bk.example.org"
    assert tool.passphrase == backup.PASSPHRASE


def test_chosen_tool_by_target_with_another_passphrase():
    args = backup.parser().parse_args(["snapshots", "--target", "offsite", "--passphrase-file", "/p"])
    tool = backup.chosen_tool(settings(), args)
    assert tool.repo.url == "s3:https://s3.example/b/mx1" and tool.passphrase == "/p"


def test_chosen_tool_of_an_unknown_target_names_the_targets():
    args = backup.parser().parse_args(["snapshots", "--target", "nope"])
    with pytest.raises(Failure, match=r"^no target nope \(targets: bk.example.org, offsite\)$"):
        backup.chosen_tool(settings(), args)


SNAPS = [{"id": "b", "time": datetime.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)},
         {"id": "a", "time": datetime.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)},
         {"id": "c", "time": datetime.datetime(2026, 11, 30, 14, 0, tzinfo=UTC)}]


def test_pick_the_newest_by_default():
    assert backup.pick(SNAPS, "bk")["id"] == "c"


def test_pick_by_id():
    assert backup.pick(SNAPS, "bk", snapshot="a")["id"] == "a"


@pytest.mark.parametrize("as_of, expected", [
    ("2026-11-30T13:00:00Z", "b"), ("2026-11-30T12:00:00+00:00", "b"),
    ("2026-11-30T13:30:00+02:00", "a"), ("2026-12-01", "c")])
def test_pick_as_of_takes_the_newest_at_or_before(as_of, expected):
    assert backup.pick(SNAPS, "bk", as_of=as_of)["id"] == expected


def test_pick_as_of_before_every_snapshot_fails():
    with pytest.raises(Failure, match=r"^no snapshot as of 2026-11-30T09:00:00Z on bk$"):
        backup.pick(SNAPS, "bk", as_of="2026-11-30T09:00:00Z")


def test_pick_unknown_id_fails():
    with pytest.raises(Failure, match=r"^no snapshot zzz on bk$"):
        backup.pick(SNAPS, "bk", snapshot="zzz")


def test_pick_in_an_empty_repository_fails():
    with pytest.raises(Failure, match=r"^no snapshot .*on bk$"):
        backup.pick([], "bk")


def restic_target(monkeypatch, *results):
    """backup.tool_for answering with a Restic on a fake runner."""
    fake = Fake(*results)
    monkeypatch.setattr(backup, "tool_for", lambda s, target, passphrase=backup.PASSPHRASE:
                        Restic(backup.repository(target), passphrase, run=fake))
    return fake


def write_settings(tmp_path, data):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_snapshots_command_prints_ids_and_utc_times(tmp_path, monkeypatch, capsys):
    out = json.dumps([{"short_id": "1a2b3c4d", "id": "1a2b3c4d" + "0" * 56,
                       "time": "2026-11-30T10:00:00.123456789+01:00"}])
    fake = restic_target(monkeypatch, (0, out, ""))
    backup.main(["snapshots", "--passphrase-file", "/p"], settings_file=write_settings(tmp_path, settings()))
    assert json.loads(capsys.readouterr().out) == [{"id": "1a2b3c4d", "time": "2026-11-30T09:00:00.123456+00:00"}]
    assert fake.calls[0][1]["RESTIC_PASSWORD_FILE"] == "/p"


def test_snapshots_command_of_an_unknown_target_exits_with_the_message(tmp_path):
    with pytest.raises(SystemExit) as e:
        backup.main(["snapshots", "--target", "nope"], settings_file=write_settings(tmp_path, settings()))
    assert e.value.code == "mailstack-backup: no target nope (targets: bk.example.org, offsite)"


def test_extract_restores_the_chosen_snapshot_into_a_new_directory(tmp_path, monkeypatch, capsys):
    out = json.dumps([{"short_id": "old", "id": "old" + "0" * 61, "time": "2026-11-29T10:00:00Z"},
                      {"short_id": "new", "id": "new" + "0" * 61, "time": "2026-11-30T10:00:00Z"}])
    fake = restic_target(monkeypatch, (0, out, ""))
    into = tmp_path / "out" / "here"
    backup.main(["extract", "--into", str(into), "--snapshot", "old", "/etc/knot"],
                settings_file=write_settings(tmp_path, settings()))
    assert into.is_dir()
    assert fake.argvs[1][-6:] == ["restore", "old", "--target", str(into), "--include", "/etc/knot"]
    assert json.loads(capsys.readouterr().out) == {"snapshot": "old", "into": str(into)}


def test_failure_mail_names_host_postmaster_and_error():
    msg = backup.failure_mail(settings(), {"last_failure": "2026-11-30T03:00:00+00:00",
                                           "last_error": "bk.example.org: Connection refused",
                                           "last_success": "2026-11-29T03:00:00+00:00"}, "LOG LINES")
    assert (msg["From"], msg["To"], msg["Subject"]) == ("mailstack-backup <root@mx1.example.org>",
                                                        "postmaster@example.org",
                                                        "Backup of mx1.example.org failed")
    assert msg["Date"] and msg["Message-ID"].endswith("@mx1.example.org>")
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "failed at 2026-11-30T03:00:00+00:00" in body
    assert "  bk.example.org: Connection refused" in body
    assert "Last successful backup: 2026-11-29T03:00:00+00:00" in body
    assert body.endswith("LOG LINES\n")


def test_failure_mail_without_history():
    body = backup.failure_mail(settings(), {}, "").get_content()
    assert "Last successful backup: never" in body and "see the log below" in body


# --- mailstack-backup run ----------------------------------------------------------------

class FakeTool:
    def __init__(self, name, calls, error=None):
        self.name, self.calls, self.error = name, calls, error

    def ensure(self):
        self.calls.append((self.name, "ensure"))
        if self.error:
            raise Failure(self.error)

    def backup(self, host, paths):
        self.calls.append((self.name, "backup", host, paths))

    def prune(self, keep, host=None):
        self.calls.append((self.name, "prune", keep, host))


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(backup, "STATE", str(tmp_path / "state"))
    monkeypatch.setattr(backup, "STATUS", str(tmp_path / "state" / "status.json"))
    monkeypatch.setattr(backup, "dump", lambda settings: None)
    return tmp_path / "state" / "status.json"


def run_settings(tmp_path):
    (tmp_path / "vmail").mkdir()
    return settings(paths=[str(tmp_path / "vmail"), str(tmp_path / "absent")])


def test_run_records_each_target_and_fails_when_one_fails(tmp_path, monkeypatch, state):
    calls = []
    monkeypatch.setattr(backup, "tool_for", lambda s, t: FakeTool(
        t["host"], calls, error="offsite: Connection refused" if t["host"] == "offsite" else None))
    with pytest.raises(SystemExit) as e:
        backup.run(run_settings(tmp_path), None)
    assert e.value.code == "mailstack-backup: backup failed: offsite: Connection refused"
    assert calls == [("bk.example.org", "ensure"),
                     ("bk.example.org", "backup", "mx1.example.org", [str(tmp_path / "vmail")]),
                     ("offsite", "ensure")]
    status = json.loads(state.read_text())
    bk, offsite = status["targets"]["bk.example.org"], status["targets"]["offsite"]
    assert "last_success" in bk and "last_error" not in bk
    assert offsite["last_error"] == "offsite: Connection refused" and "last_success" not in offsite
    assert status["last_error"] == "offsite: Connection refused"
    assert status["tool"] == "restic" and status["last_failure"] == status["last_attempt"]


def test_run_prunes_the_operators_repository_and_clears_old_errors(tmp_path, monkeypatch, state, capsys):
    calls = []
    state.parent.mkdir()
    state.write_text(json.dumps({"targets": {"offsite": {"last_error": "old"}}, "last_error": "old"}))
    monkeypatch.setattr(backup, "tool_for", lambda s, t: FakeTool(t["host"], calls))
    backup.run(run_settings(tmp_path), None)
    assert ("offsite", "prune", {"daily": 7}, "mx1.example.org") in calls
    assert not any(c[0] == "bk.example.org" and c[1] == "prune" for c in calls)
    status = json.loads(state.read_text())
    assert "last_error" not in status and "last_error" not in status["targets"]["offsite"]
    assert "last_success" in status and "last_success" in status["targets"]["offsite"]
    assert capsys.readouterr().out == "mailstack-backup: 1 paths saved to 2 target(s)\n"


def test_run_without_a_database_dump_backs_up_nothing(tmp_path, monkeypatch, state):
    def broken(settings):
        raise OSError("redis could not save its data")
    monkeypatch.setattr(backup, "dump", broken)
    calls = []
    monkeypatch.setattr(backup, "tool_for", lambda s, t: FakeTool(t["host"], calls))
    with pytest.raises(SystemExit) as e:
        backup.run(run_settings(tmp_path), None)
    assert e.value.code == "mailstack-backup: backup failed: database dump: redis could not save its data"
    assert calls == []
    assert json.loads(state.read_text())["last_error"] == "database dump: redis could not save its data"


def test_status_command_prints_the_status_file(tmp_path, state, capsys):
    state.parent.mkdir()
    state.write_text(json.dumps({"targets": {}, "last_success": "x"}))
    backup.main(["status"], settings_file=write_settings(tmp_path, settings()))
    assert json.loads(capsys.readouterr().out) == {"targets": {}, "last_success": "x"}


def test_status_without_a_file_is_empty(tmp_path, state, capsys):
    backup.main(["status"], settings_file=write_settings(tmp_path, settings()))
    assert json.loads(capsys.readouterr().out) == {"targets": {}}


# --- merge_maildir -----------------------------------------------------------------------

def maildir(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def mailboxes(tmp_path):
    saved, live = tmp_path / "saved", tmp_path / "live"
    maildir(saved, {"cur/1000.a.mx1:2,S": "A", "new/1001.b.mx1": "B", "cur/1002.c.mx1:2,": "C",
                    ".Archive/cur/2000.d.mx1:2,S": "D", ".Archive/maildirfolder": "",
                    ".Sent/cur/3000.e.mx1:2,S": "E", ".Sent/maildirfolder": "",
                    "subscriptions": "Archive\nSent\n", "dovecot.index": "i"})
    (saved / ".Archive" / "new").mkdir()
    (saved / ".notafolder").mkdir()
    maildir(live, {"cur/1002.c.mx1:2,RS": "C-live", "new/4000.f.mx1": "F",
                   ".Sent/cur/3000.e.mx1:2,ST": "E-live", ".Sent/maildirfolder": "",
                   "subscriptions": "Sent\nTrash\n"})
    return saved, live


def merge(saved, live):
    return backup.merge_maildir(str(saved), str(live), os.getuid(), os.getgid())


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_merge_maildir_copies_missing_messages_into_cur(mailboxes):
    saved, live = mailboxes
    restored, folders = merge(saved, live)
    assert restored == 3
    assert (live / "cur" / "1000.a.mx1:2,S").read_text() == "A"
    assert (live / "cur" / "1001.b.mx1:2,").read_text() == "B"     # from new: flags added
    assert (live / ".Archive" / "cur" / "2000.d.mx1:2,S").read_text() == "D"


def test_merge_maildir_does_not_duplicate_or_change_what_is_live(mailboxes):
    saved, live = mailboxes
    merge(saved, live)
    files = listing(live)
    assert [f for f in files if "1002.c" in f] == ["cur/1002.c.mx1:2,RS"]
    assert [f for f in files if "3000.e" in f] == [".Sent/cur/3000.e.mx1:2,ST"]
    assert (live / "cur" / "1002.c.mx1:2,RS").read_text() == "C-live"
    assert (live / "new" / "4000.f.mx1").read_text() == "F"
    assert "dovecot.index" not in files and not (live / ".notafolder").exists()


def test_merge_maildir_lists_new_folders_and_copies_maildirfolder(mailboxes):
    saved, live = mailboxes
    _, folders = merge(saved, live)
    assert folders == ["Archive"]
    assert (live / ".Archive" / "maildirfolder").exists()
    assert all((live / ".Archive" / sub).is_dir() for sub in ("cur", "new", "tmp"))


def test_merge_maildir_merges_subscriptions(mailboxes):
    saved, live = mailboxes
    merge(saved, live)
    assert (live / "subscriptions").read_text() == "Sent\nTrash\nArchive\n"


def test_merge_maildir_twice_restores_nothing_more(mailboxes):
    saved, live = mailboxes
    merge(saved, live)
    before = listing(live)
    assert merge(saved, live) == (0, [])
    assert listing(live) == before


# --- mailstack-backup-server -------------------------------------------------------------

CLIENT = {"host": "mx1.example.org", "user": "bk-mx1-example-org"}


def clients_file(tmp_path, tool, repository=None, keep=None):
    repository = repository or str(tmp_path / "repo")
    data = {"tool": tool, "keep": keep or {"daily": 7},
            "clients": [{**CLIENT, "repository": repository}]}
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def server_runner(monkeypatch, tmp_path):
    """The tools run on a fake instead of running and then chowning to the client;
    the ledgers are kept in tmp_path/ledger."""
    fake = Fake()
    monkeypatch.setattr(backup_server, "owned_by_client", lambda client: fake)
    monkeypatch.setattr(backup_server, "LEDGER", str(tmp_path / "ledger"))
    return fake


def test_server_snapshots_prints_ids_with_raw_times(tmp_path, server_runner, capsys):
    server_runner.results.append((0, json.dumps([
        {"short_id": "1a2b3c4d", "id": "1a2b3c4d" + "0" * 56,
         "time": "2026-11-30T10:00:00.123456789+01:00"}]), ""))
    backup_server.main(["snapshots", "mx1.example.org"], settings_file=clients_file(tmp_path, "restic"))
    assert json.loads(capsys.readouterr().out) == [
        {"id": "1a2b3c4d", "time": "2026-11-30T10:00:00.123456789+01:00"}]
    argv, env, _ = server_runner.calls[0]
    assert argv == ["restic", "-r", str(tmp_path / "repo"), "--no-cache", "snapshots", "--json"]
    assert env == {"RESTIC_PASSWORD_FILE": "/etc/mailstack-backup/mx1.example.org.passphrase"}


def test_server_files_prints_the_newest_snapshots_paths(tmp_path, server_runner, capsys):
    server_runner.results += [(0, json.dumps({"archives": [{"name": "n", "start": "2026-11-30T10:00:00"}]}), ""),
                              (0, "etc\netc/knot\n", "")]
    backup_server.main(["files", "mx1.example.org"], settings_file=clients_file(tmp_path, "borg"))
    assert capsys.readouterr().out == "/etc\n/etc/knot\n"
    assert "BORG_CACHE_DIR" not in server_runner.calls[0][1]


def test_server_prune_and_check_only_existing_repositories(tmp_path, server_runner):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "config").write_text("")
    data = {"tool": "borg", "keep": {"daily": 7},
            "clients": [{**CLIENT, "repository": str(tmp_path / "repo")},
                        {"host": "mx2.example.org", "user": "bk-mx2", "repository": str(tmp_path / "none")}]}
    (tmp_path / "clients.json").write_text(json.dumps(data))
    old, new = ({"name": f"mx1.example.org-2026-11-29T{h}", "start": f"2026-11-29T{h}"}
                for h in ("01:00:00", "02:00:00"))
    server_runner.results += [(0, json.dumps({"archives": [old, new]}), ""), (0, "", ""), (0, "", ""),
                              (0, json.dumps({"archives": [new]}), "")]
    backup_server.main(["prune"], settings_file=str(tmp_path / "clients.json"))
    backup_server.main(["check"], settings_file=str(tmp_path / "clients.json"))
    repo = str(tmp_path / "repo")
    assert server_runner.argvs == [["borg", "list", "--json", repo],
                                   ["borg", "delete", repo, old["name"]], ["borg", "compact", repo],
                                   ["borg", "list", "--json", repo], ["borg", "check", repo]]


def test_server_unknown_client(tmp_path, server_runner):
    with pytest.raises(SystemExit) as e:
        backup_server.main(["snapshots", "mx9.example.org"], settings_file=clients_file(tmp_path, "restic"))
    assert e.value.code == "mailstack-backup-server: no client mx9.example.org"
    assert server_runner.calls == []


def test_server_rollback_of_restic_is_refused(tmp_path, server_runner):
    with pytest.raises(SystemExit) as e:
        backup_server.main(["rollback", "mx1.example.org", "--to", "2026-11-30T10:00:00Z"],
                           settings_file=clients_file(tmp_path, "restic"))
    assert e.value.code == "mailstack-backup-server: rollback is for Borg (restic refuses deletions outright)"


@pytest.mark.parametrize("to", ["2026-11-30T10:30:00", "2026-11-30T10:30:00Z", "2026-11-30T11:30:00+01:00"])
def test_server_rollback_of_borg_takes_utc_limits(tmp_path, borg_repo, server_runner, capsys, to):
    backup_server.main(["rollback", "mx1.example.org", "--to", to],
                       settings_file=clients_file(tmp_path, "borg", repository=str(borg_repo)))
    assert json.loads(capsys.readouterr().out) == {"client": "mx1.example.org", "transaction": 3,
                                                   "files_dropped": 5}
    assert not (borg_repo / "data" / "0" / "4").exists() and (borg_repo / "data" / "0" / "3").exists()


def test_server_rollback_before_history_exits_with_the_message(tmp_path, borg_repo, server_runner):
    with pytest.raises(SystemExit) as e:
        backup_server.main(["rollback", "mx1.example.org", "--to", "2026-01-01T00:00:00Z"],
                           settings_file=clients_file(tmp_path, "borg", repository=str(borg_repo)))
    assert e.value.code == ("mailstack-backup-server: no transaction of mx1.example.org "
                            "at or before 2026-01-01T00:00:00")


def test_server_tool_for_reads_the_clients_passphrase_without_cache():
    tool = backup_server.tool_for({"tool": "borg"}, {**CLIENT, "repository": BORG_PATH})
    assert isinstance(tool, Borg) and tool.location == BORG_PATH and not tool.repo.cache
    assert tool.passphrase == "/etc/mailstack-backup/mx1.example.org.passphrase"


@pytest.mark.parametrize("argv, command, client", [
    (["prune"], "prune", None), (["check"], "check", None),
    (["snapshots", "mx1"], "snapshots", "mx1"), (["files", "mx1"], "files", "mx1"),
    (["status"], "status", None), (["accept", "mx1"], "accept", "mx1"),
    (["forget", "mx1", "1a2b"], "forget", "mx1")])
def test_server_commands(argv, command, client):
    args = backup_server.parser().parse_args(argv)
    assert args.command == command and getattr(args, "client", None) == client
    assert args.func is getattr(backup_server, command)


def test_server_forget_takes_a_client_and_ids():
    args = backup_server.parser().parse_args(["forget", "mx1", "1a2b", "3c4d"])
    assert (args.client, args.ids, args.func) == ("mx1", ["1a2b", "3c4d"], backup_server.forget)


def test_server_rollback_takes_client_and_to():
    args = backup_server.parser().parse_args(["rollback", "mx1", "--to", "2026-11-30T10:00:00Z"])
    assert (args.client, args.to, args.func) == ("mx1", "2026-11-30T10:00:00Z", backup_server.rollback)


@pytest.mark.parametrize("argv", [[], ["snapshots"], ["files"], ["rollback", "mx1"],
                                  ["rollback", "--to", "2026-11-30"], ["prune", "mx1"],
                                  ["restore"], ["check", "--to", "x"], ["forget"], ["forget", "mx1"]])
def test_server_bad_invocations_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        backup_server.parser().parse_args(argv)
    assert e.value.code == 2
    assert "usage: mailstack-backup-server" in capsys.readouterr().err


def test_merge_maildir_into_a_mailbox_that_lost_everything_names_inbox(mailboxes, tmp_path):
    saved, _ = mailboxes
    _, folders = merge(saved, tmp_path / "gone" / "Maildir")
    assert folders == ["INBOX", "Archive", "Sent"]


def test_server_commands_print_only_their_own_output_while_the_tool_talks(tmp_path, monkeypatch,
                                                                          capsys):
    """The tools' own chatter goes to the journal (stderr): `snapshots` prints JSON
    alone, which the operator's scripts and the lab read."""
    import subprocess as sp
    from mailstack.host import backup_server
    chatter = json.dumps([{"short_id": "ab12", "id": "ab12ff", "time": "2026-11-30T10:00:00Z"}])
    monkeypatch.setattr(backup_server, "run_tool",
                        lambda argv, env, cwd=None: sp.CompletedProcess(argv, 0, chatter, "a warning\n"))
    monkeypatch.setattr(backup_server.subprocess, "run", lambda *a, **k: sp.CompletedProcess(a, 0))
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps({"tool": "restic", "keep": {"daily": 7}, "host": "bk", "postmaster": "p@x",
                                   "clients": [{"host": "mx1", "user": "bk-mx1", "repository": "/r/mx1/restic"}]}))
    backup_server.main(["snapshots", "mx1"], settings_file=str(clients))
    out = capsys.readouterr()
    assert json.loads(out.out) == [{"id": "ab12", "time": "2026-11-30T10:00:00Z"}]
    assert "a warning" in out.err


def test_borg_rollback_makes_this_hosts_borg_forget_the_newer_manifest(borg_repo, tmp_path,
                                                                      monkeypatch):
    from mailstack.host import backup_tools
    monkeypatch.setattr(backup_tools, "STATE", str(tmp_path / "state"))
    security = tmp_path / "state" / "borg" / ".config" / "borg" / "security" / "5ca1ab1e"
    cache = tmp_path / "state" / "borg" / ".cache" / "borg" / "5ca1ab1e"
    other = tmp_path / "state" / "borg" / ".config" / "borg" / "security" / "0ther"
    for d in (security, cache, other):
        d.mkdir(parents=True)
    tool = Borg(Repository("mx1.example.org", path=str(borg_repo), cache=False), PASS, run=Fake())
    tool.rollback(datetime.datetime(2026, 11, 30, 10, 30))
    assert not security.exists() and not cache.exists() and other.exists()


def test_a_prune_on_the_backup_host_is_logged_as_a_transaction_a_rollback_keeps(borg_repo):
    """Borg logs only append-only (client) commits; the backup host's own compaction
    moves live data to new segments, so its commit goes in the log too."""
    (borg_repo / "data" / "0" / "7").write_text("compacted")
    tool = Borg(Repository("mx1.example.org", path=str(borg_repo), cache=False), PASS,
                run=Fake())
    tool.forget(["old"])
    last = (borg_repo / "transactions").read_text().splitlines()[-1]
    assert last.startswith("transaction 7, UTC time ")
    limit = datetime.datetime.fromisoformat(last.split("UTC time ")[1])
    assert tool.rollback(limit)[0] == 7
    assert (borg_repo / "data" / "0" / "7").exists()


def test_borg_archive_written_with_remarks_is_a_backup_and_the_remarks_are_said(capsys):
    changed = "/var/lib/rspamd/rspamd.rrd: file changed while we backed it up\n"
    tool, fake = borg(over_ssh(BORG_PATH), (1, "", changed))
    tool.backup("mx1.example.org", ["/var/vmail"])
    assert fake.argvs[0][:2] == ["borg", "create"]
    assert capsys.readouterr().err == (
        "mailstack-backup: bk.example.org: archive written; borg: " + changed)


def test_borg_backup_error_is_a_failure():
    tool, fake = borg(over_ssh(BORG_PATH), (2, "", "Remote: ssh: connect to host: Connection refused\n"))
    with pytest.raises(Failure, match=r"^bk.example.org: Remote: ssh: connect to host: Connection refused$"):
        tool.backup("mx1.example.org", ["/var/vmail"])


def test_a_restore_onto_another_release_keeps_the_configuration_and_brings_every_state_path():
    from mailstack.backup import BY_ROLE, COMMON
    from mailstack.host.backup import rendered_by_deploy
    every = set(COMMON) | {p for paths in BY_ROLE.values() for p in paths}
    kept = {p for p in every if rendered_by_deploy(p)}
    assert kept == {"/etc/dovecot", "/etc/postfix", "/etc/rspamd", "/etc/nginx", "/etc/roundcube", "/etc/knot"}
    # Mail, DKIM keys, certificates, DNS zones, mailstack's own state, the databases.
    assert every - kept == {"/var/vmail", "/var/lib/rspamd", "/etc/letsencrypt", "/var/lib/knot",
                            "/var/lib/mailstack", COMMON[2]}

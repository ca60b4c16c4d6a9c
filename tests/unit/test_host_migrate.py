"""mailstack-migrate on the primary: the job it accepts, the Dovecot configuration and
doveadm command lines it makes for Debian 12 (Dovecot 2.3) and 13 (2.4), what it reads
from doveadm, the folder-by-folder comparison, and where passwords go (a 0600 file
for doveadm -c, removed after use; never an argument, never the status)."""
import collections
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest

from mailstack.host import migrate
from mailstack.host.migrate import (AUTO_MAILBOXES, JobError, Run, check_job, compare, config_string,
                                    config_version, fetch_command, imapc_config, parse_fetch,
                                    parse_status, rows_ok, status_command, sync_command)

ROOT = Path(__file__).resolve().parents[2]
# Every character Dovecot's configuration reader or its %{} expansion treats specially.
NASTY = 'p"w\\ #x %{user} $ENV:X 50% ü %%{y}'


def job(**changes):
    base = {"id": "0af3", "host": "imap.oldprovider.test", "port": 993, "mailboxes": [
        {"old": "peter@initech.test", "new": "peter@initech.test", "password": NASTY},
        {"old": "milton", "new": "milton@initech.test", "password": "stapler"}]}
    return {**base, **changes}


def test_a_good_job_is_accepted():
    assert check_job(job()) == job()


@pytest.mark.parametrize("changes, error", [
    ({"host": "Imap.Old.test"}, "host: 'Imap.Old.test' is not a host name"),
    ({"host": "10.0.0.1"}, "host: '10.0.0.1' is not a host name"),
    ({"host": "imap.old.test; reboot"}, "is not a host name"),
    ({"port": 0}, "port: 0 is not a port"),
    ({"port": "993"}, "port: '993' is not a port"),
    ({"mailboxes": []}, "mailboxes: none given"),
    ({"id": "../x"}, "id: '../x' is not a run id"),
    ({"extra": 1}, "unknown field 'extra'"),
    ({"mailboxes": [{"old": "a b", "new": "a@b.test", "password": "x"}]},
     "mailboxes[0].old: 'a b' is not a login mailstack accepts"),
    ({"mailboxes": [{"old": "%u", "new": "a@b.test", "password": "x"}]}, "is not a login"),
    ({"mailboxes": [{"old": 'a"b', "new": "a@b.test", "password": "x"}]}, "is not a login"),
    ({"mailboxes": [{"old": "a", "new": "A@b.test", "password": "x"}]},
     "mailboxes[0].new: 'A@b.test' is not an address"),
    ({"mailboxes": [{"old": "a", "new": "a@b.test", "password": "x"},
                    {"old": "b", "new": "a@b.test", "password": "y"}]},
     "mailboxes[1].new: a@b.test is named twice"),
    ({"mailboxes": [{"old": "a", "new": "a@b.test", "password": "secret\nline"}]},
     "mailboxes[0].password (of a) holds a control character"),
    ({"mailboxes": [{"old": "a", "new": "a@b.test", "password": ""}]}, "is empty or not text"),
    ({"mailboxes": [{"old": "a", "new": "a@b.test"}]}, "needs exactly old, new and password"),
])
def test_a_bad_job_is_refused_by_name_never_showing_a_password(changes, error):
    with pytest.raises(JobError) as e:
        check_job(job(**changes))
    assert error in str(e.value)
    assert "secret" not in str(e.value) and NASTY not in str(e.value)


# --- the configuration doveadm reads (-c) ---

def test_config_strings_read_back_as_the_password_on_both_releases():
    # What doveconf 2.3.19.1 and 2.4.1 (Debian's) gave back for these lines: 2.3 read
    # the value as is; 2.4 expanded it at run time (shown by `doveadm mailbox path`
    # with the same value as mail_path) to the same text.
    assert config_string(NASTY, "2.3") == r'"p\"w\\ #x %{user} $ENV:X 50% ü %%{y}"'
    assert config_string(NASTY, "2.4") == r'"p\"w\\ #x %%{user} $ENV:X 50% ü %%%{y}"'
    for dovecot in ("2.3", "2.4"):
        assert dovecot_reads(config_string(NASTY, dovecot), dovecot) == NASTY


def dovecot_reads(quoted, dovecot):
    """What Dovecot makes of a double-quoted value: str_unescape() (both releases),
    then on 2.4 the %{} expansion of a value without variables (var-expand-lexer.l:
    "%%{" is a literal "%{", a lone "%" stays)."""
    assert quoted[0] == quoted[-1] == '"'
    value = re.sub(r"\\(.)", r"\1", quoted[1:-1])
    if dovecot == "2.4":
        assert not re.search(r"(?<!%)%\{", value.replace("%%{", "")), "a %{variable} would expand"
        value = value.replace("%%{", "%{")
    return value


@pytest.mark.parametrize("dovecot", ["2.3", "2.4"])
def test_the_mailbox_configuration_adds_the_old_server_to_the_hosts_own(dovecot):
    text = imapc_config("imap.oldprovider.test", 993, "milton", NASTY, dovecot, "2.4.1")
    lines = text.splitlines()
    settings = [line for line in lines if line and not line.startswith("#")]
    if dovecot == "2.4":
        # 2.4 refuses a file whose first setting is not its version, even an !include.
        assert settings[:2] == ["dovecot_config_version = 2.4.1", "!include /etc/dovecot/dovecot.conf"]
        assert "ssl_client_require_valid_cert = yes" in lines
    else:
        assert settings[0] == "!include /etc/dovecot/dovecot.conf"
        assert "imapc_ssl_verify = yes" in lines
        assert "imapc_features = rfc822.size fetch-headers" in lines
    assert {"imapc_host = imap.oldprovider.test", "imapc_port = 993", "imapc_ssl = imaps",
            'imapc_user = "milton"', "ssl_client_ca_dir = /etc/ssl/certs"} <= set(lines)
    assert f"imapc_password = {config_string(NASTY, dovecot)}" in lines
    assert not re.search(r"verify\s*=\s*no|require_valid_cert\s*=\s*no", text)
    # The folders mailstack makes for everyone are not made at the old server.
    for name in AUTO_MAILBOXES:
        assert f"  mailbox {name} {{\n    auto = no\n  }}" in text


@pytest.mark.parametrize("template", ["dovecot.conf.j2", "dovecot.conf.bookworm.j2"])
def test_the_folders_left_alone_are_those_the_dovecot_template_makes(template):
    text = (ROOT / "templates" / "dovecot" / "etc" / "dovecot" / template).read_text()
    made = re.findall(r"mailbox (\w+) \{\n\s+special_use = [^\n]+\n\s+auto = subscribe", text)
    assert tuple(made) == AUTO_MAILBOXES


def test_the_config_version_is_the_hosts_own():
    assert config_version("# mailstack\ndovecot_config_version = 2.4.1\ndovecot_storage_version = 2.3.0\n") == "2.4.1"
    with pytest.raises(ValueError):
        config_version("protocols = imap\n")


def test_commands_copy_one_way_into_this_host_and_count_on_either_side():
    conf = "/run/mailstack-migrate/0.conf"
    assert sync_command(conf, "peter@initech.test") == [
        "doveadm", "-c", conf, "sync", "-1", "-R", "-u", "peter@initech.test", "imapc:"]
    assert status_command("peter@initech.test") == [
        "doveadm", "-f", "tab", "mailbox", "status", "-u", "peter@initech.test", "messages", "*"]
    assert status_command("p@i.test", conf, "2.3")[:5] == ["doveadm", "-c", conf, "-o", "mail_location=imapc:"]
    assert status_command("p@i.test", conf, "2.4")[:7] == [
        "doveadm", "-c", conf, "-o", "mail_driver=imapc", "-o", "mail_path="]
    assert fetch_command("p@i.test")[-3:] == ["p@i.test", "mailbox date.received.unixtime size.virtual", "ALL"]


# --- what doveadm says (Debian 12's and 13's give the same tab output) ---

STATUS = "mailbox\tmessages\nBücher & Co/2019\t1\nArchive/2019\t1\nINBOX\t5\n.EXPUNGED/INBOX\t2\n"
FETCH = ("mailbox\tdate.received.unixtime\tsize.virtual\n"
         "Archive/2019\t1796207973\t52\nINBOX\t1796207973\t51\nINBOX\t1796207973\t51\n"
         "INBOX\t1796207991\t58\n.EXPUNGED/INBOX\t1\t1\n")


def test_status_and_fetch_output_is_read_per_folder_without_expunged_mail():
    assert parse_status(STATUS) == {"Bücher & Co/2019": 1, "Archive/2019": 1, "INBOX": 5}
    assert parse_status("") == {}
    assert parse_status("mailbox\tmessages\n") == {}
    assert parse_fetch(FETCH) == {
        "Archive/2019": collections.Counter({(1796207973, 52): 1}),
        "INBOX": collections.Counter({(1796207973, 51): 2, (1796207991, 58): 1})}
    with pytest.raises(ValueError):
        parse_status("doveadm: Error: something\n")


def c(*keys):
    return collections.Counter(keys)


def test_the_comparison_tells_missing_duplicated_and_mail_that_arrived_here():
    old = {"INBOX": c(1, 2, 3), "Archive": c(4, 4), "Empty": c()}
    same = compare(old, {"INBOX": c(1, 2, 3), "Archive": c(4, 4), "Drafts": c()})
    assert [r["folder"] for r in same] == ["INBOX", "Archive"]       # INBOX first; empty folders no row
    assert rows_ok(same) and all(r["old"] == r["new"] for r in same)
    differs = compare(old, {"INBOX": c(1, 2, 9, 9), "Archive": c(4, 4, 4)})
    inbox, archive = differs
    assert (inbox["missing"], inbox["duplicated"], inbox["new_here"]) == (1, 0, 2)
    assert (archive["missing"], archive["duplicated"], archive["new_here"]) == (0, 1, 0)
    assert not rows_ok(differs)
    # After the MX switch: new mail here only is fine.
    assert rows_ok(compare({"INBOX": c(1)}, {"INBOX": c(1, 7), "Sent": c(8)}))


# --- a run, with doveadm and systemd stood in for ---

class FakeHost:
    """doveadm as the run calls it: answers by command, records every argv."""

    def __init__(self, old_status="mailbox\tmessages\nINBOX\t2\nWork/2019\t1\n",
                 sync_rc=(0,), sync_err="", after="mailbox\tmessages\nINBOX\t2\nWork/2019\t1\n"):
        self.argv, self.synced = [], 0
        self.old_status, self.after, self.sync_rc, self.sync_err = old_status, after, list(sync_rc), sync_err
        self.fetch = "mailbox\tdate.received.unixtime\tsize.virtual\nINBOX\t1\t10\nINBOX\t2\t20\nWork/2019\t3\t30\n"

    def run(self, argv, **kwargs):
        self.argv.append(argv)
        out = ""
        if argv[1] == "user":
            out = "field\tvalue\nuid\t5000\n"
        elif "status" in argv:
            out = self.old_status if "-c" in argv else (self.after if self.synced else "mailbox\tmessages\n")
        elif "fetch" in argv:
            here = self.synced and self.after.count("\n") > 1
            out = self.fetch if ("-c" in argv or here) else "mailbox\tdate.received.unixtime\tsize.virtual\n"
        return type("R", (), {"returncode": 0, "stdout": out, "stderr": ""})()

    def popen(self, argv, stdout=None, stderr=None):
        self.argv.append(argv)
        self.synced += 1
        stderr.write(self.sync_err)
        rc = self.sync_rc.pop(0) if self.sync_rc else 0
        polls = iter([None, None, rc])
        return type("P", (), {"poll": lambda s: next(polls, rc), "returncode": rc})()


@pytest.fixture
def where(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    return tmp_path / "status.json", run_dir


def migration(where, host, dovecot="2.4"):
    status, run_dir = where
    seen_conf = []

    def sleep(_):
        for p in run_dir.glob("*.conf"):
            seen_conf.append((p.read_text(), stat.S_IMODE(p.stat().st_mode)))

    ticks = iter(range(0, 10_000))            # one second per look at the clock
    return Run(job(), dovecot, "2.4.1", run=host.run, popen=host.popen, sleep=sleep,
               clock=lambda: next(ticks), status_path=str(status), run_dir=str(run_dir)), seen_conf


def test_a_run_copies_each_mailbox_and_keeps_the_password_out_of_argv_and_status(where):
    host = FakeHost()
    run, seen_conf = migration(where, host)
    run.all()
    status = json.loads(where[0].read_text())
    assert status["state"] == "finished" and status["id"] == "0af3"
    peter = status["mailboxes"][0]
    assert (peter["state"], peter["total"], peter["before"], peter["copied"]) == ("done", 3, 0, 3)
    assert [r["folder"] for r in peter["folders"]] == ["INBOX", "Work/2019"]
    # The password reached doveadm only through its -c file, 0600, gone afterwards.
    assert seen_conf and all(mode == 0o600 for _, mode in seen_conf)
    assert any(config_string(NASTY, "2.4") in text for text, _ in seen_conf)
    assert list(where[1].iterdir()) == []
    for argv in host.argv:
        assert not any(NASTY in a or "stapler" in a for a in argv), argv
    assert NASTY not in where[0].read_text() and "stapler" not in where[0].read_text()
    assert stat.S_IMODE(os.stat(where[0]).st_mode) == 0o600
    # While dsync ran, this side's count was read for the progress bar (no -c: here).
    assert host.argv.count(status_command("peter@initech.test")) >= 3      # before, during, after
    syncs = [a for a in host.argv if "sync" in a]
    assert syncs == [sync_command(str(where[1] / "0.conf"), "peter@initech.test"),
                     sync_command(str(where[1] / "1.conf"), "milton@initech.test")]


def test_changes_during_the_copy_make_it_run_once_more(where):
    host = FakeHost(sync_rc=(2, 0, 0))
    run, _ = migration(where, host)
    run.all()
    status = json.loads(where[0].read_text())
    assert [b["state"] for b in status["mailboxes"]] == ["done", "done"]
    assert len([a for a in host.argv if "sync" in a]) == 3


def test_a_failed_copy_says_why_without_the_password(where):
    host = FakeHost(sync_rc=(75, 0), sync_err=f"dsync: Error: imapc: LOGIN as peter with {NASTY} refused\n",
                    after="mailbox\tmessages\n")
    run, _ = migration(where, host)
    run.all()
    peter, milton = json.loads(where[0].read_text())["mailboxes"]
    assert peter["state"] == "failed" and "LOGIN as peter with ******** refused" in peter["error"]
    assert NASTY not in where[0].read_text()
    assert milton["state"] == "differs"       # nothing arrived: three messages missing
    assert sum(r["missing"] for r in milton["folders"]) == 3


def test_a_mailbox_not_deployed_yet_fails_alone(where):
    host = FakeHost()
    real = host.run

    def run(argv, **kwargs):
        if argv[1] == "user" and argv[2] == "peter@initech.test":
            return type("R", (), {"returncode": 67, "stdout": "", "stderr": "no such user"})()
        return real(argv, **kwargs)

    host.run = run
    r, _ = migration(where, host)
    r.all()
    peter, milton = json.loads(where[0].read_text())["mailboxes"]
    assert peter["state"] == "failed" and "deploy the data first" in peter["error"]
    assert milton["state"] == "done"


# --- start and follow ---

class Systemd:
    def __init__(self, active=False):
        self.active, self.argv = active, []

    def __call__(self, argv, **kwargs):
        self.argv.append(argv)
        rc = 0 if argv[:2] != ["systemctl", "is-active"] else (0 if self.active else 3)
        return type("R", (), {"returncode": rc})()


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setattr(migrate, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(migrate, "JOB", str(tmp_path / "run" / "job.json"))
    monkeypatch.setattr(migrate, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(migrate, "STATUS", str(tmp_path / "state" / "status.json"))
    return tmp_path


def test_start_keeps_the_job_root_only_and_runs_it_as_a_unit(paths, capsys):
    systemd = Systemd()
    (paths / "run").mkdir()
    (paths / "run" / "3.conf").write_text("left by a run that died")
    assert migrate.start(io.StringIO(json.dumps(job())), run=systemd) == 0
    assert json.loads(capsys.readouterr().out) == {"started": json.loads((paths / "state" / "status.json").read_text())["run"]}
    assert stat.S_IMODE((paths / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((paths / "run" / "job.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in (paths / "run").iterdir()) == ["job.json"]
    assert systemd.argv[-1] == ["systemd-run", "--unit=mailstack-migrate", "--collect", "--quiet",
                                "--property=Type=exec", "/usr/local/sbin/mailstack-migrate", "run"]
    assert all(NASTY not in a for argv in systemd.argv for a in argv)


def test_start_leaves_a_run_under_way_alone(paths, capsys):
    systemd = Systemd(active=True)
    assert migrate.start(io.StringIO(json.dumps(job())), run=systemd) == 0
    assert "running" in json.loads(capsys.readouterr().out)
    assert not (paths / "run" / "job.json").exists()
    assert not any(a[0] == "systemd-run" for a in systemd.argv)


def test_start_refuses_a_bad_job_without_echoing_it(paths, capsys):
    bad = job(mailboxes=[{"old": "a", "new": "a@b.test", "password": "x\ny"}])
    assert migrate.start(io.StringIO(json.dumps(bad)), run=Systemd()) == 2
    err = capsys.readouterr().err
    assert "holds a control character" in err and "x\ny" not in err


def test_follow_prints_each_change_and_ends_with_the_run(paths):
    (paths / "state").mkdir()
    migrate.write_json(migrate.STATUS, {"state": "running", "run": "t"})
    states = iter([("running", True), ("running", True), ("finished", False)])
    out = io.StringIO()

    def systemd(argv, **kwargs):
        state, active = next(states)
        migrate.write_json(migrate.STATUS, {"state": state, "run": "t"})
        return type("R", (), {"returncode": 0 if active else 3})()

    assert migrate.follow(out=out, sleep=lambda s: None, run=systemd) == 0
    assert [json.loads(line)["state"] for line in out.getvalue().splitlines()] == ["running", "finished"]


def test_follow_reports_a_run_that_died_as_stopped(paths):
    (paths / "state").mkdir()
    migrate.write_json(migrate.STATUS, {"state": "running", "run": "t"})
    out = io.StringIO()
    migrate.follow(out=out, sleep=lambda s: None, run=Systemd(active=False))
    assert json.loads(out.getvalue())["state"] == "stopped"

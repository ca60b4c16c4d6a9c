"""mailstack migrate on the operator's side: the old server's URL, the map and its
credentials file (checked against the model before any host is touched, refused
when others can read the passwords), what is handed to pyinfra (no password on any
command line), the progress read from the primary, the table and the exit code."""
import io
import json
import os
import types

import pytest

from mailstack import migrate
from mailstack.migrate import (Entry, MapError, Progress, Source, load_map, parse_source, report,
                               result, statuses, table)

PASSWORDS = {"peter@initech.test": 'p"w\\ #x %{user}', "milton": "stapler"}


def system(*addresses):
    return types.SimpleNamespace(
        name="lab", mailboxes=[types.SimpleNamespace(address=a) for a in addresses],
        primary_mx=types.SimpleNamespace(fqdn="mx1.acme.test"))


SYSTEM = system("peter@initech.test", "milton@initech.test", "alice@acme.test")


def write_map(tmp_path, mailboxes=None, credentials="old-passwords.yml", passwords=None, mode=0o600,
              extra=""):
    creds = tmp_path / "old-passwords.yml"
    creds.write_text(json.dumps(PASSWORDS if passwords is None else passwords))
    creds.chmod(mode)
    mailboxes = mailboxes if mailboxes is not None else [
        {"old": "peter@initech.test", "new": "peter@initech.test"},
        {"old": "milton", "new": "milton@initech.test"}]
    path = tmp_path / "initech.yml"
    path.write_text(json.dumps({"credentials": credentials, "mailboxes": mailboxes}) + extra)
    return path


@pytest.mark.parametrize("url, source", [
    ("imaps://imap.oldprovider.test", Source("imap.oldprovider.test", 993)),
    ("imaps://imap.oldprovider.test/", Source("imap.oldprovider.test", 993)),
    ("imaps://imap.oldprovider.test:10993", Source("imap.oldprovider.test", 10993)),
])
def test_the_old_server_is_an_imaps_url(url, source):
    assert parse_source(url) == source
    assert str(source).startswith("imaps://imap.oldprovider.test")


@pytest.mark.parametrize("url, error", [
    ("imap://imap.oldprovider.test", "use imaps://HOST[:PORT]"),
    ("imap.oldprovider.test", "use imaps://HOST[:PORT]"),
    ("imaps://peter:secret@imap.oldprovider.test", "no login in the URL"),
    ("imaps://imap.oldprovider.test/INBOX", "only imaps://HOST[:PORT]"),
    ("imaps://IMAP.oldprovider.test", "is not a host name"),
    ("imaps://10.66.0.22", "is not a host name"),
    ("imaps://imap.oldprovider.test:99999", "not a port"),
    ("imaps://imap.old$(reboot).test", "is not a host name"),
])
def test_other_urls_are_refused(url, error):
    with pytest.raises(MapError) as e:
        parse_source(url)
    assert error in str(e.value)


def test_a_map_gives_each_old_login_its_new_mailbox_and_password(tmp_path):
    entries = load_map(write_map(tmp_path), SYSTEM)
    assert entries == [Entry("peter@initech.test", "peter@initech.test", PASSWORDS["peter@initech.test"]),
                       Entry("milton", "milton@initech.test", "stapler")]
    assert "stapler" not in repr(entries)


def test_the_credentials_file_may_be_elsewhere(tmp_path):
    elsewhere = tmp_path / "secrets"
    elsewhere.mkdir()
    path = write_map(tmp_path, credentials=str(elsewhere / "old.yml"))
    (tmp_path / "old-passwords.yml").rename(elsewhere / "old.yml")
    assert len(load_map(path, SYSTEM)) == 2


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_credentials_others_can_read_are_refused_naming_the_file(tmp_path, mode):
    path = write_map(tmp_path, mode=mode)
    with pytest.raises(MapError) as e:
        load_map(path, SYSTEM)
    creds = tmp_path / "old-passwords.yml"
    assert str(e.value) == (f"credentials {creds}: readable by others (mode {mode:04o}); it holds "
                            f"passwords: chmod 600 {creds}")


def test_credentials_of_another_user_are_refused(tmp_path, monkeypatch):
    path = write_map(tmp_path)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(path).st_uid + 1)
    with pytest.raises(MapError, match="not by you"):
        load_map(path, SYSTEM)


@pytest.mark.parametrize("mailboxes, error", [
    ([{"old": "peter", "new": "nobody@initech.test"}],
     "mailboxes[0].new: nobody@initech.test is not a mailbox of lab: add it to the data"),
    ([{"old": "peter", "new": "Peter@initech.test"}], "mailboxes[0].new: 'Peter@initech.test' is not an address"),
    ([{"old": "peter", "new": "peter"}], "is not an address"),
    ([{"old": "pe ter", "new": "peter@initech.test"}], "mailboxes[0].old: 'pe ter' is not a login"),
    ([{"old": "%u", "new": "peter@initech.test"}], "is not a login"),
    ([{"old": "peter;reboot", "new": "peter@initech.test"}], "is not a login"),
    ([{"old": "milton", "new": "milton@initech.test"}, {"old": "milton", "new": "peter@initech.test"}],
     "mailboxes[1].old: milton is named twice"),
    ([{"old": "milton", "new": "milton@initech.test"}, {"old": "m2", "new": "milton@initech.test"}],
     "mailboxes[1].new: milton@initech.test is named twice"),
    ([{"old": "milton"}], "needs exactly old (the login there) and new (the address here)"),
    ([{"old": "milton", "new": "milton@initech.test", "password": "x"}], "needs exactly old"),
    ([], "mailboxes: a list of"),
])
def test_bad_entries_are_refused_by_position(tmp_path, mailboxes, error):
    with pytest.raises(MapError) as e:
        load_map(write_map(tmp_path, mailboxes), SYSTEM)
    assert error in str(e.value)
    assert str(e.value).startswith(f"map {tmp_path / 'initech.yml'}: ")


def test_unknown_map_keys_are_refused(tmp_path):
    path = tmp_path / "map.yml"
    path.write_text("credentials: c.yml\nmailbox: []\n")
    with pytest.raises(MapError, match="unknown key 'mailbox'"):
        load_map(path, SYSTEM)


@pytest.mark.parametrize("passwords, error", [
    ({"peter@initech.test": "x"}, "no password for 'milton'"),
    ({**PASSWORDS, "milton": 12345}, "'milton': the password is not text (quote it)"),
    ({**PASSWORDS, "milton": "sta\npler"}, "'milton': the password holds a control character"),
    ({**PASSWORDS, "milton": ""}, "'milton': the password is empty"),
])
def test_bad_passwords_are_refused_without_being_shown(tmp_path, passwords, error):
    with pytest.raises(MapError) as e:
        load_map(write_map(tmp_path, passwords=passwords), SYSTEM)
    assert error in str(e.value)
    assert "sta\npler" not in str(e.value) and "12345" not in str(e.value)


def test_a_credentials_file_that_is_no_yaml_is_refused_without_quoting_it(tmp_path):
    path = write_map(tmp_path)
    creds = tmp_path / "old-passwords.yml"
    creds.write_text("milton: 'stapler\npeter: [unclosed\n")
    with pytest.raises(MapError) as e:
        load_map(path, SYSTEM)
    assert "not a YAML mapping" in str(e.value) and "stapler" not in str(e.value)


# --- what is handed to the primary ---

def test_the_job_is_made_again_in_the_deploy_from_the_map_alone(tmp_path, monkeypatch):
    path = write_map(tmp_path)
    monkeypatch.setenv(migrate.ENVIRONMENT, json.dumps({"map": str(path), "from": "imaps://imap.oldprovider.test",
                                                        "id": "ab12"}))
    job = json.loads(migrate.job_text_from_environment(SYSTEM))
    assert job == {"id": "ab12", "host": "imap.oldprovider.test", "port": 993, "mailboxes": [
        {"old": "peter@initech.test", "new": "peter@initech.test", "password": PASSWORDS["peter@initech.test"]},
        {"old": "milton", "new": "milton@initech.test", "password": "stapler"}]}
    from mailstack.host.migrate import check_job
    assert check_job(job) == job


def test_no_password_is_on_a_command_line_or_in_the_environment(tmp_path):
    path = write_map(tmp_path)
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs["env"][migrate.ENVIRONMENT]))
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")

    def popen(argv, **kwargs):
        calls.append((argv, ""))
        return types.SimpleNamespace(stdout=iter([
            '[mx1.acme.test] {"state": "finished", "id": "x", "mailboxes": []}\n']), wait=lambda: 0)

    migrate.start("inventory/lab.py", "mx1.acme.test", {"map": str(path), "from": "imaps://x.test", "id": "1"},
                  run=run)
    migrate.follow("inventory/lab.py", "mx1.acme.test", Progress(io.StringIO()), popen=popen)
    for argv, env in calls:
        for password in PASSWORDS.values():
            assert not any(password in a for a in argv) and password not in env
    assert calls[0][0][-1] == str(migrate.START_DEPLOY)
    assert calls[1][0][-3:] == ["exec", "--", "/usr/local/sbin/mailstack-migrate follow"]


def test_statuses_are_read_from_pyinfra_exec_output():
    lines = ["--> Loading config...", "\x1b[1m[mx1.acme.test]\x1b[0m {\"state\": \"running\"}",
             "[mx2.acme.test] {\"state\": \"x\"}", "[mx1.acme.test] Success", "[mx1.acme.test] {broken",
             '[mx1.acme.test] {"state": "finished"}']
    assert [s["state"] for s in statuses(lines, "mx1.acme.test")] == ["running", "finished"]


# --- progress, table, exit code ---

def box(new, state, **kw):
    return {"old": new.split("@")[0], "new": new, "state": state, **kw}


ROWS_OK = [{"folder": "INBOX", "old": 512, "new": 512, "missing": 0, "duplicated": 0, "new_here": 0},
           {"folder": "Archive/2019", "old": 3, "new": 3, "missing": 0, "duplicated": 0, "new_here": 0}]


def finished(*boxes, id="r1"):
    return {"run": "2026-12-02T10:00:00+00:00", "id": id, "state": "finished",
            "server": "imap.oldprovider.test:993", "mailboxes": list(boxes)}


def test_progress_lines_in_a_log_say_start_quarters_and_end():
    out = io.StringIO()
    p = Progress(out, tty=False)
    p.update({"mailboxes": [box("peter@initech.test", "counting")]})
    for now in (0, 100, 260, 390, 515):
        p.update({"mailboxes": [box("peter@initech.test", "copying", total=515, before=0, now=now)]})
    p.update({"mailboxes": [box("peter@initech.test", "done", total=515, before=0, now=515, copied=515,
                                seconds=5.0, folders=ROWS_OK)]})
    assert out.getvalue().splitlines() == [
        "peter@initech.test: 515 message(s) at the old server (peter), 0 here already",
        "peter@initech.test: 260/515",
        "peter@initech.test: 390/515",
        "peter@initech.test: 515 message(s) copied in 5.0 s (103.0 messages/s); 515 at the old server, 515 here"]


def test_progress_on_a_terminal_is_a_bar():
    out = io.StringIO()
    Progress(out, tty=True, width=10).update(
        {"mailboxes": [box("peter@initech.test", "copying", total=200, before=0, now=100)]})
    assert "peter@initech.test [#####.....] 100/200" in out.getvalue()


def test_the_table_shows_old_and_new_per_folder_and_the_run_is_ok():
    status = finished(box("peter@initech.test", "done", copied=515, seconds=5.0, folders=ROWS_OK),
                      box("milton@initech.test", "done", copied=0, seconds=0.4, folders=[
                          {"folder": "INBOX", "old": 2, "new": 3, "missing": 0, "duplicated": 0, "new_here": 1}]))
    assert table(status).splitlines() == [
        "mailbox              folder        old  new",
        "peter@initech.test   INBOX         512  512  ok",
        "                     Archive/2019    3    3  ok",
        "milton@initech.test  INBOX           2    3  ok, 1 new here"]
    outcome = result(status)
    assert (outcome["ok"], outcome["copied"], outcome["seconds"], outcome["messages_per_second"]) == \
        (True, 515, 5.4, 95.4)
    assert "515 message(s) copied in 5.4 s, 95.4 messages/s" in report(status)


def test_a_difference_or_a_failure_is_not_ok():
    differs = finished(box("peter@initech.test", "differs", copied=1, seconds=1.0, folders=[
        {"folder": "INBOX", "old": 3, "new": 3, "missing": 1, "duplicated": 1, "new_here": 0}]))
    assert "DIFFERS: 1 missing, 1 duplicated" in table(differs)
    assert not result(differs)["ok"]
    failed = finished(box("peter@initech.test", "failed", error="Authentication failed"))
    assert "FAILED: Authentication failed" in table(failed)
    assert not result(failed)["ok"]
    assert "NOT everything matches" in report(failed)


def run_migrate(tmp_path, status, map_path=None, **kw):
    started = []
    out = io.StringIO()
    code = migrate.migrate(
        "inventory/lab.py", SYSTEM, "imaps://imap.oldprovider.test", str(map_path or write_map(tmp_path)),
        out=out, start_=lambda inv, fqdn, request: started.append(request),
        follow_=lambda inv, fqdn, progress: status(started[0]["id"]) if callable(status) else status,
        progress=Progress(io.StringIO(), tty=False), **kw)
    return code, out.getvalue(), started


def test_migrate_exits_0_when_everything_matches_and_1_when_not(tmp_path):
    ok = lambda run_id: finished(box("peter@initech.test", "done", copied=3, seconds=1.0, folders=ROWS_OK), id=run_id)
    code, out, started = run_migrate(tmp_path, ok)
    assert code == 0 and "every folder matches" in out
    assert started[0]["map"].endswith("initech.yml") and started[0]["from"] == "imaps://imap.oldprovider.test"
    bad = lambda run_id: finished(box("peter@initech.test", "failed", error="x"), id=run_id)
    assert run_migrate(tmp_path, bad)[0] == 1
    # Another run was under way on the primary: it is shown, and this one did not run.
    assert run_migrate(tmp_path, ok("someone-else"))[0] == 1


def test_migrate_json_is_the_result(tmp_path):
    ok = lambda run_id: finished(box("peter@initech.test", "done", copied=3, seconds=1.5, folders=ROWS_OK), id=run_id)
    code, out, _ = run_migrate(tmp_path, ok, as_json=True)
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["messages_per_second"] == 2.0
    assert data["mailboxes"][0]["folders"] == ROWS_OK


def test_a_bad_map_stops_before_any_host_is_touched(tmp_path):
    path = write_map(tmp_path, [{"old": "peter", "new": "nobody@initech.test"}])
    with pytest.raises(SystemExit) as e:
        run_migrate(tmp_path, None, map_path=path)
    assert "is not a mailbox of lab" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        migrate.migrate("inventory/lab.py", SYSTEM, "imap://x.test", str(write_map(tmp_path)),
                        start_=lambda *a: pytest.fail("a host was contacted"))
    assert "use imaps://" in str(e.value.code)


def test_losing_sight_of_the_run_says_it_goes_on(tmp_path):
    with pytest.raises(SystemExit) as e:
        run_migrate(tmp_path, {"state": "running", "mailboxes": []})
    assert "it goes on there: run the same command again" in str(e.value.code)

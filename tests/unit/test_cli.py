"""The command line: every invocation the README, the Makefile and the lab scenarios
use reaches the same action with the same arguments; --help everywhere; usage errors
exit 2."""
import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

from mailstack import __main__, facts, lifecycle

ROOT = Path(__file__).resolve().parents[2]
INV = "inventory/lab.py"

# argv -> (action's name in its module, the arguments it gets)
INVOCATIONS = [
    (["hash-password"], ("hash_password_command", {})),
    (["check", "inventory/lab/mail.yml"], ("check", {"file": "inventory/lab/mail.yml"})),
    (["records", "inventory/lab/mail.yml"], ("records", {"file": "inventory/lab/mail.yml"})),
    (["publish", INV], ("publish_system", {"inventory": INV})),
    (["rotate-dkim", INV, "acme.test"], ("rotate", {"inventory": INV, "domain": "acme.test", "overlap": "7d"})),
    (["rotate-dkim", INV, "acme.test", "30s"],
     ("rotate", {"inventory": INV, "domain": "acme.test", "overlap": "30s"})),
    (["queue", INV], ("queue", {"inventory": INV, "flush": False, "as_json": False})),
    (["queue", INV, "--flush"], ("queue", {"inventory": INV, "flush": True, "as_json": False})),
    (["backup-status", INV], ("backup_status", {"inventory": INV, "as_json": False})),
    (["reports", INV], ("reports", {"inventory": INV, "since": "7d", "as_json": False, "mail": False})),
    (["reports", INV, "--since", "1h", "--json", "--mail"],
     ("reports", {"inventory": INV, "since": "1h", "as_json": True, "mail": True})),
    (["status", INV], ("status", {"inventory": INV, "as_json": False, "resolver": None, "ca": None,
                                  "html": None, "chart_range": "7d"})),
    (["status", INV, "--resolver", "10.66.0.10", "--ca", "ca.pem", "--json"],
     ("status", {"inventory": INV, "as_json": True, "resolver": "10.66.0.10", "ca": "ca.pem",
                 "html": None, "chart_range": "7d"})),
    (["status", INV, "--html", "status.html", "--chart-range", "1h"],
     ("status", {"inventory": INV, "as_json": False, "resolver": None, "ca": None,
                 "html": "status.html", "chart_range": "1h"})),
    (["backup-prune", INV], ("backup_prune", {"inventory": INV, "check": False})),
    (["backup-prune", INV, "--check"], ("backup_prune", {"inventory": INV, "check": True})),
    (["restore-mailbox", INV, "carol@acme.test"],
     ("restore_mailbox", {"inventory": INV, "address": "carol@acme.test", "as_of": None})),
    (["restore-mailbox", INV, "carol@acme.test", "--as-of", "2026-01-01 10:00"],
     ("restore_mailbox", {"inventory": INV, "address": "carol@acme.test", "as_of": "2026-01-01 10:00"})),
    (["restore-host", INV, "mx1.acme.test"],
     ("restore_host", {"inventory": INV, "fqdn": "mx1.acme.test", "snapshot": None})),
    (["restore-host", INV, "mx1.acme.test", "--snapshot", "4f2a9c"],
     ("restore_host", {"inventory": INV, "fqdn": "mx1.acme.test", "snapshot": "4f2a9c"})),
    (["upgrade", INV, "mx1.acme.test"], ("upgrade_host", {"inventory": INV, "fqdn": "mx1.acme.test"})),
    (["deploy", INV], ("deploy_systems", {"paths": [INV], "parallel": 4, "as_json": False})),
    (["deploy", "inventory/", INV, "--parallel", "2", "--json"],
     ("deploy_systems", {"paths": ["inventory/", INV], "parallel": 2, "as_json": True})),
    (["migrate", INV, "--from", "imaps://imap.oldprovider.test", "--map", "initech.yml"],
     ("migrate", {"inventory": INV, "source": "imaps://imap.oldprovider.test", "map_file": "initech.yml",
                  "as_json": False})),
    (["migrate", INV, "--map", "m.yml", "--from", "imaps://old.test:10993", "--json"],
     ("migrate", {"inventory": INV, "source": "imaps://old.test:10993", "map_file": "m.yml", "as_json": True})),
]
DATA = "inventory/example/mail.yml"
NEW = [
    (["mailbox", "add", DATA, "bob@client-one.example", "--quota", "2G", "--protocols", "imap,pop3",
      "--name", "Bob", "--deploy"],
     ("mailbox_add", {"target": DATA, "address": "bob@client-one.example", "quota": "2G",
                      "protocols": ["imap", "pop3"], "name": "Bob", "deploy": True,
                      "inventory": None, "welcome": False})),
    (["mailbox", "add", DATA, "bob@client-one.example"],
     ("mailbox_add", {"target": DATA, "address": "bob@client-one.example", "quota": None,
                      "protocols": None, "name": None, "deploy": False,
                      "inventory": None, "welcome": False})),
    (["mailbox", "remove", DATA, "anna@client-one.example"],
     ("mailbox_remove", {"target": DATA, "address": "anna@client-one.example", "deploy": False,
                        "inventory": None})),
    (["mailbox", "passwd", "inventory/example.py", "anna@client-one.example", "--deploy"],
     ("mailbox_passwd", {"target": "inventory/example.py", "address": "anna@client-one.example",
                         "deploy": True, "inventory": None})),
    (["mailbox", "list", DATA, "--json"], ("mailbox_list", {"target": DATA, "as_json": True})),
    (["alias", "add", DATA, "team@agency.example", "ops@agency.example", "x@elsewhere.example"],
     ("alias_add", {"target": DATA, "source": "team@agency.example",
                    "targets": ["ops@agency.example", "x@elsewhere.example"], "deploy": False,
                    "inventory": None})),
    (["alias", "remove", DATA, "team@agency.example"],
     ("alias_remove", {"target": DATA, "source": "team@agency.example", "deploy": False,
                       "inventory": None})),
    (["mailbox", "add", "/tmp/variant/mail.yml", "new@acme.test", "--inventory", "inventory/lab.py",
      "--deploy", "--welcome"],
     ("mailbox_add", {"target": "/tmp/variant/mail.yml", "address": "new@acme.test", "quota": None,
                      "protocols": None, "name": None, "deploy": True,
                      "inventory": "inventory/lab.py", "welcome": True})),
]


def record(monkeypatch):
    calls = []
    for _, (name, _) in INVOCATIONS + NEW:
        module = lifecycle if hasattr(lifecycle, name) else __main__
        monkeypatch.setattr(module, name, lambda _name=name, **kw: calls.append((_name, kw)))
    return calls


@pytest.mark.parametrize("argv, expected", INVOCATIONS + NEW, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_each_invocation_reaches_its_action_with_its_arguments(monkeypatch, argv, expected):
    calls = record(monkeypatch)
    __main__.main(argv)
    assert calls == [expected]


def test_every_documented_invocation_is_in_the_table():
    """The README's and the lab's invocations (their command names) are all tested above."""
    tested = {argv[0] for argv, _ in INVOCATIONS}
    used = set()
    for path in [ROOT / "README.md", ROOT / "Makefile", *ROOT.glob("tests/lab/*.py"), ROOT / "lab" / "labctl"]:
        text = path.read_text()
        for word in __main__.parser()._subparsers._group_actions[0].choices:
            if f"mailstack {word}" in text or f'"mailstack", "{word}"' in text or f'mailstack("{word}"' in text:
                used.add(word)
    assert used - {"mailbox", "alias"} <= tested
    assert {"publish", "queue", "backup-status", "restore-host", "upgrade"} <= used


def commands(parser=None, prefix=()):
    parser = parser or __main__.parser()
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            yield prefix + (name,)
            yield from commands(sub, prefix + (name,))


@pytest.mark.parametrize("command", [()] + list(commands()), ids=" ".join)
def test_help_of_every_command_exits_0_and_names_it(capsys, command):
    with pytest.raises(SystemExit) as e:
        __main__.main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(('mailstack',) + command)} ")
    assert "exit codes: 0 done, 1 something needs attention or failed, 2 usage error" in out


@pytest.mark.parametrize("argv", [
    [], ["nonsense"], ["queue"], ["queue", INV, "--flsh"], ["queue", INV, "--fl"],
    ["rotate-dkim", INV], ["rotate-dkim", INV, "acme.test", "7d", "more"],
    ["restore-mailbox", INV, "carol@acme.test", "--as-of"], ["restore-host", INV, "mx1.acme.test", "extra"],
    ["hash-password", "s3cret"], ["check"], ["mailbox"], ["alias"], ["mailbox", "add", DATA],
    ["mailbox", "add", DATA, "bob@client-one.example", "--password", "s3cret"],
    ["mailbox", "passwd", DATA, "anna@client-one.example", "s3cret"],
    ["alias", "add", DATA, "team@agency.example"],
    ["deploy"], ["deploy", INV, "--parallel", "0"], ["deploy", INV, "--parallel", "two"],
    ["migrate", INV, "--map", "m.yml"], ["migrate", INV, "--from", "imaps://old.test"],
    ["migrate", INV, "--from", "imaps://old.test", "--map", "m.yml", "--password", "s3cret"],
], ids=lambda argv: " ".join(argv) or "nothing")
def test_usage_errors_exit_2_and_run_nothing(monkeypatch, capsys, argv):
    calls = record(monkeypatch)
    with pytest.raises(SystemExit) as e:
        __main__.main(argv)
    assert e.value.code == 2
    assert calls == []
    assert "usage: mailstack" in capsys.readouterr().err


def test_python_dash_m_mailstack_still_runs():
    ok = subprocess.run([sys.executable, "-m", "mailstack", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("usage: mailstack ")
    bad = subprocess.run([sys.executable, "-m", "mailstack", "nonsense"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2


def test_the_console_command_is_main_and_reads_sys_argv(monkeypatch):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"mailstack": "mailstack.__main__:main"}
    calls = record(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["mailstack", "publish", INV])
    assert __main__.main() is None          # the console script exits with 0
    assert calls == [("publish_system", {"inventory": INV})]


# --- what the old commands do with their arguments ---

def lab_system(**extra):
    return types.SimpleNamespace(
        name="lab", mailboxes=[types.SimpleNamespace(address="carol@acme.test")],
        stores=[types.SimpleNamespace(address="carol@acme.test")],
        primary_mx=types.SimpleNamespace(fqdn="mx1.acme.test"), **extra)


def test_restore_host_sends_the_same_remote_command(monkeypatch):
    from mailstack import backup
    monkeypatch.setattr(__main__, "inventory_system", lambda inventory: (lab_system(), {}))
    monkeypatch.setattr(backup, "clients", lambda system: [types.SimpleNamespace(fqdn="mx1.acme.test")])
    commands = []
    monkeypatch.setattr(facts, "run_here", lambda inv, limit, command: commands.append((limit, command)) or True)
    for argv in (["restore-host", INV, "mx1.acme.test"], ["restore-host", INV, "mx1.acme.test", "--snapshot", "4f2a"]):
        with pytest.raises(SystemExit) as e:
            __main__.main(argv)
        assert e.value.code == 0
    assert commands == [("mx1.acme.test", "mailstack-backup restore-host"),
                        ("mx1.acme.test", "mailstack-backup restore-host --snapshot 4f2a")]


def test_restore_mailbox_of_an_unknown_address_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(__main__, "inventory_system", lambda inventory: (lab_system(), {}))
    with pytest.raises(SystemExit) as e:
        __main__.main(["restore-mailbox", INV, "nobody@acme.test"])
    assert e.value.code == "mailstack: nobody@acme.test is not a mailbox of lab"


def test_rotate_dkim_with_a_bad_overlap_exits_1(monkeypatch):
    monkeypatch.setattr(__main__, "inventory_system", lambda inventory: (lab_system(), {}))
    with pytest.raises(SystemExit) as e:
        __main__.main(["rotate-dkim", INV, "acme.test", "soon"])
    assert str(e.value.code).startswith("mailstack: input: OVERLAP: 'soon' is not a duration")


QUEUED = json.dumps({"arrival_time": 1000, "recipients": [
    {"address": "alice@acme.test", "delay_reason": "connect to mx1.acme.test: Connection refused"}]})


def queue_fakes(monkeypatch):
    monkeypatch.setattr(__main__, "inventory_system",
                        lambda inventory: (lab_system(hosts_with=lambda role: ["mx2.acme.test"]), {}))
    commands = []
    monkeypatch.setattr(facts, "run_on", lambda inv, group, command: commands.append(command)
                        or {"mx2.acme.test": QUEUED})
    monkeypatch.setattr("time.time", lambda: 1060)
    return commands


def test_queue_prints_the_same_report_and_json_on_request(monkeypatch, capsys):
    commands = queue_fakes(monkeypatch)
    __main__.main(["queue", INV])
    assert capsys.readouterr().out == (
        "mx2.acme.test: 1 message(s) queued\n"
        "  acme.test: 1 message(s), oldest 60s (connect to mx1.acme.test: Connection refused)\n")
    __main__.main(["queue", INV, "--flush", "--json"])
    assert json.loads(capsys.readouterr().out) == {"mx2.acme.test": {"acme.test": {
        "messages": 1, "oldest": 60, "reason": "connect to mx1.acme.test: Connection refused"}}}
    assert commands == ["postqueue -j", "postqueue -f && postqueue -j"]


def test_backup_status_json_carries_each_host_and_exits_1_when_one_failed(monkeypatch, capsys):
    from mailstack import backup
    system = lab_system()
    monkeypatch.setattr(__main__, "inventory_system", lambda inventory: (system, {}))
    monkeypatch.setattr(backup, "clients", lambda s: [types.SimpleNamespace(fqdn="mx1.acme.test"),
                                                      types.SimpleNamespace(fqdn="mx2.acme.test")])
    status = {"mx1.acme.test": json.dumps({"tool": "restic", "last_success": "2026-11-23T03:10:00"})
              + "\nTue 2026-11-24 03:10:00 UTC",
              "mx2.acme.test": json.dumps({"tool": "restic", "last_error": "repository locked"}) + "\n"}
    monkeypatch.setattr(facts, "run_on", lambda inv, group, command: {group: status[group]}
                        if group in status else {})
    with pytest.raises(SystemExit) as e:
        __main__.main(["backup-status", INV, "--json"])
    assert e.value.code == 1
    assert json.loads(capsys.readouterr().out) == {"ok": False, "hosts": [
        {"host": "mx1.acme.test", "tool": "restic", "last_success": "2026-11-23T03:10:00",
         "next_run": "Tue 2026-11-24 03:10:00 UTC", "problem": ""},
        {"host": "mx2.acme.test", "tool": "restic", "last_success": None, "next_run": None,
         "problem": "repository locked"}]}

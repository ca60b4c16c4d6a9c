"""mailstack mailbox / alias change the data file for the operator: only the lines of
the change move (every comment and other line stays byte for byte), the result is
what the model accepts, and a bad change leaves the file exactly as it was."""
import base64
import difflib
import email
import email.policy
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailstack import __main__, lifecycle
from mailstack.model import load_system
from mailstack.yaml_text import Text

from .conftest import HASH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "example" / "mail.yml"
LAB = ROOT / "inventory" / "lab" / "mail.yml"
PLACEHOLDER = "{SHA512-CRYPT}$6$REPLACE-ME..."


def run(argv, stdin="n3w pass\n", monkeypatch=None):
    """main(argv) with `stdin`: (exit code, what stdin still holds); a message
    sys.exit() was given goes to stderr, as the interpreter prints it."""
    stream = io.StringIO(stdin)
    saved, sys.stdin = sys.stdin, stream
    try:
        __main__.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    finally:
        sys.stdin = saved
    return code, stream.read()


def verifies(password_hash, password):
    """The hash is openssl's SHA512-crypt of `password`."""
    salt = password_hash.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                           capture_output=True, text=True, check=True).stdout.strip()
    return "{SHA512-CRYPT}" + again == password_hash


def changes(before, after):
    """(removed lines, added lines) between two texts, each line with its newline."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(True), after.splitlines(True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.fixture
def example(tmp_path):
    """A copy of the example system: inventory/example.py and inventory/example/mail.yml."""
    (tmp_path / "example").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "example" / "mail.yml")
    shutil.copy(ROOT / "inventory" / "example.py", tmp_path / "example.py")
    return tmp_path / "example" / "mail.yml"


@pytest.fixture
def lab(tmp_path):
    """A copy of the lab's data, its hashes file a link as in the repository."""
    (tmp_path / "lab").mkdir()
    (tmp_path / ".lab").mkdir()
    shutil.copy(LAB, tmp_path / "lab" / "mail.yml")
    addresses = [m["address"] for m in yaml.safe_load(LAB.read_text())["mailboxes"]]
    hashes = tmp_path / ".lab" / "password-hashes.yml"
    hashes.write_text(yaml.safe_dump({a: HASH for a in addresses}))
    hashes.chmod(0o600)
    (tmp_path / "lab" / "password-hashes.yml").symlink_to("../.lab/password-hashes.yml")
    return tmp_path / "lab" / "mail.yml"


# --- add ---

def test_add_inserts_one_entry_after_its_domain_and_touches_no_other_line(example, capsys):
    before = example.read_text()
    code, left = run(["mailbox", "add", str(example), "bob@client-one.example", "--quota", "2G",
                      "--protocols", "imap,pop3", "--name", "Bob Builder"], "b0b's pass\n")
    assert code == 0 and left == ""
    after = example.read_text()
    removed, added = changes(before, after)
    assert removed == []
    assert added[:4] == ["  - address: bob@client-one.example\n", '    name: "Bob Builder"\n',
                         "    quota: 2G\n", "    protocols: [imap, pop3]\n"]
    assert len(added) == 5 and added[4].startswith('    password_hash: "{SHA512-CRYPT}$6$')
    # Right after the domain's last mailbox (accounts@), before client-two's.
    lines = after.splitlines(True)
    assert lines[lines.index(added[0]) - 1] == before.splitlines(True)[lines.index(added[0]) - 1]
    assert "accounts@client-one.example" in "".join(lines[lines.index(added[0]) - 3:lines.index(added[0])])
    bob = next(m for m in load_system(example, placeholders=True).mailboxes
               if m.address == "bob@client-one.example")
    assert (bob.quota, bob.protocols, bob.name) == (2 * 1024**3, {"imap", "pop3"}, "Bob Builder")
    assert verifies(bob.password_hash, "b0b's pass")
    out = capsys.readouterr().out
    assert "bob@client-one.example: added to example" in out
    assert "POP3        mx1.agency.example, port 995, TLS" in out
    assert "https://autoconfig.client-one.example/mailstack.mobileconfig?emailaddress=bob@client-one.example" in out
    assert "b0b's pass" not in out


def test_add_with_the_domains_defaults_writes_no_option(example):
    before = example.read_text()
    assert run(["mailbox", "add", str(example), "eve@client-two.example"])[0] == 0
    _, added = changes(before, example.read_text())
    assert added[0] == "  - address: eve@client-two.example\n" and len(added) == 2
    eve = load_system(example, placeholders=True).mailboxes[-1]
    assert (eve.address, eve.quota, eve.protocols) == ("eve@client-two.example", 10 * 1024**3, {"imap"})


@pytest.mark.parametrize("argv, where, message", [
    (["carl@client-one.example", "--quota", "lots"], "mailboxes[3].quota", "'lots' is not a size"),
    (["carl@nowhere.example"], "mailboxes[4].address", "which is not declared under domains"),
    (["anna@client-one.example"], "mailboxes[3].address", "duplicate mailbox 'anna@client-one.example'"),
    (["sales@client-one.example"], "aliases[1].address", "is already a mailbox"),
    (["carl@client-one.example", "--protocols", "imap,smtp"], "mailboxes[3].protocols[1]", "unknown protocol 'smtp'"),
    (["carl@client-one.example", "--name", "Carl\n; rm"], "mailboxes[3].name", "is not a person's name"),
    (["Carl@client-one.example"], "mailboxes[3].address", "is not a valid email address"),
], ids=["quota", "domain", "duplicate", "alias", "protocols", "name", "address"])
def test_a_bad_new_mailbox_leaves_the_file_as_it_was_and_asks_no_password(example, capsys, argv, where, message):
    """The message names the new entry where it would have gone (after its domain's)."""
    before = example.read_bytes()
    code, left = run(["mailbox", "add", str(example), *argv], "never read\n")
    assert code == 1
    assert example.read_bytes() == before
    assert left == "never read\n"          # refused before the password was asked for
    err = capsys.readouterr().err
    assert err.startswith(f"mailstack: invalid change, nothing written: {example}: {where}: ")
    assert message in err
    assert [p.name for p in example.parent.iterdir()] == ["mail.yml"]   # no temporary file left


def test_the_password_is_never_an_argument_and_never_empty(example, capsys):
    before = example.read_bytes()
    assert run(["mailbox", "add", str(example), "bob@client-one.example", "--password", "x"])[0] == 2
    assert run(["mailbox", "add", str(example), "bob@client-one.example", "s3cret"])[0] == 2
    assert run(["mailbox", "add", str(example), "bob@client-one.example"], "\n")[0] == 1
    assert "mailstack: empty password" in capsys.readouterr().err
    assert example.read_bytes() == before


def test_add_to_a_system_with_a_hashes_file_puts_the_hash_there(lab, tmp_path):
    hashes = tmp_path / ".lab" / "password-hashes.yml"
    before, hashes_before = lab.read_text(), hashes.read_text()
    assert run(["mailbox", "add", str(lab), "hank@globex.test", "--protocols", "imap"], "h4nk\n")[0] == 0
    removed, added = changes(before, lab.read_text())
    assert removed == [] and added == ["  - address: hank@globex.test\n", "    protocols: [imap]\n"]
    # After frank@, the last of globex.test, and before the blank line and aliases:.
    assert "  - address: frank@globex.test\n    quota: 200K\n" + "".join(added) + "\naliases:" in lab.read_text()
    removed, added = changes(hashes_before, hashes.read_text())
    assert removed == [] and len(added) == 1 and added[0].startswith("hank@globex.test: ")
    assert (tmp_path / "lab" / "password-hashes.yml").is_symlink()
    assert hashes.stat().st_mode & 0o777 == 0o600
    hank = load_system(lab).mailboxes[-1]
    assert hank.address == "hank@globex.test" and verifies(hank.password_hash, "h4nk")


# --- passwd ---

def test_passwd_replaces_the_placeholders_until_check_accepts_the_example(example, capsys):
    before = example.read_text()
    for i, address in enumerate(m["address"] for m in yaml.safe_load(before)["mailboxes"]):
        assert run(["mailbox", "passwd", str(example), address], f"pass {i}\n")[0] == 0
    after = example.read_text()
    removed, added = changes(before, after)
    assert removed == [f'    password_hash: "{PLACEHOLDER}"\n'] * 4
    assert [line.split('"')[0] for line in added] == ["    password_hash: "] * 4
    system = load_system(example)          # no placeholder left: check and deploy accept it
    assert all(verifies(m.password_hash, f"pass {i}") for i, m in enumerate(system.mailboxes))
    assert run(["check", str(example)])[0] == 0


def test_passwd_changes_the_hashes_file_of_a_system_that_has_one(lab, tmp_path):
    before = lab.read_bytes()
    assert run(["mailbox", "passwd", str(lab), "alice@acme.test"], "al1ce\n")[0] == 0
    assert lab.read_bytes() == before
    system = load_system(lab)
    assert verifies(system.mailboxes[0].password_hash, "al1ce")
    assert all(not verifies(m.password_hash, "al1ce") for m in system.mailboxes[1:])


def test_passwd_of_no_mailbox_exits_1(example, capsys):
    before = example.read_bytes()
    assert run(["mailbox", "passwd", str(example), "sales@client-one.example"], "x\n") == (1, "x\n")
    assert "sales@client-one.example is not a mailbox of example" in capsys.readouterr().err
    assert example.read_bytes() == before


# --- remove ---

def test_remove_takes_its_lines_and_its_address_out_of_aliases_that_deliver_to_others_too(example, capsys):
    before = example.read_text()
    assert run(["mailbox", "remove", str(example), "anna@client-one.example"])[0] == 0
    removed, added = changes(before, example.read_text())
    assert removed == ["  - address: anna@client-one.example\n", f'    password_hash: "{PLACEHOLDER}"\n',
                       "    to: [anna@client-one.example, partner@elsewhere.example]\n"]
    assert added == ["    to: partner@elsewhere.example\n"]
    assert "anna@client-one.example" not in {m.address for m in load_system(example, placeholders=True).mailboxes}
    out = capsys.readouterr().out
    assert "sales@client-one.example: no longer delivers to anna@client-one.example" in out
    assert "/var/vmail/client-one.example/anna" in out


def test_remove_refuses_a_mailbox_an_alias_delivers_only_to(example, capsys):
    before = example.read_bytes()
    assert run(["mailbox", "remove", str(example), "ops@agency.example"])[0] == 1
    assert example.read_bytes() == before
    assert "ops@agency.example is the only target of postmaster@agency.example" in capsys.readouterr().err


def test_remove_refuses_a_catch_all_naming_the_file_and_field(example, capsys):
    before = example.read_bytes()
    assert run(["mailbox", "remove", str(example), "office@client-two.example"])[0] == 1
    assert example.read_bytes() == before
    assert f"{example}: domains[2].catch_all: 'office@client-two.example' is not a mailbox or alias" \
        in capsys.readouterr().err


def test_remove_takes_the_comment_above_an_entry_and_its_hash(lab, tmp_path):
    hashes = tmp_path / ".lab" / "password-hashes.yml"
    before, hashes_before = lab.read_text(), hashes.read_text()
    assert run(["mailbox", "remove", str(lab), "frank@globex.test"])[0] == 0
    removed, added = changes(before, lab.read_text())
    assert removed == ["  # A tiny quota for the quota scenarios.\n",
                       "  - address: frank@globex.test\n", "    quota: 200K\n"] and added == []
    removed, added = changes(hashes_before, hashes.read_text())
    assert [line.split(":")[0] for line in removed] == ["frank@globex.test"] and added == []
    assert "frank@globex.test" not in {m.address for m in load_system(lab).mailboxes}


def test_a_member_of_a_shared_mailbox_is_not_removed_while_the_data_names_them(lab, capsys):
    before = lab.read_bytes()
    assert run(["mailbox", "remove", str(lab), "grace@acme.test"])[0] == 1
    assert lab.read_bytes() == before
    assert ("shared_mailboxes[0].members.grace@acme.test: 'grace@acme.test' is not a mailbox of this "
            "system (a member who leaves or is offboarded comes out of this list first)") in capsys.readouterr().err


# --- alias ---

def test_alias_add_makes_an_alias_then_adds_targets_to_it(example):
    before = example.read_text()
    assert run(["alias", "add", str(example), "team@agency.example", "ops@agency.example"])[0] == 0
    removed, added = changes(before, example.read_text())
    assert removed == [] and added == ["  - address: team@agency.example\n", "    to: ops@agency.example\n"]
    assert run(["alias", "add", str(example), "team@agency.example", "x@elsewhere.example",
                "ops@agency.example"])[0] == 0
    removed, added = changes(before, example.read_text())
    assert added == ["  - address: team@agency.example\n", "    to: [ops@agency.example, x@elsewhere.example]\n"]
    team = next(a for a in load_system(example, placeholders=True).aliases if a.address == "team@agency.example")
    assert team.targets == ("ops@agency.example", "x@elsewhere.example")


def test_alias_remove_and_its_refusals(example, capsys):
    before = example.read_text()
    assert run(["alias", "remove", str(example), "sales@client-one.example"])[0] == 0
    removed, added = changes(before, example.read_text())
    assert removed == ["  - address: sales@client-one.example\n",
                       "    to: [anna@client-one.example, partner@elsewhere.example]\n"] and added == []
    now = example.read_bytes()
    assert run(["alias", "remove", str(example), "postmaster@agency.example"])[0] == 1   # the postmaster
    assert run(["alias", "remove", str(example), "nobody@agency.example"])[0] == 1
    assert run(["alias", "add", str(example), "loop@agency.example", "loop@agency.example"])[0] == 1
    assert example.read_bytes() == now
    err = capsys.readouterr().err
    assert f"{example}: postmaster: 'postmaster@agency.example' is not a mailbox or alias" in err
    assert "nobody@agency.example is not an alias of example" in err
    assert "alias loop" in err


# --- list ---

def test_list_json_parses_and_shows_what_the_model_derives(example, capsys):
    assert run(["mailbox", "add", str(example), "bob@client-one.example", "--quota", "512M"])[0] == 0
    capsys.readouterr()
    assert run(["mailbox", "list", str(example), "--json"])[0] == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1] == {"address": "anna@client-one.example", "name": None, "quota": 5 * 1024**3,
                       "protocols": ["imap", "pop3"]}
    assert rows[3] == {"address": "bob@client-one.example", "name": None, "quota": 512 * 1024**2,
                       "protocols": ["imap", "pop3"]}
    assert run(["mailbox", "list", str(example.parent.parent / "example.py")])[0] == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["address", "quota", "protocols", "name"]
    assert lines[3].split() == ["accounts@client-one.example", "5G", "pop3"]


# --- deploy, files ---

def test_deploy_runs_after_the_change_with_the_inventory_beside_the_data(example, monkeypatch):
    deployed = []
    limits = []
    monkeypatch.setattr(lifecycle, "run_deploy",
                        lambda inventory, limit: (deployed.append(inventory), limits.append(limit)))
    assert run(["alias", "add", str(example), "team@agency.example", "ops@agency.example", "--deploy"])[0] == 0
    assert deployed == [example.parent.parent / "example.py"]
    # Only the mail hosts: nothing of a mailbox or an alias lives on the others.
    system = load_system(example, placeholders=True)
    assert limits[0] == [h.fqdn for h in system.hosts if {"primary_mx", "backup_mx"} & set(h.roles)]
    assert limits[0] and len(limits[0]) < len(system.hosts)
    assert run(["alias", "remove", str(example.parent.parent / "example.py"), "team@agency.example",
                "--deploy"])[0] == 0
    assert deployed[1] == example.parent.parent / "example.py"
    # A refused change deploys nothing.
    assert run(["alias", "remove", str(example), "nobody@agency.example", "--deploy"])[0] == 1
    assert len(deployed) == 2


def test_deploy_without_a_known_inventory_refuses_before_any_change(example, monkeypatch, capsys):
    (example.parent.parent / "example.py").unlink()
    monkeypatch.setattr(lifecycle, "run_deploy", lambda inventory, limit: pytest.fail("deployed"))
    before = example.read_bytes()
    assert run(["alias", "add", str(example), "team@agency.example", "ops@agency.example", "--deploy"])[0] == 1
    assert example.read_bytes() == before
    assert "--deploy needs the system's inventory" in capsys.readouterr().err


def test_the_deploy_command_is_pyinfras_on_the_inventory(tmp_path):
    runs = []

    def fake_run(argv, cwd):
        runs.append((argv, cwd))
        return subprocess.CompletedProcess(argv, 1)
    with pytest.raises(SystemExit) as e:
        lifecycle.run_deploy(Path("inventory/example.py"), run=fake_run)
    assert "the deploy failed" in str(e.value.code)
    ((argv, cwd),) = runs
    assert argv == [str(Path(sys.executable).parent / "pyinfra"), "-y",
                    str((Path.cwd() / "inventory/example.py").resolve()), "deploy.py"]
    runs.clear()
    with pytest.raises(SystemExit):
        lifecycle.run_deploy(Path("inventory/example.py"), ["mx1.example", "mx2.example"], run=fake_run)
    assert runs[0][0][2:6] == ["--limit", "mx1.example", "--limit", "mx2.example"]
    assert cwd == ROOT


def test_a_file_changed_meanwhile_is_not_overwritten(tmp_path):
    f = tmp_path / "mail.yml"
    f.write_text("new\n")
    with pytest.raises(SystemExit):
        lifecycle.write_atomically(f, "old\n", "mine\n")
    assert f.read_text() == "new\n" and os.listdir(tmp_path) == ["mail.yml"]


def test_an_inventory_without_its_data_beside_it_exits_1(tmp_path, capsys):
    (tmp_path / "shop.py").write_text("")
    assert run(["mailbox", "list", str(tmp_path / "shop.py")])[0] == 1
    assert f"no data file for {tmp_path / 'shop.py'}" in capsys.readouterr().err


# --- the text edits themselves ---

@pytest.mark.parametrize("before, after", [
    ("domains: [a.example]\n", "domains: [a.example]\n\nmailboxes:\n  - address: x@a.example\n"),
    ("domains:\n    - a.example\nmailboxes:\n", "domains:\n    - a.example\nmailboxes:\n    - address: x@a.example\n"),
    ("mailboxes: []\nlimits: {}\n", "mailboxes:\n  - address: x@a.example\nlimits: {}\n"),
    ("mailboxes:\n  - address: a@a.example", "mailboxes:\n  - address: a@a.example\n  - address: x@a.example\n"),
], ids=["absent", "empty", "flow-empty", "no-final-newline"])
def test_an_item_is_added_to_any_shape_of_an_empty_or_absent_list(before, after):
    t = Text(before)
    t.add_item("mailboxes", [("address", "x@a.example")])
    assert t.apply() == after


# --- welcome ---

def test_welcome_is_sent_after_the_deploy_on_the_primary_through_its_sendmail(example, monkeypatch, capsys):
    steps = []
    monkeypatch.setattr(lifecycle, "run_deploy", lambda inventory, limit: steps.append(("deploy", inventory)))
    monkeypatch.setattr(lifecycle, "run_here",
                        lambda inventory, limit, command: steps.append(("run", limit, command)) or True)
    other = example.parent.parent / "other.py"
    assert run(["mailbox", "add", str(example), "ben@client-one.example", "--name", "Ben O'Kafor",
                "--deploy", "--inventory", str(other), "--welcome"])[0] == 0
    (deploy, (run_, limit, command)) = steps
    assert deploy == ("deploy", other) and (run_, limit) == ("run", "primary_mx")
    # The message travels base64-encoded; the addresses are quoted for the shell.
    argv = shlex.split(command)
    assert argv[:3] == ["printf", "%s", argv[2]] and argv[3:] == [
        "|", "base64", "-d", "|", "/usr/sbin/sendmail", "-oi", "-f", "postmaster@agency.example",
        "--", "ben@client-one.example"]
    mail = email.message_from_bytes(base64.b64decode(argv[2]), policy=email.policy.default)
    assert mail["To"] == "Ben O'Kafor <ben@client-one.example>"
    assert mail["From"].addresses[0].addr_spec == "postmaster@agency.example"
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "IMAP        mx1.agency.example, port 993, TLS" in body
    assert "https://autoconfig.client-one.example/mail/config-v1.1.xml" in body
    assert "n3w pass" not in body                       # never the password
    assert "welcome mail sent to ben@client-one.example" in capsys.readouterr().out


def test_welcome_without_deploy_is_refused_before_any_change(example, capsys):
    before = example.read_bytes()
    assert run(["mailbox", "add", str(example), "ben@client-one.example", "--welcome"])[0] == 1
    assert example.read_bytes() == before
    assert "--welcome needs --deploy" in capsys.readouterr().err


def test_a_welcome_that_fails_to_send_exits_1_and_says_the_mailbox_is_deployed(example, monkeypatch, capsys):
    monkeypatch.setattr(lifecycle, "run_deploy", lambda inventory, limit: None)
    monkeypatch.setattr(lifecycle, "run_here", lambda inventory, limit, command: False)
    assert run(["mailbox", "add", str(example), "ben@client-one.example", "--deploy", "--welcome"])[0] == 1
    assert "is deployed, but the welcome mail was not sent" in capsys.readouterr().err

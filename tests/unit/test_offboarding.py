"""mailstack mailbox offboard / restore: archive first (a failed step changes
nothing), the data changed only in the lines of the change (the mailbox entry
becomes an offboarded record, the address an alias, a forward or nothing), every
value quoted for the host's shell, the passphrase never on a command line, and a
restore that puts the data back as it was."""
import datetime
import stat
import subprocess

import pytest
import yaml

from mailstack import facts, offboarding, secrets
from mailstack.model import DataError, load_system

from .conftest import HASH, VALID
from .test_mailbox_edit import changes, example, lab, run  # noqa: F401 (fixtures)

DAY = datetime.date(2026, 12, 3)
PASSPHRASE = "Zm9vYmFyYmF6cXV4cXV1eHF1dXg"


@pytest.fixture
def hosts(monkeypatch, tmp_path):
    """The host steps, recorded: the archive (run_here) and the export (ssh)."""
    steps = {"archive": [], "export": [], "fail": set()}
    monkeypatch.setattr(secrets, "SECRETS", tmp_path / "secrets")
    monkeypatch.setattr(offboarding, "today", lambda: DAY)
    monkeypatch.setattr(offboarding.secrets, "token_urlsafe", lambda n: PASSPHRASE)
    monkeypatch.setattr(offboarding, "connection", lambda inventory, fqdn: {"ssh_user": "admin"})

    def run_here(inventory, limit, command):
        steps["archive"].append((limit, command))
        return "archive" not in steps["fail"]
    monkeypatch.setattr(facts, "run_here", run_here)

    def ssh(argv, input, stdout, stderr):
        steps["export"].append((argv, input))
        if "export" in steps["fail"]:
            return subprocess.CompletedProcess(argv, 1, b"", b"mailstack-offboarded: 7z: disk full\n")
        stdout.write(b"7z archive")
        return subprocess.CompletedProcess(argv, 0, None, b'{"messages": 12, "bytes": 10}\n')
    monkeypatch.setattr(offboarding.subprocess, "run", ssh)
    return steps


def offboard(data, address, *how):
    return run(["mailbox", "offboard", str(data), address, *how])[0]


def test_offboarding_to_a_colleague_archives_exports_then_moves_only_the_entry(example, hosts, capsys):
    before = example.read_text()
    assert offboard(example, "accounts@client-one.example", "--alias-to", "anna@client-one.example") == 0
    # First the archive, on the primary, the address quoted; then the export over SSH.
    assert hosts["archive"] == [("mx1.agency.example", "mailstack-backup archive-mailbox accounts@client-one.example")]
    (argv, given), = hosts["export"]
    assert argv[-2:] == ["admin@mx1.agency.example",
                         "sudo -n /usr/local/sbin/mailstack-offboarded export accounts@client-one.example"]
    assert given == (PASSPHRASE + "\n").encode() and not any(PASSPHRASE in a for a in argv)
    # The data: the entry left, an alias and the record came; nothing else moved.
    removed, added = changes(before, example.read_text())
    assert removed == ["  - address: accounts@client-one.example\n",
                       "    protocols: [pop3]   # the accounting PC downloads its mail\n",
                       '    password_hash: "{SHA512-CRYPT}$6$REPLACE-ME..."\n']
    assert added == ["  - address: accounts@client-one.example\n", "    to: anna@client-one.example\n",
                     "\n", "offboarded:\n", "  - address: accounts@client-one.example\n",
                     "    date: 2026-12-03\n", "    keep_until: 2027-03-03\n",
                     '    mailbox: {protocols: [pop3], password_hash: "{SHA512-CRYPT}$6$REPLACE-ME..."}\n']
    system = load_system(example, placeholders=True)
    assert "accounts@client-one.example" not in {m.address for m in system.mailboxes}
    assert system.owners("accounts@client-one.example") == ["anna@client-one.example"]
    (record,) = system.offboarded
    assert (record.date, record.keep_until) == (DAY, DAY + datetime.timedelta(days=90))
    # The export and its passphrase, off git, the operator's only.
    where = secrets.SECRETS / "example" / "offboarded"
    export, secret = where / "accounts@client-one.example-2026-12-03.7z", \
        where / "accounts@client-one.example-2026-12-03.passphrase"
    assert export.read_bytes() == b"7z archive" and secret.read_text() == PASSPHRASE + "\n"
    assert stat.S_IMODE(export.stat().st_mode) == stat.S_IMODE(secret.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert out.count(PASSPHRASE) == 1 and "12 messages" in out
    assert "until 2027-03-03" in out and "deploy it: .venv/bin/pyinfra -y" in out


def test_a_forward_goes_outside_and_the_keep_time_comes_from_the_data(example, hosts):
    example.write_text(example.read_text() + "\noffboarding:\n  keep: 2w\n")
    assert offboard(example, "anna@client-one.example", "--forward-to", "anna@home.example") == 0
    system = load_system(example, placeholders=True)
    assert next(a for a in system.aliases if a.address == "anna@client-one.example").targets == ("anna@home.example",)
    assert system.offboarded[0].keep_until == datetime.date(2026, 12, 17)
    # sales@ delivered to her: it still does, through the new alias.
    assert "anna@client-one.example" in next(a for a in system.aliases
                                             if a.address == "sales@client-one.example").targets


def test_remove_takes_the_address_out_of_aliases_that_deliver_to_others_too(example, hosts, capsys):
    before = example.read_text()
    assert offboard(example, "anna@client-one.example", "--remove") == 0
    system = load_system(example, placeholders=True)
    assert next(a for a in system.aliases if a.address == "sales@client-one.example").targets == \
        ("partner@elsewhere.example",)
    assert "anna@client-one.example" not in {a.address for a in system.aliases}
    assert "no longer receives mail" in capsys.readouterr().out
    assert "  - address: anna@client-one.example\n" in changes(before, example.read_text())[0]


@pytest.mark.parametrize("address, how, message", [
    ("nobody@client-one.example", ["--remove"], "is not a mailbox of example"),
    ("anna@client-one.example", ["--alias-to", "anna@home.example"], "not an address of example (use --forward-to"),
    ("anna@client-one.example", ["--forward-to", "ops@agency.example"], "an address of example (use --alias-to)"),
    ("anna@client-one.example", ["--alias-to", "ghost@agency.example"], "neither a mailbox nor an alias"),
    ("anna@client-one.example", ["--alias-to", "anna@client-one.example"], "cannot deliver to itself"),
    ("ops@agency.example", ["--remove"], "is the only target of postmaster@agency.example"),
    ("office@client-two.example", ["--remove"], "catch_all: 'office@client-two.example' is not a mailbox or alias"),
    ("ops@agency.example", ["--forward-to", "ops@elsewhere.example"],
     "shared_mailboxes[0].members.ops@agency.example: 'ops@agency.example' is not a mailbox of "
     "this system (a member who leaves or is offboarded comes out of this list first)"),
], ids=["unknown", "alias-outside", "forward-inside", "alias-to-nothing", "itself", "only-target", "catch-all",
        "shared-member"])
def test_a_bad_offboarding_touches_no_host_and_no_file(example, hosts, capsys, address, how, message):
    before = example.read_bytes()
    assert offboard(example, address, *how) == 1
    assert message in capsys.readouterr().err
    assert example.read_bytes() == before and hosts["archive"] == hosts["export"] == []


@pytest.mark.parametrize("step", ["archive", "export"])
def test_a_failed_archive_or_export_changes_nothing(example, hosts, capsys, step):
    hosts["fail"].add(step)
    before = example.read_bytes()
    assert offboard(example, "anna@client-one.example", "--remove") == 1
    assert f"the {step} of anna@client-one.example failed, nothing changed" in capsys.readouterr().err
    assert example.read_bytes() == before
    assert len(hosts["export"]) == (step == "export")
    where = secrets.SECRETS / "example" / "offboarded"
    assert not where.exists() or list(where.iterdir()) == []      # no half export, no passphrase


def test_exactly_one_of_alias_forward_or_remove(example, hosts):
    assert run(["mailbox", "offboard", str(example), "anna@client-one.example"])[0] == 2
    assert run(["mailbox", "offboard", str(example), "anna@client-one.example", "--remove",
                "--alias-to", "ops@agency.example"])[0] == 2


def test_the_remote_export_command_quotes_the_address():
    argv = offboarding.export_command({"ssh_user": "root", "ssh_port": 2222}, "mx1.example.org",
                                      "x';reboot;'@example.org")
    assert argv[-1] == "/usr/local/sbin/mailstack-offboarded export 'x'\"'\"';reboot;'\"'\"'@example.org'"
    assert argv[-2] == "root@mx1.example.org" and ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]


def test_the_archive_command_quotes_the_address():
    import types
    commands = []
    system = types.SimpleNamespace(primary_mx=types.SimpleNamespace(fqdn="mx1.example.org"))
    offboarding.archive("inv.py", system, "a$(reboot)@example.org",
                        run_here=lambda inv, limit, command: commands.append(command) or True)
    assert commands == ["mailstack-backup archive-mailbox 'a$(reboot)@example.org'"]


# --- restore ---

def test_offboard_then_restore_gives_back_the_file_byte_for_byte(example, hosts, capsys):
    before = example.read_bytes()
    # accounts@ is its domain's last mailbox: the restored entry lands where it was.
    assert offboard(example, "accounts@client-one.example", "--alias-to", "anna@client-one.example") == 0
    assert run(["mailbox", "restore", str(example), "accounts@client-one.example"])[0] == 0
    removed, added = changes(before.decode(), example.read_text())
    # The entry's inline comment is the only loss (settings come back in flow style).
    assert removed == ["    protocols: [pop3]   # the accounting PC downloads its mail\n"]
    assert added == ["    protocols: [pop3]\n"]
    assert "it no longer delivers to anna@client-one.example" in capsys.readouterr().out


def test_restore_of_a_mailbox_whose_hash_lives_in_the_hashes_file(lab, hosts):
    hashes = lab.parent / "password-hashes.yml"
    data_before, hashes_before = lab.read_bytes(), hashes.read_bytes()
    assert offboard(lab, "carol@acme.test", "--alias-to", "alice@acme.test", "--inventory", "inventory/lab.py") == 0
    assert hashes.read_bytes() == hashes_before          # the hash waits where it was
    record = load_system(lab, placeholders=True).offboarded[0]
    assert record.mailbox == {"protocols": ["imap"], "quota": "2G"}
    assert run(["mailbox", "restore", str(lab), "carol@acme.test"])[0] == 0
    carol = next(m for m in load_system(lab).mailboxes if m.address == "carol@acme.test")
    assert (carol.quota, carol.protocols, carol.password_hash) == (2 * 1024**3, {"imap"}, HASH)
    after, before = yaml.safe_load(lab.read_text()), yaml.safe_load(data_before)
    for data in (after, before):     # the same data; the entry is back after its domain's last
        data["mailboxes"].sort(key=lambda m: m["address"])
    assert after == before
    assert hashes.read_bytes() == hashes_before


def test_restore_after_the_keep_time_is_refused(example, hosts, monkeypatch, capsys):
    assert offboard(example, "anna@client-one.example", "--remove") == 0
    after = example.read_bytes()
    monkeypatch.setattr(offboarding, "today", lambda: datetime.date(2027, 3, 4))
    assert run(["mailbox", "restore", str(example), "anna@client-one.example"])[0] == 1
    assert "kept until 2027-03-03 and is deleted" in capsys.readouterr().err
    assert example.read_bytes() == after
    monkeypatch.setattr(offboarding, "today", lambda: datetime.date(2027, 3, 3))    # its last day
    assert run(["mailbox", "restore", str(example), "anna@client-one.example"])[0] == 0


def test_restore_of_an_address_never_offboarded_is_refused(example, capsys):
    assert run(["mailbox", "restore", str(example), "anna@client-one.example"])[0] == 1
    assert "is not an offboarded mailbox of example" in capsys.readouterr().err


def test_a_new_mailbox_cannot_take_an_offboarded_address(example, hosts, capsys):
    assert offboard(example, "anna@client-one.example", "--remove") == 0
    assert run(["mailbox", "add", str(example), "anna@client-one.example"])[0] == 1
    assert "is a mailbox again: its offboarded mail would be lost" in capsys.readouterr().err


# --- the model ---

RECORD = """\
offboarded:
  - address: cleo@example.org
    date: 2026-12-03
    keep_until: 2027-03-03
    mailbox: {quota: 3G, protocols: [imap], password_hash: "%s"}
""" % HASH


def test_the_model_reads_offboarded_records_and_the_keep_time(write_data):
    system = load_system(write_data(VALID + RECORD + "offboarding: {keep: 6w}\n"))
    (record,) = system.offboarded
    assert (record.address, record.date, record.keep_until) == \
        ("cleo@example.org", datetime.date(2026, 12, 3), datetime.date(2027, 3, 3))
    assert record.mailbox["quota"] == "3G" and system.offboarding_keep == 42 * 86400
    assert load_system(write_data(VALID)).offboarding_keep == 90 * 86400      # the default


@pytest.mark.parametrize("change, where, message", [
    (("offboarding: {keep: 6w}", "offboarding: {keep: soon}"), "offboarding.keep", "is not a duration"),
    (("offboarding: {keep: 6w}", "offboarding: {kept: 6w}"), "offboarding.kept", "unknown key"),
    (("date: 2026-12-03", "date: 2026-13-03"), "", "is not a date (YYYY-MM-DD)"),
    (("date: 2026-12-03", "date: yesterday"), "offboarded[0].date", "is not a date"),
    (("keep_until: 2027-03-03", "keep_until: 2026-12-02"), "offboarded[0].keep_until", "is before its date"),
    (("cleo@example.org", "anna@example.org"), "offboarded[0].address", "is a mailbox again"),
    (("cleo@example.org", "cleo@nowhere.org"), "offboarded[0].address", "not declared under domains"),
    (("cleo@example.org", "Cleo';x@example.org"), "offboarded[0].address", "is not a valid email address"),
    (("quota: 3G", "quota: lots"), "offboarded[0].mailbox.quota", "is not a size"),
    (("quota: 3G", "quota: 3G, shell: /bin/sh"), "offboarded[0].mailbox.shell", "unknown key"),
    ((f'[imap], password_hash: "{HASH}"', '[imap], password_hash: "secret"'), "offboarded[0].mailbox.password_hash",
     "plaintext is never stored"),
    (("    keep_until: 2027-03-03\n", ""), "offboarded[0].keep_until", "is required"),
], ids=["keep", "keep-key", "month", "word", "before", "mailbox-again", "domain", "address", "quota",
        "key", "plaintext", "missing"])
def test_bad_offboarding_data_names_the_field(write_data, change, where, message):
    text = (VALID + RECORD + "offboarding: {keep: 6w}\n").replace(*change)
    with pytest.raises(DataError) as e:
        load_system(write_data(text))
    assert f": {where}: " in str(e.value) if where else ": YAML: " in str(e.value)
    assert message in str(e.value)


def test_two_records_of_one_address_are_refused(write_data):
    with pytest.raises(DataError, match=r"offboarded\[1\].address: duplicate offboarded mailbox"):
        load_system(write_data(VALID + RECORD + RECORD.replace("offboarded:\n", "")))


def test_an_offboarded_address_can_no_longer_log_in(example, hosts):
    """The record is in the data, not a login."""
    assert offboard(example, "anna@client-one.example", "--remove") == 0
    from mailstack.dovecot import passwd_file
    system = load_system(example, placeholders=True)
    assert "anna@" not in passwd_file(system, "imap")
    code, _ = run(["mailbox", "list", str(example), "--json"])
    assert code == 0


def test_no_host_step_without_an_inventory(tmp_path, hosts, capsys):
    data = tmp_path / "shop" / "mail.yml"
    data.parent.mkdir()
    data.write_text(VALID)
    before = data.read_bytes()
    assert offboard(data, "anna@example.org", "--remove") == 1
    assert "give --inventory" in capsys.readouterr().err
    assert data.read_bytes() == before and hosts["archive"] == hosts["export"] == []

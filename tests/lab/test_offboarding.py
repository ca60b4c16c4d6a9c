"""A person leaves (README, "Offboarding a person"): `mailstack mailbox offboard`
archives their mail in the backups, hands the client an encrypted export, and makes
the address deliver to a colleague; `mailstack mailbox restore` brings the mailbox
back; the timer deletes what is past its time. The scenario's people are made for it
with `mailstack mailbox add` on a copy of the lab's data."""
import datetime
import imaplib
import json
import os
import re
import secrets
import shlex
import subprocess

import pytest

from .conftest import LAB_DATA, ROOT, deploy, lab_variant
from .mailclient import MAILDIR_STATE, mailbox_state, maildir_state, message, wait_for_message
from .oddmail import odd_messages

LEAVER, GONE, COLLEAGUE = "leaver@acme.test", "gone@acme.test", "alice@acme.test"
# What a mailbox change touches (as `mailstack mailbox ... --deploy` deploys it).
MAIL_HOSTS = ("mx1.acme.test", "mx2.acme.test")
ARTIFACTS = ROOT / ".lab" / "artifacts"


def mailstack(data, *args, stdin=""):
    """`mailstack ...` as the operator runs it, on the lab reached with `data`."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "mailstack"), *args], cwd=ROOT, input=stdin,
                            capture_output=True, text=True, env={**os.environ, "MAILSTACK_LAB_DATA": str(data)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def forget_leftovers(mx1):
    """An earlier run's people: their mail on mx1 (the lab's own data has none of them)."""
    for address in (LEAVER, GONE):
        local, domain = address.split("@")
        mx1.run(f"rm -rf /var/vmail/{domain}/{local} /var/vmail/.offboarded/{domain}/{local}")


@pytest.fixture(scope="module")
def people(lab, hosts, tmp_path_factory):
    """The lab with two more people (made with `mailstack mailbox add`); the lab's own
    data again afterwards."""
    forget_leftovers(hosts["mx1"])
    (ARTIFACTS / "offboarding.txt").unlink(missing_ok=True)     # an earlier run's
    data = lab_variant(tmp_path_factory.mktemp("offboarding") / "mail.yml")
    passwords = {}
    for address in (LEAVER, GONE):
        passwords[address] = secrets.token_urlsafe(16)
        mailstack(data, "mailbox", "add", str(data), address, "--name", "Lea Ver", stdin=passwords[address] + "\n")
    deploy(data, *MAIL_HOSTS)
    yield data, {a: {"address": a, "password": p} for a, p in passwords.items()}
    deploy(LAB_DATA, *MAIL_HOSTS)
    forget_leftovers(hosts["mx1"])


def offboard(data, address, *how, export_dir):
    out = mailstack(data, "mailbox", "offboard", str(data), address, *how, "--inventory", "inventory/lab.py",
                    "--export-dir", str(export_dir))
    passphrase = re.search(r"passphrase \(shown once, kept in (\S+)\): (\S+)$", out, re.M)
    assert passphrase and open(passphrase.group(1)).read().strip() == passphrase.group(2), out
    (export,) = export_dir.glob(f"{address}-*.7z")
    keep(f"$ mailstack mailbox offboard DATA {address} {' '.join(how)} --inventory inventory/lab.py --export-dir DIR\n"
         + out.replace(passphrase.group(2), passphrase.group(2)[:3] + "..."))
    return export, passphrase.group(2)


def keep(text):
    """The commands' own output, kept for the README (the passphrase cut short)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "offboarding.txt", "a") as f:
        f.write(text)


def seven_zip(*args, passphrase=""):
    """7z as the client runs it (the passphrase typed at its prompt)."""
    return subprocess.run(["7z", *args], input=passphrase + "\n", capture_output=True, text=True)


def test_an_offboarded_persons_mail_reaches_their_colleague_their_export_opens_with_7z_and_holds_every_message_and_a_restore_brings_the_mailbox_back(  # noqa: E501
        people, hosts, mx1, mailbox, tmp_path):
    data, person = people
    leaver, mx = person[LEAVER], hosts["mx1"]
    # Their mailbox as a person leaves it: mail in the INBOX, a folder of their own,
    # flags, and mail as the world writes it.
    imap = mx1.imap(leaver)
    imap.create("Projects")
    _, kept = message("someone@example.test", LEAVER, "the project")
    imap.append("Projects", "(\\Seen \\Flagged)", None, kept.encode())
    for _, raw in odd_messages("someone@example.test", LEAVER):
        imap.append("INBOX", "(\\Seen)", None, raw)
    message_id, text = message("someone@example.test", LEAVER, "last mail before leaving")
    assert mx1.deliver([LEAVER], text) == {}
    wait_for_message(imap, message_id)
    seen_before = mailbox_state(imap)
    imap.logout()
    on_disk = maildir_state(mx, LEAVER)

    export, passphrase = offboard(data, LEAVER, "--alias-to", COLLEAGUE, export_dir=tmp_path)

    # The archive: a snapshot of that mailbox alone, named for it, in every repository.
    for target in ("backup.acme.test", "offsite"):
        found = json.loads(mx.check_output(f"mailstack-backup snapshots --target {target}"))
        assert any(s.get("archive") == LEAVER for s in found), (target, found)

    # The export opens with 7z and its passphrase only, names included, and holds
    # every message of every folder, byte for byte, with its flags.
    assert seven_zip("l", str(export), passphrase="wrong passphrase").returncode != 0
    assert b".Projects" not in export.read_bytes()
    opened = seven_zip("x", f"-o{tmp_path / 'opened'}", str(export), passphrase=passphrase)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    exported = json.loads(subprocess.run(["python3", "-c", MAILDIR_STATE, str(tmp_path / "opened" / "Maildir")],
                                         capture_output=True, text=True, check=True).stdout)
    # (Not the mail they had deleted: lazy_expunge's folders stay out of the export.)
    assert exported == {f: m for f, m in on_disk.items() if not f.startswith("EXPUNGED")}
    assert sum(len(m) for m in exported.values()) == sum(len(m) for m in seen_before.values())

    deploy(data, *MAIL_HOSTS)
    # The mailbox is gone from Dovecot, its mail waits aside on mx1...
    with pytest.raises(imaplib.IMAP4.error):
        mx1.imap(leaver)
    assert not mx.file(f"/var/vmail/acme.test/{LEAVER.split('@')[0]}").exists
    assert maildir_state_at(mx, f"/var/vmail/.offboarded/acme.test/{LEAVER.split('@')[0]}/Maildir") == on_disk
    # ... and mail to the address reaches the colleague.
    alice = mailbox(COLLEAGUE)
    message_id, text = message("someone@example.test", LEAVER, "for whoever does Lea's work now")
    assert mx1.deliver([LEAVER], text) == {}
    imap = mx1.imap(alice)
    wait_for_message(imap, message_id)
    imap.logout()

    keep(f"$ mailstack mailbox restore DATA {LEAVER}\n" + mailstack(data, "mailbox", "restore", str(data), LEAVER))
    deploy(data, *MAIL_HOSTS)
    # The mailbox is back with its old password, every folder, message and flag as
    # it was; new mail to it is theirs again, not the colleague's.
    imap = mx1.imap(leaver)
    assert mailbox_state(imap) == seen_before
    message_id, text = message("someone@example.test", LEAVER, "welcome back")
    assert mx1.deliver([LEAVER], text) == {}
    wait_for_message(imap, message_id)
    imap.logout()
    imap = mx1.imap(alice)
    imap.select("INBOX")
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()
    assert not mx.file(f"/var/vmail/.offboarded/acme.test/{LEAVER.split('@')[0]}").exists


def maildir_state_at(host, maildir):
    return json.loads(host.check_output(f"python3 -c {shlex.quote(MAILDIR_STATE)} {shlex.quote(maildir)}"))


def test_the_timer_deletes_an_offboarded_mailbox_once_its_time_is_past_and_no_other(people, hosts, mx1, tmp_path):
    data, person = people
    mx = hosts["mx1"]
    message_id, text = message("someone@example.test", GONE, "before leaving")
    assert mx1.deliver([GONE], text) == {}
    imap = mx1.imap(person[GONE])
    wait_for_message(imap, message_id)
    imap.logout()
    offboard(data, GONE, "--remove", export_dir=tmp_path)
    # Offboarded long ago: its time ended yesterday (the host's days).
    today = datetime.date.fromisoformat(mx.check_output("date +%F"))
    text = data.read_text()
    record = re.search(rf"  - address: {re.escape(GONE)}\n    date: \S+\n    keep_until: \S+\n", text).group(0)
    data.write_text(text.replace(record, f"  - address: {GONE}\n    date: {today - datetime.timedelta(days=91)}\n"
                                         f"    keep_until: {today - datetime.timedelta(days=1)}\n"))
    deploy(data, *MAIL_HOSTS)
    aside = f"/var/vmail/.offboarded/acme.test/{GONE.split('@')[0]}"
    assert mx.file(aside).is_directory
    assert mx.service("mailstack-offboarded.timer").is_enabled
    assert mx.service("mailstack-offboarded.timer").is_running
    mx.check_output("systemctl start mailstack-offboarded.service")
    assert mx.check_output("systemctl show -P Result mailstack-offboarded.service") == "success"
    assert not mx.file(aside).exists
    # Every other mailbox is as it was; the restore says the mail is gone.
    assert maildir_state(mx, COLLEAGUE)
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "mailstack"), "mailbox", "restore", str(data), GONE],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "is deleted" in result.stderr

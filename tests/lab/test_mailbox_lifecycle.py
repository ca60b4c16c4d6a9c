"""An operator's week: a person joins (mailstack mailbox add --deploy --welcome) and
leaves (mailbox remove --deploy), on the lab, through the command line."""
import email
import email.policy
import email.utils
import imaplib
import os
import secrets
import subprocess
import time

import pytest

from .conftest import LAB_DATA, ROOT, deploy, lab_variant
from .mailclient import IMAP

PERSON = "newhire@acme.test"


def mailstack(data, *args, stdin=""):
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "mailstack"), *args], input=stdin,
                            cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MAILSTACK_LAB_DATA": str(data)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def connect(lab, lab_ca):
    return IMAP(lab["hosts"]["mx1"]["address"], lab["hosts"]["mx1"]["fqdn"], 993, lab_ca)


def newest_welcome(imap, since):
    """The welcome mail that arrived after `since` (a used lab may hold an earlier one)."""
    imap.noop()
    nums = imap.search(None, "SUBJECT", f'"Welcome: your mailbox {PERSON}"')[1][0].split()
    if not nums:
        return None
    mail = email.message_from_bytes(imap.fetch(nums[-1], "(BODY.PEEK[])")[1][0][1],
                                    policy=email.policy.default)
    return mail if email.utils.parsedate_to_datetime(mail["Date"]).timestamp() >= since else None


def test_a_person_added_gets_a_welcome_mail_with_their_settings_and_once_removed_cannot_sign_in(
        lab, lab_ca, mx1, mailbox, tmp_path):
    data = lab_variant(tmp_path / "mail.yml")
    before, hashes_before = data.read_text(), (tmp_path / "password-hashes.yml").read_text()
    password = secrets.token_urlsafe(12)
    started = time.time() - 2
    # Someone already at work: adding a person ends no one's session.
    alice = mx1.imap(mailbox("alice@acme.test"))
    alice.select("INBOX")
    try:
        out = mailstack(data, "mailbox", "add", str(data), PERSON, "--name", "Nia Newhire",
                        "--inventory", "inventory/lab.py", "--deploy", "--welcome",
                        stdin=password + "\n")
        assert f"welcome mail sent to {PERSON}" in out
        assert alice.noop()[0] == "OK"
        alice.logout()

        # The new person signs in with the password the operator typed and finds the
        # welcome, from the postmaster, with their settings and never the password.
        imap = connect(lab, lab_ca)
        imap.login(PERSON, password)
        imap.select("INBOX", readonly=True)
        deadline = time.monotonic() + 60
        while not (welcome := newest_welcome(imap, started)):
            assert time.monotonic() < deadline, "no welcome mail arrived"
            time.sleep(2)
        assert welcome["To"] == f"Nia Newhire <{PERSON}>"
        assert welcome["From"].addresses[0].addr_spec == "postmaster@acme.test"
        body = welcome.get_content()
        assert body.startswith("Hello Nia Newhire,")
        for line in (f"user name   {PERSON}", f"IMAP        {lab['hosts']['mx1']['fqdn']}, port 993, TLS",
                     "https://autoconfig.acme.test/mail/config-v1.1.xml"):
            assert line in body, body
        assert password not in welcome.as_string()

        # Leaving: the session still open ends, the login is refused, and the data is
        # exactly as it was before the person came.
        mailstack(data, "mailbox", "remove", str(data), PERSON, "--inventory", "inventory/lab.py",
                  "--deploy")
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            imap.noop()
        assert data.read_text() == before == LAB_DATA.read_text()
        assert (tmp_path / "password-hashes.yml").read_text() == hashes_before
        imap = connect(lab, lab_ca)
        try:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.login(PERSON, password)
        finally:
            imap.shutdown()
    except BaseException:
        deploy(LAB_DATA)       # the lab as its data says, for the scenarios after this one
        raise

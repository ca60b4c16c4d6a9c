"""Users send mail through mx1: 587 (STARTTLS) and 465 (TLS), authenticated,
only as addresses they own; port 25 offers no AUTH."""
import smtplib

import pytest

from .mailclient import message, wait_for_message


@pytest.mark.parametrize("port", [587, 465])
def test_mail_submitted_is_read_back_over_imaps_and_pop3s(mx1, mailbox, port):
    alice, erin = mailbox("alice@acme.test"), mailbox("erin@acme.test")
    message_id, text = message(alice["address"], erin["address"], f"via {port}")
    assert mx1.submit(alice, [erin["address"]], text, port=port) == {}

    imap = mx1.imap(erin)
    assert b"via %d" % port in wait_for_message(imap, message_id)
    imap.logout()
    pop = mx1.pop3(erin)
    bodies = [b"\n".join(pop.retr(i + 1)[1]) for i in range(len(pop.list()[1]))]
    pop.quit()
    assert any(message_id.encode() in b for b in bodies)


def test_port_25_offers_no_auth_even_after_starttls(mx1):
    with mx1.smtp(25) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        s.secure()
        assert not s.has_extn("auth")


def test_submission_offers_auth_only_after_starttls(mx1):
    with mx1.smtp(587) as s:
        s.ehlo()
        assert not s.has_extn("auth")
        s.secure()
        assert "PLAIN" in s.esmtp_features["auth"]


def test_a_forged_sender_is_refused(mx1, mailbox):
    alice = mailbox("alice@acme.test")
    _, text = message("carol@acme.test", "dave@globex.test")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        mx1.submit(alice, ["dave@globex.test"], text, sender="carol@acme.test")
    code, reply = refused.value.recipients["dave@globex.test"]
    assert code == 553 and b"not owned by user alice@acme.test" in reply


def test_sending_as_an_owned_alias_is_accepted(mx1, mailbox):
    alice, dave = mailbox("alice@acme.test"), mailbox("dave@globex.test")
    message_id, text = message("sales@acme.test", dave["address"], "from the sales alias")
    assert mx1.submit(alice, [dave["address"]], text, sender="sales@acme.test") == {}
    imap = mx1.imap(dave)
    wait_for_message(imap, message_id)
    imap.logout()


def test_submission_without_login_is_refused(mx1):
    with mx1.smtp(587) as s:
        s.secure()
        s.mail("alice@acme.test")
        code, _ = s.rcpt("dave@globex.test")
        assert code >= 500

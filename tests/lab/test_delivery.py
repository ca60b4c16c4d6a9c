"""Inbound mail on port 25: aliases, catch-all, sub-addresses, unknown recipients,
and no relaying for strangers."""
import pytest

from .mailclient import message, wait_for_message


@pytest.mark.parametrize("recipient, mailboxes", [
    ("postmaster@acme.test", ["alice@acme.test"]),                    # alias, one target
    ("sales@acme.test", ["alice@acme.test", "carol@acme.test"]),      # alias, two targets
    ("nobody-in-particular@globex.test", ["dave@globex.test"]),       # catch-all
    ("alice+newsletters@acme.test", ["alice@acme.test"]),             # sub-address
])
def test_mail_reaches_every_mailbox_behind_an_address(mx1, mailbox, recipient, mailboxes):
    message_id, text = message("someone@example.test", recipient)
    assert mx1.deliver([recipient], text) == {}
    for address in mailboxes:
        imap = mx1.imap(mailbox(address))
        wait_for_message(imap, message_id)
        imap.logout()


def test_a_catch_all_does_not_take_mail_of_real_mailboxes(mx1, mailbox):
    # frank@globex.test is a real mailbox in the catch-all domain.
    message_id, text = message("someone@example.test", "frank@globex.test")
    assert mx1.deliver(["frank@globex.test"], text) == {}
    imap = mx1.imap(mailbox("frank@globex.test"))
    wait_for_message(imap, message_id)
    imap.logout()
    imap = mx1.imap(mailbox("dave@globex.test"))
    imap.select("INBOX")
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()


def test_unknown_recipient_is_rejected_at_rcpt(mx1):
    with mx1.smtp(25) as s:
        s.secure()
        s.mail("someone@example.test")
        code, reply = s.rcpt("nobody@acme.test")
    assert code == 550 and b"User unknown" in reply


def test_mx1_relays_nothing_for_a_host_out_on_the_internet(hosts):
    # From outside, through the lab DNS, the way a spammer would try it.
    result = hosts["outside"].run(
        "swaks --server mx1.acme.test --from spammer@example.test --to victim@example.test"
        " --quit-after RCPT")
    assert result.rc == 24, result.stdout          # swaks: RCPT TO refused
    assert "554 5.7.1 <victim@example.test>: Relay access denied" in result.stdout


def test_mx1_is_not_an_open_relay(mx1):
    with mx1.smtp(25) as s:
        s.secure()
        s.mail("someone@example.test")
        code, reply = s.rcpt("victim@example.test")
    assert code == 554 and b"Relay access denied" in reply


def test_postfix_never_gives_dovecot_more_deliveries_at_once_than_it_takes_for_one_person(hosts):
    # Dovecot defers a delivery beyond its per-user limit, and the message then waits
    # a whole retry (5 min); a backup MX's flush after an outage is such a burst (one
    # arrived late on Debian 13, whose Dovecot sets that limit). Postfix sends no more.
    mx1 = hosts["mx1"]
    postfix = int(mx1.check_output("postconf -h lmtp_destination_concurrency_limit"))
    dovecot = int(mx1.check_output("doveconf -f protocol=lmtp -h lmtp_user_concurrency_limit"))
    assert dovecot == 0 or postfix <= dovecot, (postfix, dovecot)      # 0: no limit

"""Mail crosses the lab the way it crosses the internet: MX lookup in the lab DNS,
SMTP to the primary, LMTP into Dovecot, read back over IMAP."""
import re
import uuid

from .mailclient import wait_for_message


def test_mail_sent_from_outside_arrives_in_the_imap_inbox(lab, hosts, mailbox, mx1):
    alice = mailbox("alice@acme.test")
    message_id = f"<{uuid.uuid4()}@example.test>"
    message = (f"From: Someone <someone@example.test>\nTo: {alice['address']}\n"
               f"Subject: hello from outside\nMessage-ID: {message_id}\n\nHi Alice!\n")
    # outside's Postfix finds acme.test's MX in the lab DNS, like any sender would.
    hosts["outside"].run_expect([0], f"printf %s {quote(message)} | /usr/sbin/sendmail -t -f someone@example.test")

    imap = mx1.imap(alice, port=143)
    raw = wait_for_message(imap, message_id)
    imap.logout()
    assert b"Hi Alice!" in raw
    # Relayed by outside's Postfix straight to mx1, over TLS.
    outside = re.escape(lab["hosts"]["outside"]["address"].encode())
    assert re.search(rb"Received: from mail\.example\.test \(\S+ \[" + outside +
                     rb"\]\)\s+\(using TLSv1\.[23][^)]*\)[^:]*by mx1\.acme\.test \(Postfix\) with ESMTPS",
                     raw), raw


def quote(text):
    return "'" + text.replace("'", "'\\''") + "'"



"""Users teach rspamd: moving a message into Junk learns spam, moving one out of
Junk learns ham (counts read from rspamd's Bayes statistics)."""
import time

from .mailclient import message, wait_for_message, wait_until

BODY = ("Dear friend, this is a fairly ordinary message with enough words in it "
        "for the statistical filter to tokenize, learn and count it properly. " * 3)


def learned(mx, kind):
    # rspamd's Bayes counters in redis (`rspamc stat` shows them only minutes later).
    return int(mx.check_output(f"redis-cli hget RS learns_{kind}") or 0)


def test_moving_into_junk_learns_spam_and_out_of_it_learns_ham(mx1, hosts, mailbox):
    carol, mx = mailbox("carol@acme.test"), hosts["mx1"]
    message_id, text = message("someone@example.test", carol["address"], "learn me",
                               BODY + message_id_salt())
    assert mx1.deliver([carol["address"]], text) == {}
    imap = mx1.imap(carol)
    wait_for_message(imap, message_id)
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]

    spam, ham = learned(mx, "spam"), learned(mx, "ham")
    assert imap.copy(uid, "Junk")[0] == "OK"
    wait_until(lambda: learned(mx, "spam") == spam + 1, what="rspamd did not learn")

    imap.select("Junk")
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]
    assert imap.copy(uid, "INBOX")[0] == "OK"
    wait_until(lambda: learned(mx, "ham") == ham + 1, what="rspamd did not learn")
    imap.logout()


def message_id_salt():
    # rspamd refuses to learn the same message twice: make each run's unique.
    return f"\nReference {time.time_ns()}.\n"

"""Mail Time Machine: expunged mail stays recoverable, and the operator brings a
mailbox's deleted mail back without touching any other mailbox."""
import time

from .mailclient import message, wait_for_message


def test_an_expunged_message_is_restored_by_the_operator(mx1, hosts, mailbox):
    dave = mailbox("dave@globex.test")
    message_id, text = message("someone@example.test", dave["address"], "keep me")
    assert mx1.deliver([dave["address"]], text) == {}
    imap = mx1.imap(dave)
    wait_for_message(imap, message_id)
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]
    imap.store(uid, "+FLAGS", "\\Deleted")
    imap.expunge()
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()

    today = time.strftime("%Y-%m-%d", time.gmtime())
    out = hosts["mx1"].check_output(f"mailstack-undelete {dave['address']} {today}")
    assert f"{dave['address']}: " in out and "back in INBOX" in out

    imap = mx1.imap(dave)
    assert b"keep me" in wait_for_message(imap, message_id, timeout=5)
    imap.logout()


def test_undelete_refuses_an_unknown_user(hosts):
    result = hosts["mx1"].run("mailstack-undelete nobody@acme.test 2026-01-01")
    assert result.rc != 0

"""Mail Time Machine: expunged mail stays recoverable, and the operator brings a
mailbox's deleted mail back without touching any other mailbox."""
import re
import uuid

from .mailclient import message, wait_for_message

UNDELETE = "/usr/local/sbin/mailstack-undelete"


def assert_installed(host):
    program = host.file(UNDELETE)
    assert program.is_file, f"{UNDELETE} is not on the host"
    assert program.user == "root" and program.mode & 0o111, f"{UNDELETE} is not an executable of root's"


def test_an_expunged_message_is_restored_by_the_operator(mx1, hosts, mailbox):
    mx = hosts["mx1"]
    assert_installed(mx)
    dave = mailbox("dave@globex.test")
    body = f"Keep me: {uuid.uuid4()}"
    message_id, text = message("someone@example.test", dave["address"], "keep me", body=body)
    assert mx1.deliver([dave["address"]], text) == {}
    imap = mx1.imap(dave)
    delivered = wait_for_message(imap, message_id)
    assert body.encode() in delivered
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]
    imap.store(uid, "+FLAGS", "\\Deleted")
    imap.expunge()
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()

    today = mx.check_output("date +%F")       # SAVEDSINCE counts in the host's days
    result = mx.run(f"{UNDELETE} {dave['address']} {today}")
    assert result.rc == 0, result.stderr
    back = re.findall(rf"^{re.escape(dave['address'])}: (\d+) message\(s\) back in (.+)$",
                      result.stdout, re.M)
    assert any(folder == "INBOX" and int(count) >= 1 for count, folder in back), result.stdout

    # The very message dave deleted, once, byte for byte as it was delivered.
    imap = mx1.imap(dave)
    assert wait_for_message(imap, message_id, timeout=5) == delivered
    assert len(imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()) == 1
    imap.logout()


def test_undelete_refuses_an_unknown_user(hosts):
    mx = hosts["mx1"]
    assert_installed(mx)
    result = mx.run(f"{UNDELETE} nobody@acme.test 2026-01-01")
    # "no such user" (EX_NOUSER), not a shell's "not found" (127) or the usage (2),
    # and the operator is told why.
    assert result.rc == 67, (result.rc, result.stdout, result.stderr)
    assert result.stderr.strip() == "mailstack-undelete: no mailbox nobody@acme.test"
    assert result.stdout == ""                 # nothing brought back anywhere

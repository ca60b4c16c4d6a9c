"""POP3 and IMAP on one mailbox: a POP3 client's delete does not make mail vanish
from IMAP devices and webmail until the retention ends (erin@acme.test keeps
POP3-deleted mail 20 s in the lab)."""
import time

from .mailclient import message, wait_for_message


def pop3_index(pop, message_id):
    for i in range(1, len(pop.list()[1]) + 1):
        if message_id.encode() in b"\n".join(pop.top(i, 0)[1]):
            return i
    return None


def test_pop3_delete_keeps_mail_for_imap_until_the_retention_ends(mx1, hosts, mailbox):
    erin = mailbox("erin@acme.test")
    message_id, text = message("someone@example.test", erin["address"], "pop3 then imap")
    assert mx1.deliver([erin["address"]], text) == {}
    imap = mx1.imap(erin)
    wait_for_message(imap, message_id)
    imap.logout()
    delivered = time.monotonic()

    pop = mx1.pop3(erin)
    pop.dele(pop3_index(pop, message_id))
    pop.quit()

    pop = mx1.pop3(erin)
    assert pop3_index(pop, message_id) is None, "POP3 still lists the deleted message"
    pop.quit()
    imap = mx1.imap(erin)
    wait_for_message(imap, message_id, timeout=1)         # still there for IMAP
    imap.logout()

    time.sleep(max(0.0, 21 - (time.monotonic() - delivered)))
    hosts["mx1"].run_expect([0], "systemctl start mailstack-expire.service")
    imap = mx1.imap(erin)
    imap.select("INBOX")
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()


def test_pop3_uidls_do_not_change_between_sessions(mx1, mailbox):
    erin = mailbox("erin@acme.test")
    for _ in range(2):
        _, text = message("someone@example.test", erin["address"])
        assert mx1.deliver([erin["address"]], text) == {}
    time.sleep(1)
    pop = mx1.pop3(erin)
    first = pop.uidl()[1]
    pop.quit()
    pop = mx1.pop3(erin)
    second = pop.uidl()[1]
    pop.quit()
    assert first and first == second

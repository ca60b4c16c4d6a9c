"""POP3 and IMAP on one mailbox: a POP3 client's delete does not make mail vanish
from IMAP devices and webmail until the retention ends (erin@acme.test keeps
POP3-deleted mail 20 s in the lab)."""
import time

from .mailclient import message, wait_for_message, wait_until

RETENTION = 20
# systemd refuses a sixth start of a unit within 10 s (and marks it failed): start the
# expiry at most every 4 s, leaving room for its timer and other scenarios.
EXPIRE_EVERY = 4


def pop3_index(pop, message_id):
    for i in range(1, len(pop.list()[1]) + 1):
        if message_id.encode() in b"\n".join(pop.top(i, 0)[1]):
            return i
    return None


def pop3_uidls(pop, message_ids):
    """{Message-ID: UIDL} of those of `message_ids` this POP3 session lists."""
    by_number = dict(line.decode().split() for line in pop.uidl()[1])
    found = {m: pop3_index(pop, m) for m in message_ids}
    return {m: by_number[str(i)] for m, i in found.items() if i}


def in_imap(mx1, mailbox, message_id):
    imap = mx1.imap(mailbox)
    imap.select("INBOX", readonly=True)
    found = imap.search(None, "HEADER", "Message-ID", message_id)[1] != [b""]
    imap.logout()
    return found


def test_pop3_delete_keeps_mail_for_imap_until_the_retention_ends(mx1, hosts, mailbox):
    erin = mailbox("erin@acme.test")
    message_id, text = message("someone@example.test", erin["address"], "pop3 then imap")
    sent = time.monotonic()               # the server saves it after this
    assert mx1.deliver([erin["address"]], text) == {}
    imap = mx1.imap(erin)
    wait_for_message(imap, message_id)
    imap.logout()

    pop = mx1.pop3(erin)
    pop.dele(pop3_index(pop, message_id))
    pop.quit()

    pop = mx1.pop3(erin)
    assert pop3_index(pop, message_id) is None, "POP3 still lists the deleted message"
    pop.quit()

    # The expiry runs (as its timer does, only more often) until IMAP no longer sees
    # the message: every run within the retention leaves it, and it goes once the
    # retention has passed. (A second of slack: the server counts whole seconds.)
    last_run = [float("-inf")]

    def expired():
        if time.monotonic() - last_run[0] < EXPIRE_EVERY:
            return False
        last_run[0] = time.monotonic()
        hosts["mx1"].run_expect([0], "systemctl start mailstack-expire.service")
        if in_imap(mx1, erin, message_id):
            return False
        after = time.monotonic() - sent
        assert after >= RETENTION - 1, f"gone from IMAP {after:.1f} s after delivery, within the retention"
        return True

    assert in_imap(mx1, erin, message_id), "the POP3 delete removed the message for IMAP too"
    wait_until(expired, timeout=RETENTION + 30,
               what=f"still in IMAP {RETENTION + 30} s after the POP3 delete: the retention never ended")


def test_pop3_uidls_do_not_change_between_sessions(mx1, mailbox):
    erin = mailbox("erin@acme.test")
    message_ids = []
    for _ in range(2):
        message_id, text = message("someone@example.test", erin["address"])
        assert mx1.deliver([erin["address"]], text) == {}
        message_ids.append(message_id)

    def listed():
        pop = mx1.pop3(erin)
        found = len(pop3_uidls(pop, message_ids)) == len(message_ids)
        pop.quit()
        return found

    wait_until(listed, timeout=60, what="POP3 never listed both delivered messages")
    pop = mx1.pop3(erin)
    first = pop.uidl()[1]
    first_ours = pop3_uidls(pop, message_ids)
    pop.quit()
    pop = mx1.pop3(erin)
    second = pop.uidl()[1]
    second_ours = pop3_uidls(pop, message_ids)
    pop.quit()
    assert len(first_ours) == len(message_ids) and first_ours == second_ours
    assert first and first == second

"""Quotas: a warning mail at 80%, and mail that would not fit refused at RCPT time
(never accepted and bounced later). frank@globex.test has a 200K quota."""
import email
import email.policy
import time

from .mailclient import message, wait_for_message

QUOTA = 200 * 1024


def used_bytes(imap):
    typ, data = imap.getquotaroot("INBOX")
    storage = data[1][0].decode()   # b'"User quota" (STORAGE used limit)'
    used, limit = storage.split("STORAGE")[1].strip(" ()").split()
    return int(used) * 1024, int(limit) * 1024


def test_warning_at_80_percent_then_refusal_at_rcpt(mx1, hosts, mailbox):
    frank = mailbox("frank@globex.test")
    hosts["mx1"].run_expect([0], "doveadm expunge -u frank@globex.test mailbox '*' all"
                                 " && doveadm expunge -u frank@globex.test mailbox '.EXPUNGED/*' all")
    imap = mx1.imap(frank)
    assert used_bytes(imap) == (0, QUOTA)

    # Fill to just over 80% with one large message.
    filler = "x" * 76 + "\r\n"
    body = filler * (int(QUOTA * 0.82) // len(filler))
    message_id, text = message("someone@example.test", frank["address"], "big", body)
    assert mx1.deliver([frank["address"]], text) == {}
    wait_for_message(imap, message_id)
    warning = wait_for_message_with_subject(imap, "Your mailbox is 80% full")
    parsed = email.message_from_bytes(warning, policy=email.policy.strict)
    assert "frank@globex.test is now 80% full" in parsed.get_content()
    # Well-formed: what RFC 5322 requires, and no one auto-replies to it.
    assert parsed["Date"].datetime and parsed["Message-ID"].endswith("@acme.test>")
    assert parsed["From"].addresses[0].addr_spec == "postmaster@acme.test"
    assert parsed["Auto-Submitted"] == "auto-generated"

    # A message that does not fit any more is refused while the sender is connected.
    with mx1.smtp(25) as s:
        s.secure()
        s.mail("someone@example.test", [f"SIZE={len(body)}"])
        code, reply = s.rcpt(frank["address"])
    assert (code, b"Mailbox is full" in reply) == (552, True)
    imap.logout()


def wait_for_message_with_subject(imap, subject, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        imap.select("INBOX")
        found = imap.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
        if found:
            return imap.fetch(found[-1], "(RFC822)")[1][0][1]
        time.sleep(0.5)
    raise AssertionError(f"no mail with subject {subject!r}")

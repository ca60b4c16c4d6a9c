"""Mail from mailstack domains passes SPF, DKIM and DMARC at the receiving end;
spam and forgeries of our domains are stopped at the door."""
import json
import smtplib
import time

import pytest

from .mailclient import message, wait_for_message, wait_until

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# rspamd's GTUBE-like pattern for the "add header" action (enabled in the lab).
GTUBE_ADD_HEADER = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def received_on_outside(outside, message_id, timeout=60):
    """The raw message as outside's MTA stored it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = outside.run(f"grep -rl -F '{message_id}' /home/catchall/Maildir/new").stdout.split()
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"{message_id} did not reach outside")


def send_from_outside(outside, sender, messages):
    """Hand [(recipient, text)] to outside's MTA in one go; it finds our MX hosts in DNS
    like any sender out there."""
    script = "".join(f"printf '%s' '{text.replace(chr(13), '')}' | /usr/sbin/sendmail -f {sender} {rcpt}\n"
                     for rcpt, text in messages)
    outside.run_expect([0], f"bash -e <<'SCRIPT'\n{script}SCRIPT")


@pytest.mark.parametrize("sender", ["alice@acme.test", "sales@acme.test"])
def test_mail_to_the_internet_passes_spf_dkim_and_dmarc(mx1, hosts, mailbox, lab, sender):
    alice, outside = mailbox("alice@acme.test"), hosts["outside"]
    message_id, text = message(sender, "friend@example.test", "signed")
    assert mx1.submit(alice, ["friend@example.test"], text, sender=sender) == {}
    path = received_on_outside(outside, message_id)

    dkim = outside.run(f"dkimverify < {path}")
    assert dkim.rc == 0 and "signature ok" in dkim.stdout, dkim.stdout + dkim.stderr
    signature = outside.check_output(f"grep -A1 '^DKIM-Signature' {path}")
    assert " d=acme.test;" in signature           # aligned with From: @acme.test

    mx1_address = lab["hosts"]["mx1"]["address"]
    spf = outside.check_output(
        f"python3 -c \"import spf; print(spf.check2(i='{mx1_address}', s='{sender}',"
        f" h='mx1.acme.test')[0])\"")
    assert spf == "pass"
    dmarc = outside.check_output("python3 -c \"import dns.resolver; print(dns.resolver.resolve("
                                 "'_dmarc.acme.test', 'TXT')[0].to_text())\"")
    assert "p=reject" in dmarc                    # aligned DKIM pass + published policy


def test_a_forged_from_of_our_domain_is_rejected(hosts):
    # From outside: acme.test's name, but neither its servers (SPF) nor its key (DKIM).
    result = hosts["outside"].run(
        "swaks --server mx1.acme.test --from ceo@acme.test --to alice@acme.test"
        " --header 'Subject: urgent wire transfer' --body 'Pay now.'")
    assert result.rc != 0
    assert "554 5.7.1" in result.stdout, result.stdout


def test_gtube_is_rejected_at_smtp_time(mx1):
    _, text = message("someone@example.test", "alice@acme.test", "gtube", GTUBE)
    with mx1.smtp(25) as s:
        s.secure()
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("someone@example.test", ["alice@acme.test"], text)
    assert refused.value.smtp_code == 554


def test_mail_in_the_add_header_band_lands_in_junk(mx1, mailbox):
    carol = mailbox("carol@acme.test")
    message_id, text = message("someone@example.test", carol["address"], "cheap pills",
                               GTUBE_ADD_HEADER)
    assert mx1.deliver([carol["address"]], text) == {}
    imap = mx1.imap(carol)
    raw = wait_for_message(imap, message_id, mailbox="Junk")
    imap.select("INBOX")
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()
    assert b"X-Spam: Yes" in raw


def temporary_refusal(attempt):
    """The SMTP code with which the server refused `attempt` (None if it took it)."""
    try:
        refused = attempt()
    except smtplib.SMTPRecipientsRefused as e:
        return min(code for code, _ in e.recipients.values())
    except smtplib.SMTPResponseException as e:
        return e.smtp_code
    return min((code for code, _ in refused.values()), default=None)


def test_while_rspamd_is_down_mail_waits_and_then_arrives_checked_and_signed(hosts, mx1,
                                                                             mailbox):
    host, outside = hosts["mx1"], hosts["outside"]
    alice, carol = mailbox("alice@acme.test"), mailbox("carol@acme.test")
    inbound_id, inbound = message("someone@example.test", alice["address"], "during the restart")
    outbound_id, outbound = message(carol["address"], "friend@example.test", "during the restart")
    local_id, local = message("root@mx1.acme.test", alice["address"], "local, during the restart")
    host.run_expect([0], "systemctl stop rspamd")
    try:
        # Another server, and a user submitting: both told to retry later, nothing taken.
        assert 400 <= temporary_refusal(lambda: mx1.deliver([alice["address"]], inbound)) < 500
        assert 400 <= temporary_refusal(
            lambda: mx1.submit(carol, ["friend@example.test"], outbound)) < 500
        # Local mail (alerts, root's mail) waits on mx1.
        host.run_expect([0], f"printf '%b' {json.dumps(local)} | sendmail -oi {alice['address']}")
        time.sleep(5)
        imap = mx1.imap(alice)
        imap.select("INBOX")
        assert imap.search(None, "HEADER", "Message-ID", local_id)[1] == [b""]
        imap.logout()
    finally:
        host.run_expect([0], "systemctl start rspamd")
    wait_until(lambda: host.run("python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect("
                                "\"/var/spool/postfix/rspamd/milter.sock\")'").rc == 0, 30,
               "rspamd did not come back")
    # The senders retry: everything goes through rspamd now.
    assert mx1.deliver([alice["address"]], inbound) == {}
    assert mx1.submit(carol, ["friend@example.test"], outbound) == {}
    # Wake the queue and the pickup of local mail rather than wait for their timers: a
    # hint only (postkick dies of SIGPIPE if no pickup process reads its FIFO that
    # moment); the wait below covers pickup's 60 s timer.
    host.run("postqueue -f; postkick public pickup W")
    imap = mx1.imap(alice)
    assert b"X-Spamd-Bar:" in wait_for_message(imap, inbound_id)      # scored by rspamd
    wait_for_message(imap, local_id, 120)     # (rspamd adds no headers to local mail)
    imap.logout()
    path = received_on_outside(outside, outbound_id)
    assert outside.run(f"dkimverify < {path}").rc == 0

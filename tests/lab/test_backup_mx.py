"""A backup MX that loses nothing: mx2 accepts exactly what mx1 would, holds it
while mx1 is away, and hands it over (verified TLS) when mx1 returns, each message
once, in the right mailbox."""
import collections
import re
import secrets
import smtplib
import socket
import subprocess
import sys
import time

import pytest

from .conftest import ROOT
from .mailclient import SMTP, message, wait_until
from .test_trusted_mail import GTUBE, send_from_outside

RUN = secrets.token_hex(4)
# Where each address's mail ends up (aliases and the catch-all resolved on mx1).
ROUTES = {
    "alice@acme.test": ["alice@acme.test"],
    "bob@acme.test": ["bob@acme.test"],
    "carol@acme.test": ["carol@acme.test"],
    "dave@globex.test": ["dave@globex.test"],
    "sales@acme.test": ["alice@acme.test", "carol@acme.test"],
    "postmaster@acme.test": ["alice@acme.test"],
    "info@globex.test": ["dave@globex.test"],
    "whoever@globex.test": ["dave@globex.test"],         # catch-all -> info -> dave
}


@pytest.fixture
def mx2(lab, lab_ca):
    h = lab["hosts"]["mx2"]
    return h["address"], h["fqdn"], lab_ca


def mx2_smtp(mx2):
    s = SMTP(*mx2[:2], 25, mx2[2])
    s.secure()
    return s


def container(lab, name, action):
    """Stop or start a lab machine, as an outage would."""
    subprocess.run([f"lxc-{action}", "-n", lab["hosts"][name]["container"]], check=True)


def network(lab, name, state):
    """Cut (down) or restore (up) a lab machine's link to the lab bridge."""
    subprocess.run(["ip", "link", "set", lab["hosts"][name]["veth"], state], check=True)


def wait_for_smtp(address, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 25), 2) as s:
                if s.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{address}:25 did not come back")


def queued(host, sender):
    """Queue IDs of the messages from `sender` in a host's Postfix queue."""
    out = host.check_output("postqueue -j")
    return [m for m in out.splitlines() if f'"sender": "{sender}"' in m]


def mailstack(*args):
    return subprocess.run([sys.executable, "-m", "mailstack", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def message_ids(mx1, box, tag):
    """Message-IDs containing `tag` in a mailbox, with repeats (IMAP, or POP3 for a
    POP3-only mailbox)."""
    if "imap" in box["protocols"]:
        imap = mx1.imap(box)
        imap.select("INBOX", readonly=True)
        _, (nums,) = imap.search(None, "HEADER", "Message-ID", tag)
        ids = []
        for num in nums.split():
            _, data = imap.fetch(num, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            ids.append(data[0][1].decode().split(":", 1)[1].strip())
        imap.logout()
        return ids
    pop = mx1.pop3(box)
    ids = []
    for i in range(1, len(pop.list()[1]) + 1):
        header = b"\n".join(pop.top(i, 0)[1]).decode(errors="replace")
        found = re.search(r"^Message-ID:\s*(\S+)", header, re.M | re.I)
        if found and tag in found.group(1):
            ids.append(found.group(1))
    pop.quit()
    return ids


def wait_for_all(mx1, mailbox, expected, tag, timeout):
    """{mailbox: Counter(Message-ID)} once every expected message is in (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        got = {box: collections.Counter(message_ids(mx1, mailbox(box), tag)) for box in expected}
        if all(set(got[b]) >= set(expected[b]) for b in expected) or time.monotonic() > deadline:
            return got
        time.sleep(2)


def expected_delivery(sent):
    """{mailbox: Counter(Message-ID)}: each message exactly once per final mailbox."""
    expected = collections.defaultdict(collections.Counter)
    for message_id, recipient in sent:
        for box in ROUTES[recipient]:
            expected[box][message_id] += 1
    return dict(expected)


def test_unknown_recipients_are_refused_at_the_backup_mx(mx2):
    with mx2_smtp(mx2) as s:
        s.mail("someone@example.test")
        assert s.rcpt("nobody@acme.test")[0] == 550
        assert s.rcpt("alice+tag@acme.test")[0] == 250           # address extension
        assert s.rcpt("anyone@globex.test")[0] == 250             # catch-all domain
        assert s.rcpt("victim@example.test")[0] == 554            # no open relay
        s.rset()


def test_mail_the_primary_would_refuse_is_refused_at_the_backup_mx(mx2, mx1, hosts, mailbox):
    # Too big for the limits.
    with mx2_smtp(mx2) as s:
        code, reply = s.mail("someone@example.test", ["SIZE=30000000"])
        assert code == 552 and b"Message size exceeds fixed limit" in reply
        s.rset()
    # Over quota: mx2 asks mx1's Dovecot (frank has a 200K quota).
    with mx2_smtp(mx2) as s:
        s.mail("someone@example.test", ["SIZE=300000"])
        code, reply = s.rcpt("frank@globex.test")
        assert code == 552 and b"Mailbox is full" in reply, reply
        s.rset()
    # Spam: mx2's rspamd rejects it at the end of DATA.
    _, text = message("someone@example.test", "alice@acme.test", "gtube at mx2", GTUBE)
    with mx2_smtp(mx2) as s:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("someone@example.test", ["alice@acme.test"], text)
        assert refused.value.smtp_code == 554


def test_mail_relayed_by_the_backup_mx_reaches_the_primary_over_verified_tls(
        mx2, mx1, hosts, mailbox):
    since = int(hosts["mx2"].check_output("date +%s"))
    message_id, text = message("someone@example.test", "alice@acme.test", "via mx2")
    with mx2_smtp(mx2) as s:
        assert s.sendmail("someone@example.test", ["alice@acme.test"], text) == {}
    got = wait_for_all(mx1, mailbox, {"alice@acme.test": {message_id: 1}}, message_id, 60)
    assert got["alice@acme.test"][message_id] == 1
    log = hosts["mx2"].check_output(f"journalctl --no-pager -o cat --since @{since} -t postfix/relay/smtp")
    assert re.search(r"Verified TLS connection established to mx1\.acme\.test", log), log
    assert "status=sent" in log


def test_mail_sent_while_the_primary_is_down_arrives_after_it_returns(
        lab, mx1, hosts, mailbox):
    outside, mx2 = hosts["outside"], hosts["mx2"]
    sender = f"outage-{RUN}@example.test"
    recipients = list(ROUTES)
    messages, sent = [], []
    for i in range(200):
        rcpt = recipients[i % len(recipients)]
        message_id, text = message(sender, rcpt, f"outage {i}", f"Message {i} of the outage run.",
                                   message_id=f"<outage-{RUN}-{i}@example.test>")
        messages.append((rcpt, text))
        sent.append((message_id, rcpt))
    unknown = [(f"nobody-{RUN}-{i}@acme.test",
                message(sender, f"nobody-{RUN}-{i}@acme.test", "unknown", "To nobody.")[1])
               for i in range(5)]

    container(lab, "mx1", "stop")
    try:
        since = int(mx2.check_output("date +%s"))
        send_from_outside(outside, sender, messages + unknown)
        # Greylisted once at mx2, then all accepted and held there.
        wait_until(lambda: len(queued(mx2, sender)) == 200, 240, "mx2 did not accept all 200")
        wait_until(lambda: not queued(outside, sender), 60, "outside still holds mail")
        log = mx2.check_output(f"journalctl --no-pager -o cat --since @{since} -t postfix/smtpd")
        for rcpt, _ in unknown:
            assert re.search(rf"reject: RCPT from .*: 550 5\.1\.1 <{re.escape(rcpt)}>", log), rcpt
        # The report reads Postfix's live queue, which qmgr is still moving between
        # its deferred and active directories; a snapshot taken mid-move can miss a
        # message (seen once: 195 of 200), so the report is read until it settles.
        per_domain = collections.Counter(r.rsplit("@", 1)[1] for _, r in sent)
        deadline = time.monotonic() + 60
        while True:
            report = mailstack("queue", "inventory/lab.py")
            if all(re.search(rf"^  {domain}: {count} message\(s\)", report, re.M)
                   for domain, count in per_domain.items()):
                break
            assert time.monotonic() < deadline, f"expected {dict(per_domain)}:\n{report}"
            time.sleep(2)
    finally:
        container(lab, "mx1", "start")
        wait_for_smtp(lab["hosts"]["mx1"]["address"])
    returned = time.monotonic()
    mailstack("queue", "inventory/lab.py", "--flush")

    expected = expected_delivery(sent)
    got = wait_for_all(mx1, mailbox, expected, f"outage-{RUN}-", timeout=180)
    print(f"\nmx1 back -> last of 200 delivered: {time.monotonic() - returned:.1f} s")
    assert got == expected          # none lost, none twice, each in the right mailbox
    assert queued(mx2, sender) == []


def test_mail_sent_while_the_backup_is_down_goes_straight_to_the_primary(lab, mx1, hosts, mailbox):
    outside = hosts["outside"]
    sender = f"nobackup-{RUN}@example.test"
    sent, messages = [], []
    for i, rcpt in enumerate(list(ROUTES) * 2):
        message_id, text = message(sender, rcpt, f"no backup {i}", f"Message {i}.",
                                   message_id=f"<nobackup-{RUN}-{i}@example.test>")
        messages.append((rcpt, text))
        sent.append((message_id, rcpt))
    container(lab, "mx2", "stop")
    try:
        send_from_outside(outside, sender, messages)
        expected = expected_delivery(sent)
        got = wait_for_all(mx1, mailbox, expected, f"nobackup-{RUN}-", timeout=120)
        assert got == expected
        assert queued(outside, sender) == []
    finally:
        container(lab, "mx2", "start")
        wait_for_smtp(lab["hosts"]["mx2"]["address"])


def test_primary_cut_off_mid_run_loses_nothing(lab, mx1, mx2, hosts, mailbox):
    sender = f"cut-{RUN}@example.test"
    sent = []
    with mx2_smtp(mx2) as s:
        for i in range(60):
            if i == 30:
                network(lab, "mx1", "down")     # some delivered already, the rest queue
            rcpt = ["alice@acme.test", "dave@globex.test", "sales@acme.test"][i % 3]
            message_id, text = message(sender, rcpt, f"cut {i}", f"Message {i} of the cut run.",
                                       message_id=f"<cut-{RUN}-{i}@example.test>")
            assert s.sendmail(sender, [rcpt], text) == {}
            sent.append((message_id, rcpt))
    try:
        wait_until(lambda: queued(hosts["mx2"], sender), 30, "nothing queued while mx1 was cut off")
    finally:
        network(lab, "mx1", "up")
    mailstack("queue", "inventory/lab.py", "--flush")
    expected = expected_delivery(sent)
    got = wait_for_all(mx1, mailbox, expected, f"cut-{RUN}-", timeout=180)
    assert got == expected

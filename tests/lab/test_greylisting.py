"""Greylisting, as the README says: mail from a well-run server (reverse DNS,
SPF, DKIM, DMARC) arrives at once; a new sender whose mail looks suspicious
(rspamd's score above spam.greylist) is asked to retry, and the retry after the
lab's 10 s is accepted. A domain can turn greylisting off (globex.test does)."""
import re
import time
import uuid

import pytest

from .mailclient import message, wait_for_message
from .test_trusted_mail import send_from_outside

SUSPICIOUS = "10.66.0.22"   # another client on the internet: no reverse DNS


def rspamd_verdict(mx1_host, message_id, since):
    """(action, score, symbols) of rspamd's decision on the message, from its log."""
    line = mx1_host.check_output(f"journalctl --no-pager -o cat -u rspamd --since @{int(since)}"
                                 f" | grep -F 'id: {message_id}' | tail -1")
    m = re.search(r"\(default: \w \(([a-z ]+)\): \[(-?[\d.]+)/[\d.]+\] \[([^\]]*)\]", line)
    assert m, line
    return m.group(1), float(m.group(2)), set(re.findall(r"([A-Z0-9_]+)\(", m.group(3)))


def test_a_normal_message_from_a_well_run_domain_lands_in_the_inbox_at_once_as_ham(
        hosts, mx1, mailbox):
    carol, since = mailbox("carol@acme.test"), time.time()
    sender = f"new-{uuid.uuid4().hex[:8]}@example.test"      # never seen before
    message_id, text = message(sender, carol["address"], "Lunch on Friday",
                               "Hi Carol,\r\n\r\nare we still on for Friday?\r\n\r\nBest,\r\nSam\r\n")
    send_from_outside(hosts["outside"], sender, [(carol["address"], text)])
    imap = mx1.imap(carol)
    raw = wait_for_message(imap, message_id, timeout=8)       # no retry: well before 10 s
    imap.logout()
    action, score, symbols = rspamd_verdict(hosts["mx1"], message_id, since)
    assert (action, score < 2) == ("no action", True), (score, symbols)
    assert {"R_SPF_ALLOW", "R_DKIM_ALLOW", "DMARC_POLICY_ALLOW"} <= symbols, symbols
    assert not {"RDNS_NONE", "HFILTER_HOSTNAME_UNKNOWN", "R_SPF_NA", "DMARC_NA", "R_DKIM_NA",
                "GREYLIST"} & symbols, symbols
    results = re.search(rb"Authentication-Results: [^\n]*(\n\s[^\n]*)*", raw).group(0)
    for verdict in (rb"dkim=pass", rb"spf=pass", rb"dmarc=pass"):
        assert verdict in results, results


@pytest.fixture(scope="module")
def suspicious(hosts):
    """outside with an extra address that has no reverse DNS."""
    outside = hosts["outside"]
    outside.run_expect([0], f"ip addr replace {SUSPICIOUS}/24 dev eth0")
    yield outside
    outside.run(f"ip addr del {SUSPICIOUS}/24 dev eth0")


def swaks(outside, sender, recipient, tag):
    """A message with no Message-ID from an address without reverse DNS, introduced
    with a HELO name that does not resolve: how much spam arrives."""
    data = (f"From: {sender}\\nTo: {recipient}\\nSubject: greylisting {tag}\\n"
            f"Date: %DATE%\\n\\nBody {tag}\\n")
    return outside.run(f"swaks --server mx1.acme.test --local-interface {SUSPICIOUS}"
                       f" --helo bulk-{tag}.invalid --from {sender} --to {recipient}"
                       f" --data '{data}'")


def test_a_suspicious_new_sender_is_deferred_then_accepted_on_retry(suspicious):
    # rspamd remembers senders and message bodies: both are new here.
    tag = uuid.uuid4().hex[:8]
    sender = f"new-{tag}@elsewhere.test"
    first = swaks(suspicious, sender, "carol@acme.test", tag)
    assert "451 4.7.1 Try again later" in first.stdout, first.stdout
    time.sleep(11)      # the lab's greylisting.delay is 10 s
    retry = swaks(suspicious, sender, "carol@acme.test", tag)
    assert retry.rc == 0 and "250 2.0.0 Ok: queued" in retry.stdout, retry.stdout


def test_a_domain_without_greylisting_accepts_the_same_sender_at_once(suspicious):
    tag = uuid.uuid4().hex[:8]
    first = swaks(suspicious, f"new-{tag}@elsewhere.test", "dave@globex.test", tag)
    assert first.rc == 0 and "250 2.0.0 Ok: queued" in first.stdout, first.stdout

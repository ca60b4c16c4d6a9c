"""Mail crosses the lab the way it crosses the internet: MX lookup in the lab DNS,
SMTP to the primary, LMTP into Dovecot, read back over IMAP."""
import re
import uuid

import dns.resolver
import pytest

from .mailclient import IMAP, wait_for_message


def resolver(lab):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [lab["resolver"]]
    r.lifetime = 5
    return r


def test_lab_dns_publishes_mx_10_primary_and_20_backup(lab):
    for domain in lab["domains"]:
        answer = resolver(lab).resolve(domain, "MX")
        assert sorted((r.preference, str(r.exchange)) for r in answer) == [
            (10, "mx1.acme.test."), (20, "mx2.acme.test.")]
    a = resolver(lab).resolve("mx1.acme.test", "A")
    assert [str(r) for r in a] == [lab["hosts"]["mx1"]["address"]]


def test_lab_resolver_refuses_names_outside_the_lab(lab):
    with pytest.raises((dns.resolver.NoNameservers, dns.resolver.NXDOMAIN)):
        resolver(lab).resolve("debian.org", "A")


def test_mail_sent_from_outside_arrives_in_the_imap_inbox(lab, hosts, mailbox, lab_ca):
    alice = mailbox("alice@acme.test")
    message_id = f"<{uuid.uuid4()}@example.test>"
    message = (f"From: Someone <someone@example.test>\nTo: {alice['address']}\n"
               f"Subject: hello from outside\nMessage-ID: {message_id}\n\nHi Alice!\n")
    # outside's Postfix finds acme.test's MX in the lab DNS, like any sender would.
    hosts["outside"].run_expect([0], f"printf %s {quote(message)} | /usr/sbin/sendmail -t -f someone@example.test")

    imap = IMAP(lab["hosts"]["mx1"]["address"], "mx1.acme.test", 143, lab_ca)
    imap.login(alice["address"], alice["password"])
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



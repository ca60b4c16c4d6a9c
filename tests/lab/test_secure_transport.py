"""Mail between servers travels over TLS that is checked, not just offered:
MTA-STS policies (ours served over HTTPS, theirs enforced) and DANE on DNSSEC-signed
zones (our TLSA records checked by senders)."""
import base64
import contextlib
import email
import email.policy
import gzip
import http.client
import json
import re
import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.tsigkeyring
import dns.update
import pytest

from mailstack.dns import mta_sts_policy
from mailstack.model import load_system
from mailstack.secrets import tsig_key

from .conftest import ROOT
from .mailclient import https, message, wait_for_message, wait_until
from .test_trusted_mail import received_on_outside, send_from_outside

SYSTEM = load_system(ROOT / "inventory" / "lab" / "mail.yml")


def log_since(host, since, *units):
    return host.check_output("journalctl --no-pager -o cat --since @%d %s" % (
        since, " ".join(f"-t {u}" for u in units)))


def queue_id_of(host, message_id, timeout=30):
    """The queue ID Postfix gave the message with this Message-ID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"(\w+): message-id=<?" + re.escape(message_id.strip("<>")),
                          host.check_output("journalctl --no-pager -o cat -t postfix/cleanup -n 500"))
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"{message_id} never reached Postfix's queue")


def wait_for_log(host, pattern, since, units, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log_since(host, since, *units))
        if match:
            return match
        time.sleep(1)
    raise AssertionError(f"no log line matching {pattern!r}")


def now(host):
    return int(host.check_output("date +%s"))


@pytest.mark.parametrize("domain", [d.name for d in SYSTEM.domains])
def test_our_mta_sts_policy_is_served_over_https(lab, lab_ca, domain):
    status, headers, body = https(lab["hosts"]["mx1"]["address"], f"mta-sts.{domain}",
                                  "/.well-known/mta-sts.txt", lab_ca)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    body = body.decode()
    assert body == mta_sts_policy(SYSTEM)
    assert "mode: enforce" in body
    assert {"mx1.acme.test", "mx2.acme.test"} <= set(re.findall(r"^mx: (\S+)$", body, re.M))


def test_plain_http_is_redirected_to_https(lab):
    conn = http.client.HTTPConnection(lab["hosts"]["mx1"]["address"], 80, timeout=10)
    conn.request("GET", "/.well-known/mta-sts.txt", headers={"Host": "mta-sts.acme.test"})
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == "https://mta-sts.acme.test/.well-known/mta-sts.txt"


@pytest.mark.parametrize("domain", [d.name for d in SYSTEM.domains] + ["example.test"])
def test_the_lab_resolver_validates_every_zone_with_dnssec(lab, domain):
    query = dns.message.make_query(domain, "MX", want_dnssec=True)
    answer = dns.query.udp(query, lab["resolver"], timeout=5)
    assert answer.answer, f"no MX for {domain}"
    assert answer.flags & dns.flags.AD, f"{domain}: answer not validated (no AD flag)"


def test_mail_to_a_domain_with_mta_sts_leaves_over_verified_tls(mx1, hosts, mailbox):
    alice, mx = mailbox("alice@acme.test"), hosts["mx1"]
    since = now(mx)
    message_id, text = message(alice["address"], "friend@example.test", "over MTA-STS")
    assert mx1.submit(alice, ["friend@example.test"], text) == {}
    received_on_outside(hosts["outside"], message_id)
    # example.test enforces MTA-STS: the resolver gives Postfix its policy ...
    assert mx.check_output("postmap -q example.test socketmap:inet:127.0.0.1:8461:postfix").startswith(
        "secure match=mail.example.test servername=hostname")   # (+ TLS-RPT details on Debian 13)
    # ... and the certificate was checked against it.
    wait_for_log(mx, r"Verified TLS connection established to mail\.example\.test", since,
                 ["postfix/smtp"])


@contextlib.contextmanager
def impostor(outside):
    """outside's MTA presents a certificate nobody vouches for (an attacker in the path)."""
    outside.run_expect([0], "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                       " -days 1 -subj /CN=mail.example.test -keyout /root/rogue.key"
                       " -out /root/rogue.pem 2>/dev/null")
    chain = outside.check_output("postconf -h smtpd_tls_chain_files")
    try:
        outside.run_expect([0], "postconf -e 'smtpd_tls_chain_files = /root/rogue.key, /root/rogue.pem'"
                           " && postfix reload")
        yield
    finally:
        outside.run_expect([0], f"postconf -e 'smtpd_tls_chain_files = {chain}' && postfix reload")


def held_for_an_impostor(mx1, mx, outside, alice, subject):
    """A message to example.test while an impostor answers for it: Postfix refuses the
    certificate and keeps the message; its queue ID."""
    with impostor(outside):
        since = now(mx)
        message_id, text = message(alice["address"], "friend@example.test", subject)
        assert mx1.submit(alice, ["friend@example.test"], text) == {}
        queue_id = queue_id_of(mx, message_id)
        wait_for_log(mx, queue_id + r": .*Server certificate not verified", since,
                     ["postfix/smtp"])
        assert queue_id in mx.check_output("postqueue -p")
        assert outside.run(f"grep -rlF '{message_id}' /home/catchall/Maildir/new").stdout == ""
    return message_id, queue_id


def test_mail_to_an_mta_sts_domain_waits_while_its_certificate_cannot_be_verified(
        mx1, hosts, mailbox):
    alice, mx, outside = mailbox("alice@acme.test"), hosts["mx1"], hosts["outside"]
    message_id, queue_id = held_for_an_impostor(mx1, mx, outside, alice, "not to an impostor")
    # The real certificate is back: the held message goes out.
    mx.run_expect([0], f"postqueue -i {queue_id}")
    received_on_outside(outside, message_id)


def tls_reports(outside):
    """Paths of the TLS reports (RFC 8460) for example.test in its catch-all mailbox."""
    found = outside.run("grep -lis '^TLS-Report-Domain: example.test' /home/catchall/Maildir/new/*")
    return set(found.stdout.split())


# A reportd of the test's own (its own job database, reports sent within 1 s instead
# of spread over 10 h), on the same collector and configuration as the host's.
REPORTD = ("sed -e 's|^dbname = .*|dbname = /var/lib/tlsrpt/test-reportd.sqlite|' "
           "-e 's|^\\[tlsrpt_reportd\\]$|&\\nspread_out_delivery = 1|' /etc/tlsrpt/tlsrpt.cfg "
           "> /var/lib/tlsrpt/test.cfg && rm -f /var/lib/tlsrpt/test-reportd.sqlite && "
           "{ nohup timeout 180 runuser -u tlsrpt -- /opt/mailstack/tlsrpt/bin/tlsrpt-reportd "
           "--config_file /var/lib/tlsrpt/test.cfg >/var/lib/tlsrpt/test.log 2>&1 & "
           "echo $! > /var/lib/tlsrpt/test.pid; }")


@pytest.mark.mail_hosts_on("trixie")
def test_a_domain_asking_for_tls_reports_gets_the_days_failed_and_good_sessions(mx1, hosts, mailbox):
    alice, mx, outside = mailbox("alice@acme.test"), hosts["mx1"], hosts["outside"]
    known = tls_reports(outside)
    # One session refused (an impostor's certificate), then the same mail over good TLS.
    message_id, queue_id = held_for_an_impostor(mx1, mx, outside, alice, "reported")
    mx.run_expect([0], f"postqueue -i {queue_id}")
    received_on_outside(outside, message_id)
    # The day ends: the collector's own day roll-over (its SIGUSR2) closes today once
    # it has written what Postfix told it (it commits after 5 s of quiet).
    time.sleep(6)
    mx.run_expect([0], "systemctl kill -s USR2 --kill-whom=main tlsrpt-collectd.service")
    mx.run_expect([0], REPORTD)
    try:
        wait_until(lambda: tls_reports(outside) - known, 120, "no TLS report reached example.test")
    finally:
        mx.run("kill $(cat /var/lib/tlsrpt/test.pid); rm -f /var/lib/tlsrpt/test.*")
    (path,) = tls_reports(outside) - known
    raw = base64.b64decode(outside.check_output(f"base64 -w0 {path}"))
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["From"].addresses[0].domain == "acme.test" and mail["TLS-Report-Submitter"]
    (part,) = [p for p in mail.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    report = json.loads(gzip.decompress(part.get_content()))
    assert report["organization-name"] == SYSTEM.name and report["contact-info"] == SYSTEM.postmaster
    (policy,) = [p for p in report["policies"] if p["policy"]["policy-domain"] == "example.test"]
    assert policy["policy"]["policy-type"] == "sts"
    assert "mode: enforce" in policy["policy"]["policy-string"]
    assert policy["summary"]["total-failure-session-count"] >= 1
    assert policy["summary"]["total-successful-session-count"] >= 1
    assert any(f["receiving-mx-hostname"] == "mail.example.test" and f["failed-session-count"] >= 1
               for f in policy["failure-details"]), policy["failure-details"]


def test_mail_from_outside_reaches_us_over_dane_verified_tls(mx1, hosts, mailbox):
    alice, outside = mailbox("alice@acme.test"), hosts["outside"]
    since = now(outside)
    message_id, text = message("friend@example.test", alice["address"], "over DANE")
    send_from_outside(outside, "friend@example.test", [(alice["address"], text)])
    imap = mx1.imap(alice)
    wait_for_message(imap, message_id, timeout=90)   # greylisted once, then retried
    imap.logout()
    wait_for_log(outside, r"Verified TLS connection established to mx1\.acme\.test", since,
                 ["postfix/smtp"])


def test_senders_checking_dane_hold_mail_while_our_tlsa_record_is_wrong(mx1, hosts, mailbox, lab):
    alice, outside, dns_host = mailbox("alice@acme.test"), hosts["outside"], hosts["dns"]
    key = tsig_key(SYSTEM.name, SYSTEM.dns.publish.tsig_algorithm)
    update = dns.update.UpdateMessage("acme.test", keyring=dns.tsigkeyring.from_text(
        {key["name"]: (key["algorithm"], key["secret"])}), keyalgorithm=key["algorithm"])
    update.replace("_25._tcp.mx1.acme.test.", 60, "TLSA", "3 1 1 " + "00" * 32)
    try:
        assert dns.query.tcp(update, SYSTEM.dns.publish.server, port=SYSTEM.dns.publish.port,
                             timeout=10).rcode() == 0
        # Forget the good record: the resolver's cache, and outside's Postfix (its smtp
        # processes keep TLSA answers for their TTL).
        dns_host.run_expect([0], "systemctl restart unbound")
        outside.run_expect([0], "postfix reload")
        since = now(outside)
        message_id, text = message("friend@example.test", alice["address"], "wrong TLSA")
        send_from_outside(outside, "friend@example.test", [(alice["address"], text)])
        queue_id = queue_id_of(outside, message_id)
        wait_for_log(outside, queue_id + r": .*Server certificate not verified",
                     since, ["postfix/smtp"])
    finally:
        subprocess.run([sys.executable, "-m", "mailstack", "publish", "inventory/lab.py"],
                       cwd=ROOT, check=True)
        dns_host.run_expect([0], "systemctl restart unbound")
        outside.run_expect([0], "postfix reload")
    outside.run_expect([0], f"postqueue -i {queue_id}")
    imap = mx1.imap(alice)
    wait_for_message(imap, message_id, timeout=90)
    imap.logout()

"""Every record a mail domain needs is generated from the model, published by
RFC 2136 (TSIG) to the lab's Knot, and resolvable through the lab resolver."""
import subprocess
import sys

import dns.resolver
import pytest

from mailstack.dns import zone_records
from mailstack.facts import TLSA_COMMAND
from mailstack.model import load_system
from mailstack.status import wanted_records, wrong_records

from .conftest import ROOT
from .mailclient import wait_until

SYSTEM = load_system(ROOT / "inventory" / "lab" / "mail.yml")


@pytest.fixture(scope="module")
def expected(lab, hosts):
    tlsa = {lab["hosts"]["mx1"]["fqdn"]: hosts["mx1"].check_output(TLSA_COMMAND).strip()}
    zones = zone_records(SYSTEM, facts={"tlsa": tlsa})
    return [r for d in SYSTEM.domains for r in zones[d.name]]


def test_every_generated_record_resolves_with_its_value(resolver, expected):
    assert {("_25._tcp.mx1.acme.test.", "TLSA"), ("_mta-sts.globex.test.", "TXT"),
            ("_dmarc.acme.test.", "TXT"), ("_submissions._tcp.globex.test.", "SRV")} <= set(
        wanted_records(expected))
    assert wrong_records(resolver, expected) == {}


def test_published_records_survive_a_restart_of_the_dns_server(lab, hosts, expected):
    """Knot applies its zone files' difference at every start: published records that
    lived only in its journal were gone after a restart or a reboot of the DNS host
    (no MX for any domain until the next publish)."""
    hosts["dns"].run_expect([0], "systemctl restart knot")
    authoritative = dns.resolver.Resolver(configure=False)
    authoritative.nameservers = [SYSTEM.dns.publish.server]
    authoritative.port = SYSTEM.dns.publish.port
    authoritative.lifetime = 5

    def answers():
        try:
            return bool(authoritative.resolve("acme.test", "SOA"))
        except dns.exception.DNSException:
            return False
    wait_until(answers, timeout=30, what="Knot does not answer after its restart")
    assert wrong_records(authoritative, expected) == {}


def test_a_second_publish_sends_no_update(lab):
    result = subprocess.run([sys.executable, "-m", "mailstack", "publish", "inventory/lab.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    assert "published: 0 zone update(s) sent, 2 zone(s) unchanged" in result.stdout


def test_records_command_prints_a_zone_snippet():
    result = subprocess.run([sys.executable, "-m", "mailstack", "records", "inventory/lab/mail.yml"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    assert "; globex.test\n" in result.stdout
    assert 'globex.test. 300 IN TXT "v=spf1 mx -all"' in result.stdout


def test_a_flood_of_queries_gets_truncated_answers_not_amplified_ones(lab):
    """Knot's response rate limiting: past 200 answers a second to one network, every
    second answer is truncated (TC), so spoofed queries cannot be amplified; a real
    resolver retries those over TCP. Knot's bucket holds up to 4 s of answers (800)
    when the network has been quiet, so the flood is larger than that."""
    import socket

    import dns.flags
    import dns.message
    address = lab["hosts"]["dns"]["address"]
    query = dns.message.make_query("acme.test", "TXT", want_dnssec=True).to_wire()
    sent, raw = 4000, []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for _ in range(sent):
            s.sendto(query, (address, 5300))
            try:                       # read as we go: the socket's buffer is small
                while True:
                    raw.append(s.recv(65535))
            except BlockingIOError:
                pass
        s.settimeout(0.5)
        try:
            while True:
                raw.append(s.recv(65535))
        except socket.timeout:
            pass
    answers = [dns.message.from_wire(r) for r in raw]
    truncated = [a for a in answers if a.flags & dns.flags.TC]
    full = len(answers) - len(truncated)
    # At most the bucket plus a few seconds' refill got a full answer; of the rest,
    # about one in two got a truncated one and the others none at all.
    assert full < sent / 2 and len(truncated) > sent / 8 and len(answers) < sent, (
        full, len(truncated), len(answers))


@pytest.fixture
def lab_dns_only(lab, monkeypatch):
    """Any lookup that names no server goes to the lab resolver too, never to the
    operator machine's own."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [lab["resolver"]]
    monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
    return [lab["resolver"]]


@pytest.mark.parametrize("domain", [d.name for d in SYSTEM.domains])
def test_checkdmarc_finds_every_record_valid_and_warns_of_nothing(lab_dns_only, domain):
    """PyPI's checkdmarc, an independent validator, reads the domain's SPF, DMARC
    (with the authorization a report address in another domain needs, RFC 7489 7.1),
    TLS-RPT, MX and NS records through the lab resolver. (Its MTA-STS and BIMI checks
    fetch over HTTPS by the machine's own resolver, and its DNSSEC check wants a DS
    record in a parent zone, which .test has not: left out. test_secure_transport.py
    checks MTA-STS with real senders, test_the_lab_resolver_validates_every_zone_with_dnssec
    the signatures.)"""
    from checkdmarc import check_mx, check_ns
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.smtp_tls_reporting import check_smtp_tls_reporting
    from checkdmarc.spf import check_spf
    results = {check.__name__: check(domain, nameservers=lab_dns_only)
               for check in (check_spf, check_dmarc, check_smtp_tls_reporting, check_mx, check_ns)}
    problems = {name: {k: r[k] for k in ("error", "warnings") if r.get(k)} for name, r in results.items()}
    assert not any(problems.values()), problems
    assert all(results[name]["valid"] for name in ("check_spf", "check_dmarc", "check_smtp_tls_reporting"))

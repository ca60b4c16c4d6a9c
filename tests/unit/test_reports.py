"""`mailstack reports` reads what receivers sent with parsedmarc (PyPI): the
summary names our hosts among the sources, counts each report once, marks what
our policy has receivers reject, and sums TLS failures per domain."""
import base64
import json

from mailstack import reports
from mailstack.host.reports import is_report
from mailstack.model import load_system

from ..reports import aggregate_report, tls_report
from .conftest import VALID


def lines(*raws):
    return "".join(json.dumps({"mailbox": "anna@example.org", "raw": base64.b64encode(r).decode()}) + "\n"
                   for r in raws)


def test_a_passing_host_of_ours_and_a_forgery_are_told_apart(write_data):
    system = load_system(write_data(VALID))
    ok = aggregate_report("receiver.test", "r1", "example.org", [("192.0.2.10", 12, "pass", "pass"),
                                                                 ("203.0.113.9", 3, "fail", "fail")])
    again = ok                                             # the same report mailed twice
    other = aggregate_report("big.test", "r7", "example.org", [("192.0.2.10", 5, "pass", "fail")])
    parsed, unreadable = reports.parse(lines(ok, again, other))
    s = reports.summary(system, parsed)
    assert unreadable == 0
    assert s["dmarc"]["example.org"]["reporters"] == ["big.test", "receiver.test"]
    assert s["dmarc"]["example.org"]["sources"] == [
        {"source": "203.0.113.9", "host": None, "dmarc": "fail", "messages": 3, "dispositions": ["reject"]},
        {"source": "192.0.2.10", "host": "mx1.example.org", "dmarc": "pass", "messages": 17,
         "dispositions": ["none"]}]
    text = reports.text(s)
    assert "192.0.2.10 (mx1.example.org)" in text
    assert "203.0.113.9" in text and "<- rejected by our policy" in text
    assert "example.org: DMARC p=reject, reports from big.test, receiver.test; 3 message(s) failed" in text


def test_tls_failures_are_summed_per_domain(write_data):
    system = load_system(write_data(VALID))
    parsed, _ = reports.parse(lines(tls_report("big.test", "t1", "example.org", 40, {"certificate-expired": 2}),
                                    tls_report("receiver.test", "t2", "example.org", 8, {})))
    s = reports.summary(system, parsed)
    assert s["tls"]["example.org"] == {"successful": 48, "failed": 2, "failures": {"certificate-expired": 2}}
    assert "example.org: TLS-RPT: 48 session(s) ok, 2 failed (certificate-expired 2)" in reports.text(s)


def test_a_message_that_is_no_report_is_counted_not_fatal(write_data):
    broken = aggregate_report("x.test", "r", "example.org", []).replace(b"H4sI", b"AAAA", 1)
    parsed, unreadable = reports.parse(lines(broken))
    assert parsed == [] and unreadable == 1
    assert reports.text(reports.summary(load_system(write_data(VALID)), parsed), unreadable).endswith(
        "(1 report message(s) could not be read)")


def test_the_host_reads_only_mail_with_a_report_attached():
    assert is_report(aggregate_report("x.test", "r", "example.org", [("192.0.2.10", 1, "pass", "pass")]))
    assert is_report(tls_report("x.test", "t", "example.org", 1, {}))
    assert not is_report(b"From: a@b.test\r\nSubject: lunch\r\n\r\nAt noon?\r\n")

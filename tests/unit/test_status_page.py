"""The status page (mailstack/page.py): one file with everything in it, the checks
as rows, a line per host in each chart, and the data's text escaped."""
import re

from mailstack import page
from mailstack.status import Check

CHECKS = [Check("services", "mx1.example.org", "dovecot inactive"), Check("disk", "mx1.example.org", "", "/ 41%"),
          Check("dns records", "<script>alert(1)</script>.example", "")]
REPORTS = {"dmarc": {"example.org": {"policy": "reject", "reporters": ["receiver.example"], "sources": [
    {"source": "192.0.2.10", "host": "mx1.example.org", "dmarc": "pass", "messages": 12, "dispositions": ["none"]},
    {"source": "203.0.113.9", "host": None, "dmarc": "fail", "messages": 3, "dispositions": ["reject"]}]}},
    "tls": {}}
HISTORY = {"volume": {"mx1.example.org": [[0, 1.0], [60, 3.0]], "mx2.example.org": [[0, 0.0], [60, 1.0]]},
           "spam": {"all": [[0, 0.25], [60, 0.5]]}, "queue": {}}


def test_the_page_holds_every_check_the_reports_and_a_line_per_series():
    text = page.render("lab", CHECKS, REPORTS, HISTORY)
    assert len(re.findall(r'<tr class="(ok|fail)"><td>', text)) == len(CHECKS) + 2
    assert '<tr class="fail"><td>services</td><td>mx1.example.org</td>' in text
    assert "1 problem(s) in 3 checks" in text
    assert "203.0.113.9" in text and "(our policy: rejected)" in text
    lines = {m.group(1): m.group(0) for m in re.finditer(r'<figure id="chart-(\w+)">.*?</figure>', text, re.S)}
    assert [len(re.findall("<polyline", lines[k])) for k in ("volume", "spam", "queue")] == [2, 1, 0]
    assert "no data in this time" in lines["queue"]


def test_the_page_loads_nothing_and_runs_nothing():
    text = page.render("lab", CHECKS, REPORTS, HISTORY)
    assert "<script" not in text.replace("&lt;script&gt;", "")
    assert not re.search(r'(src|href)=', text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in text


def test_without_a_monitoring_host_the_page_says_so():
    text = page.render("lab", CHECKS, None, None)
    assert text.count("no monitoring host in this system") == 3
    assert "no DMARC or TLS-RPT report arrived in this time" in text

"""`mailstack status` on the lab: green when all is well; each fault made for real
(a service stopped, a DNS record deleted) is named, with exit 1, and it is green
again once the fault is fixed."""
import json
import subprocess
import sys
import time

import dns.query
import dns.update
import pytest

from mailstack.__main__ import inventory_system
from mailstack.publish import _keyring

from .conftest import ROOT
from .mailclient import message, wait_until
from .test_backup_mx import mx2, mx2_smtp  # noqa: F401 (a fixture)

INVENTORY = "inventory/lab.py"
ARTIFACTS = ROOT / ".lab" / "artifacts"
# The quota scenarios fill frank@globex.test (200K) on purpose: a lab that ran them
# has a full mailbox, which status rightly names.
LAB_MADE = {("quota", "mx1.acme.test")}


def status(lab):
    result = subprocess.run([sys.executable, "-m", "mailstack", "status", INVENTORY, "--json",
                             "--resolver", lab["resolver"], "--ca", lab["ca_certificate"]],
                            cwd=ROOT, capture_output=True, text=True)
    report = json.loads(result.stdout)
    return result.returncode, {(c["check"], c["target"]): c["problem"] for c in report["checks"]}


def keep_table(lab, name):
    """The table a person reads, kept for the README (.lab/artifacts/)."""
    result = subprocess.run([sys.executable, "-m", "mailstack", "status", INVENTORY, "--resolver",
                             lab["resolver"], "--ca", lab["ca_certificate"]], cwd=ROOT, capture_output=True,
                            text=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(f"exit {result.returncode}\n" + result.stdout)


def problems(rows):
    return {k: v for k, v in rows.items() if v and not (k in LAB_MADE and "frank@globex.test" in v
                                                         and v.count("%") == 1)}


@pytest.fixture(scope="module")
def backed_up(hosts):
    """A backup of every host today, as the nightly timer makes (status wants one
    younger than 26 hours)."""
    for name in ("mx1", "mx2", "dns", "backup"):
        hosts[name].run("systemctl start mailstack-backup.service")
    return True


def test_status_of_a_well_lab_names_nothing(lab, backed_up):
    code, rows = status(lab)
    assert problems(rows) == {}, rows
    checks = {check for check, _ in rows}
    assert {"services", "certificate", "queue", "disk", "quota", "backup", "dns records", "dnssec",
            "mta-sts policy", "mx reachable"} <= checks
    assert ("mx reachable", "mx1.acme.test -> mx2.acme.test:25") in rows
    assert ("mx reachable", "mx2.acme.test -> mx1.acme.test:25") in rows
    assert code == (1 if any(rows.values()) else 0)
    keep_table(lab, "status.txt")


def test_a_stopped_service_is_named_until_it_runs_again(lab, hosts, backed_up):
    mx1 = hosts["mx1"]
    mx1.run_expect([0], "systemctl stop dovecot")
    try:
        code, rows = status(lab)
        assert code == 1 and rows[("services", "mx1.acme.test")] == "dovecot inactive", rows
        keep_table(lab, "status-dovecot-stopped.txt")
    finally:
        mx1.run_expect([0], "systemctl start dovecot")
    code, rows = status(lab)
    assert rows[("services", "mx1.acme.test")] == "" and problems(rows) == {}, rows


def forget_cached_answers(hosts):
    """The lab resolver's cache emptied, as the records' TTL (5 min) would."""
    hosts["dns"].run_expect([0], "systemctl restart unbound")


def test_a_deleted_dns_record_is_named_until_it_is_published_again(lab, hosts, backed_up):
    system, data = inventory_system(ROOT / INVENTORY)
    key, server = data["tsig_key"], system.dns.publish
    update = dns.update.UpdateMessage("globex.test", keyring=_keyring(key), keyname=key["name"],
                                      keyalgorithm=key["algorithm"])
    update.delete("_dmarc.globex.test.", "TXT")
    dns.query.tcp(update, server.server, port=server.port, timeout=10)
    forget_cached_answers(hosts)
    try:
        def named():
            return status(lab)[1][("dns records", "globex.test")]
        wait_until(lambda: named() == "_dmarc.globex.test. TXT: missing", timeout=60,
                   what="status did not name the deleted DMARC record")
    finally:
        subprocess.run([sys.executable, "-m", "mailstack", "publish", INVENTORY], cwd=ROOT, check=True,
                       capture_output=True)
        forget_cached_answers(hosts)
    wait_until(lambda: status(lab)[1][("dns records", "globex.test")] == "", timeout=60,
               what="status still names the DMARC record after publish")


def test_an_mx_listed_on_a_blocklist_is_named_until_it_is_delisted(lab, hosts, backed_up):
    outside, mx1 = hosts["outside"], lab["hosts"]["mx1"]
    row = ("dnsbl", f"{mx1['fqdn']} on dnsbl.test")
    outside.run_expect([0], f"printf ':127.0.0.2:Sent spam to our traps\\n{mx1['address']}\\n' "
                            "> /var/lib/rbldns/listed")
    try:
        wait_until(lambda: status(lab)[1][row] == "listed (127.0.0.2): Sent spam to our traps", timeout=60,
                   what="status did not name mx1's listing")
    finally:
        outside.run_expect([0], ": > /var/lib/rbldns/listed")
    wait_until(lambda: status(lab)[1][row] == "", timeout=60, what="status still names mx1 after its delisting")


def test_a_certificate_about_to_expire_is_named_until_it_is_renewed(lab, hosts, backed_up):
    """A certificate of 5 days (same key, so DANE still matches) where mx2's is kept."""
    mx2 = hosts["mx2"]
    live = "/etc/letsencrypt/live/mailstack"
    mx2.run_expect([0], f"mv {live}/cert.pem {live}/cert.pem.status-test && "
                        f"openssl req -x509 -key {live}/privkey.pem -subj /CN=mx2.acme.test -days 5 "
                        f"-out {live}/cert.pem")
    try:
        code, rows = status(lab)
        assert code == 1 and rows[("certificate", "mx2.acme.test")] == "expires in 4 days", rows
        keep_table(lab, "status-certificate-expiring.txt")
    finally:
        mx2.run_expect([0], f"mv {live}/cert.pem.status-test {live}/cert.pem")
    code, rows = status(lab)
    assert rows[("certificate", "mx2.acme.test")] == "" and problems(rows) == {}, rows


def test_mail_piling_up_at_the_backup_mx_while_the_primary_is_down_is_named_until_it_is_delivered(
        lab, hosts, mx2, backed_up):
    """mx1's Postfix stopped: the mail mx2 accepts for it waits in mx2's queue; more than
    the data's queue.warn_messages (10 in the lab) is named; once mx1 is back and mx2
    retries, the queue empties and the row is green."""
    primary, backup = hosts["mx1"], hosts["mx2"]
    tag = f"queue-{time.time_ns()}"
    primary.run_expect([0], "systemctl stop postfix")
    try:
        with mx2_smtp(mx2) as s:       # globex.test: no greylisting
            for i in range(12):
                s.sendmail("someone@example.test", ["dave@globex.test"],
                           message("someone@example.test", "dave@globex.test", f"{tag} {i}")[1])
        wait_until(lambda: status(lab)[1][("queue", "mx2.acme.test")].endswith("messages waiting"),
                   timeout=60, what="status did not name mx2's queue")
        code, rows = status(lab)
        assert code == 1 and int(rows[("queue", "mx2.acme.test")].split()[0]) >= 12, rows
        assert rows[("mx reachable", "mx2.acme.test -> mx1.acme.test:25")] == "no answer", rows
        keep_table(lab, "status-queue-full.txt")
    finally:
        primary.run_expect([0], "systemctl start postfix")
    backup.run_expect([0], "postqueue -f")
    wait_until(lambda: status(lab)[1][("queue", "mx2.acme.test")] == "", timeout=120,
               what="mx2's queue was still named after mx1 came back")


def test_the_status_page_shows_the_checks_reports_and_charts_in_a_browser(lab, hosts, backed_up, tmp_path):
    """mailstack status --html: the page opened in Chromium (headless, no network of
    its own) shows a row per check, the reports' section and the monitoring host's
    charts with a line per MX; its screenshot is kept for the README."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    html = ARTIFACTS / "status.html"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "mailstack", "status", INVENTORY, "--json", "--html", str(html),
                             "--chart-range", "2h", "--resolver", lab["resolver"], "--ca", lab["ca_certificate"]],
                            cwd=ROOT, capture_output=True, text=True)
    checks = json.loads(result.stdout)["checks"]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1700",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-pings"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        browser.get(html.as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "#checks tr.ok, #checks tr.fail")
        assert len(rows) == len(checks)
        failing = browser.find_elements(By.CSS_SELECTOR, "#checks tr.fail")
        assert len(failing) == sum(1 for c in checks if c["problem"])
        assert "Who sends as our domains" in browser.find_element(By.TAG_NAME, "body").text
        for chart in ("volume", "queue"):
            lines = browser.find_elements(By.CSS_SELECTOR, f"#chart-{chart} polyline.series")
            assert {line.get_attribute("data-label") for line in lines} >= {"mx1.acme.test", "mx2.acme.test"}
            # Drawn: each line has a size on the screen.
            assert all(line.size["width"] > 0 for line in lines), chart
        assert browser.find_element(By.ID, "chart-spam").is_displayed()
        browser.save_screenshot(str(ARTIFACTS / "status-page.png"))
    finally:
        browser.quit()

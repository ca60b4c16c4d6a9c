"""Monitoring on the lab's backup host (Prometheus and Alertmanager, Debian's): a
service down on mx1 mails the alert address an alert, and its end mails that it is
resolved; every rule's series is read from every host it concerns; the exporters
answer the monitoring host and nobody else."""
import json
import socket
import time

import pytest

from .conftest import LAB_DATA, deploy, lab_variant
from .mailclient import wait_until

MONITORING = "backup.acme.test"
# alerts@acme.test forwards to the ops team's address outside, whose mail lands in
# outside's catch-all Maildir.
OUTSIDE_MAIL = "/home/catchall/Maildir/new"


def alert_mails(outside, status, about="ServiceDown mx1.acme.test dovecot.service"):
    """Files of Alertmanager's mails with `status` (FIRING or RESOLVED) in outside's
    Maildir; the subject names the alert, the host and the service or blocklist
    ("[RESOLVED] ServiceDown mx1.acme.test dovecot.service")."""
    subject = f"^Subject: \\[{status}(:[0-9]+)?\\] " + about.replace(".", "\\.")
    out = outside.run(f"grep -lE '{subject}' {OUTSIDE_MAIL}/* 2>/dev/null").stdout
    return set(out.split())


def prometheus(hosts, query):
    """The monitoring host's Prometheus answer to an instant query (its API on loopback)."""
    out = hosts["backup"].check_output(
        "python3 -c 'import sys, urllib.parse, urllib.request; print(urllib.request.urlopen("
        "\"http://127.0.0.1:9090/api/v1/query?query=\" + urllib.parse.quote(sys.argv[1])).read().decode())' "
        f"'{query}'")
    return json.loads(out)["data"]["result"]


@pytest.fixture(scope="module")
def quick_alerts(tmp_path_factory):
    """The lab's data with alerts after 10 s (30 min otherwise), on the monitoring host
    only; the lab's own data again afterwards."""
    variant = tmp_path_factory.mktemp("quick") / "mail.yml"
    deploy(lab_variant(variant, ("alert_after: 30m", "alert_after: 10s")), MONITORING)
    yield
    deploy(LAB_DATA, MONITORING)


def mails_tried(hosts):
    """How many mails Alertmanager has tried to send (its own counter, sent or not)."""
    out = hosts["backup"].check_output(
        "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9093/metrics\")"
        ".read().decode())'")
    return sum(float(line.split()[-1]) for line in out.splitlines()
               if line.startswith('alertmanager_notifications_total{') and 'integration="email"' in line)


def test_a_service_down_on_mx1_mails_the_alert_address_then_its_end(hosts, quick_alerts):
    outside, mx1 = hosts["outside"], hosts["mx1"]
    before = {s: alert_mails(outside, s) for s in ("FIRING", "RESOLVED")}
    tried = mails_tried(hosts)
    started = time.monotonic()
    mx1.run_expect([0], "systemctl stop dovecot")
    try:
        wait_until(lambda: "dovecot.service" in hosts["backup"].check_output(
            "amtool --alertmanager.url=http://127.0.0.1:9093 alert query alertname=ServiceDown "
            "-o extended || true"), timeout=120, what="no alert for the stopped Dovecot")
        fired = time.monotonic() - started
        # Down until Alertmanager has tried to mail it: a fault that ends within its
        # group wait is never mailed (nor its end).
        wait_until(lambda: mails_tried(hosts) > tried, timeout=60, what="Alertmanager did not try to mail")
    finally:
        # While Dovecot is down, the primary answers 451 at RCPT (no quota answer):
        # the alert waits at Alertmanager, which retries.
        mx1.run_expect([0], "systemctl start dovecot")
    wait_until(lambda: alert_mails(outside, "FIRING") - before["FIRING"], timeout=180,
               what="the alert mail did not reach the alert address")
    wait_until(lambda: alert_mails(outside, "RESOLVED") - before["RESOLVED"], timeout=180,
               what="no mail said the alert was resolved")
    print(f"\nalert raised {fired:.0f} s after Dovecot stopped")


LIVE = "/etc/letsencrypt/live/mailstack"
# (alert mail's subject after the status, [(host, command)] that cause it, [...] that end it)
FAULTS = {
    "blocklisted": ("Blocklisted mx1.acme.test dnsbl.test",
                    [("outside", "printf ':127.0.0.2:Sent spam to our traps\\n10.66.0.11\\n' > /var/lib/rbldns/listed")],
                    [("outside", ": > /var/lib/rbldns/listed")]),
    # A certificate of 5 days with the same key (DANE still matches) where mx2's is kept.
    "certificate expiring": ("CertificateExpiring mx2.acme.test",
                             [("mx2", f"mv {LIVE}/cert.pem {LIVE}/cert.pem.monitoring-test && openssl req -x509 "
                                      f"-key {LIVE}/privkey.pem -subj /CN=mx2.acme.test -days 5 -out {LIVE}/cert.pem")],
                             [("mx2", f"mv {LIVE}/cert.pem.monitoring-test {LIVE}/cert.pem")]),
    # Outside's Postfix stopped: 12 messages for it wait in mx1's queue (the lab warns
    # above 10). The alert itself waits there too, and arrives once outside is back.
    "queue growing": ("QueueGrowing mx1.acme.test",
                      [("outside", "systemctl stop postfix"),
                       ("mx1", "for i in $(seq 12); do printf 'Subject: queue test %s\\n\\nFor the queue.\\n' $i "
                               "| sendmail -f alice@acme.test queue-test@example.test; done")],
                      [("outside", "systemctl start postfix"), ("mx1", "postqueue -f")]),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_found_by_the_hosts_own_checks_mails_the_alert_address_then_its_end(hosts, quick_alerts, fault):
    about, cause, end = FAULTS[fault]
    outside = hosts["outside"]
    before = {s: alert_mails(outside, s, about) for s in ("FIRING", "RESOLVED")}
    tried = mails_tried(hosts)
    for where, command in cause:
        hosts[where].run_expect([0], command)
    try:
        # The host's timer (30 s), the rule's 10 s, Alertmanager's group wait; then
        # Alertmanager mails it (with outside's Postfix stopped, the mail waits at mx1).
        wait_until(lambda: mails_tried(hosts) > tried, timeout=150, what=f"no alert mailed for: {about}")
        if fault != "queue growing":
            wait_until(lambda: alert_mails(outside, "FIRING", about) - before["FIRING"], timeout=60,
                       what=f"the alert mail did not arrive: {about}")
    finally:
        for where, command in end:
            hosts[where].run_expect([0], command)
    wait_until(lambda: alert_mails(outside, "FIRING", about) - before["FIRING"], timeout=120,
               what=f"the alert mail did not arrive: {about}")
    wait_until(lambda: alert_mails(outside, "RESOLVED", about) - before["RESOLVED"], timeout=150,
               what=f"no mail said it was resolved: {about}")


# Each rule's series, from each host it is about.
SERIES = {
    "up": {"dns.acme.test", "mx1.acme.test", "mx2.acme.test", "backup.acme.test"},
    'node_systemd_unit_state{state="active",name="dovecot.service"}': {"mx1.acme.test"},
    'node_systemd_unit_state{state="active",name="knot.service"}': {"dns.acme.test"},
    "node_filesystem_avail_bytes": {"dns.acme.test", "mx1.acme.test", "mx2.acme.test", "backup.acme.test"},
    "mailstack_queue_messages": {"mx1.acme.test", "mx2.acme.test"},
    "mailstack_queue_oldest_seconds": {"mx1.acme.test", "mx2.acme.test"},
    "mailstack_certificate_expiry_timestamp_seconds": {"mx1.acme.test", "mx2.acme.test"},
    'mailstack_dnsbl_listed{zone="dnsbl.test"}': {"mx1.acme.test", "mx2.acme.test"},
    "mailstack_rspamd_scanned_total": {"mx1.acme.test", "mx2.acme.test"},
    # Dovecot's own OpenMetrics, from the primary.
    'dovecot_auth_success_total{job="dovecot"}': {"mx1.acme.test"},
    'dovecot_mail_delivery_total{job="dovecot"}': {"mx1.acme.test"},
}


@pytest.mark.parametrize("series", SERIES)
def test_prometheus_reads_what_each_rule_needs_from_every_host_it_concerns(hosts, series):
    def seen():
        return {r["metric"].get("host") for r in prometheus(hosts, series)}
    wait_until(lambda: SERIES[series] <= seen(), timeout=90, what=f"{series}: {seen()}")


def test_backups_are_watched_on_every_host_that_is_backed_up(hosts):
    hosts["mx2"].run_expect([0], "systemctl start mailstack-backup.service")
    wait_until(lambda: "mx2.acme.test" in {r["metric"].get("host") for r in prometheus(
        hosts, "mailstack_backup_last_success_timestamp_seconds")}, timeout=90,
        what="no backup metric from mx2")


@pytest.mark.parametrize("port", [9100, 9900])       # node exporter, Dovecot
def test_the_exporters_answer_the_monitoring_host_and_nobody_else(lab, hosts, port):
    mx1 = lab["hosts"]["mx1"]["address"]
    # The whole answer: a reader that hangs up early makes the exporter log errors.
    fetch = f"python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://{mx1}:{port}/metrics\").read()[:300])'"
    assert "# HELP" in hosts["backup"].check_output(fetch)
    # From the operator's machine (not a monitoring host): dropped by mx1's firewall.
    with pytest.raises(OSError):
        socket.create_connection((mx1, port), timeout=3).close()

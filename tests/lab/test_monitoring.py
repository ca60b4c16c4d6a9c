"""Monitoring on the lab's backup host (Prometheus and Alertmanager, Debian's): a
service down on mx1 mails the postmaster an alert, and its end mails that it is
resolved; the exporters answer the monitoring host and nobody else."""
import socket
import time

import pytest

from .mailclient import wait_until

POSTMASTER = "alice@acme.test"      # postmaster@acme.test delivers to her


def alert_mails(imap, since, status):
    """Alertmanager's mails about a service down on mx1 with `status` (FIRING or
    RESOLVED) that arrived since `since` (IMAP date); its subject names the alert and
    the host ("[RESOLVED] ServiceDown mx1.acme.test ...")."""
    imap.select("INBOX")
    found = imap.search(None, "SINCE", since, "FROM", "alerts@backup.acme.test", "SUBJECT", f"[{status}",
                        "SUBJECT", "ServiceDown", "SUBJECT", "mx1.acme.test")[1][0]
    return found.split()


def test_a_service_down_on_mx1_mails_the_postmaster_then_its_end(mx1, mailbox, hosts):
    imap = mx1.imap(mailbox(POSTMASTER))
    since = time.strftime("%d-%b-%Y", time.gmtime())
    before = {s: set(alert_mails(imap, since, s)) for s in ("FIRING", "RESOLVED")}
    started = time.monotonic()
    hosts["mx1"].run_expect([0], "systemctl stop dovecot")
    try:
        # Dovecot is down: the alert comes through the primary's Postfix, which
        # queues it for LMTP until Dovecot is back. So it is read once Dovecot runs
        # again, then the resolved one follows.
        wait_until(lambda: "dovecot.service" in hosts["backup"].check_output(
            "amtool --alertmanager.url=http://127.0.0.1:9093 alert query alertname=ServiceDown "
            "-o extended || true"), timeout=90, what="no alert for the stopped Dovecot")
        fired = time.monotonic() - started
    finally:
        hosts["mx1"].run_expect([0], "systemctl start dovecot")
        hosts["mx1"].run("postqueue -f")
    imap = mx1.imap(mailbox(POSTMASTER))
    wait_until(lambda: set(alert_mails(imap, since, "FIRING")) - before["FIRING"], timeout=120,
               what="the alert mail did not reach the postmaster")
    wait_until(lambda: set(alert_mails(imap, since, "RESOLVED")) - before["RESOLVED"], timeout=120,
               what="no mail said the alert was resolved")
    imap.logout()
    print(f"\nalert raised {fired:.0f} s after Dovecot stopped")


@pytest.mark.parametrize("port", [9100])
def test_the_exporters_answer_the_monitoring_host_and_nobody_else(lab, hosts, port):
    mx1 = lab["hosts"]["mx1"]["address"]
    # The whole answer: a reader that hangs up early makes the exporter log errors.
    fetch = f"python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://{mx1}:{port}/metrics\").read()[:300])'"
    assert "# HELP" in hosts["backup"].check_output(fetch)
    # From the operator's machine (not a monitoring host): dropped by mx1's firewall.
    with pytest.raises(OSError):
        socket.create_connection((mx1, port), timeout=3).close()

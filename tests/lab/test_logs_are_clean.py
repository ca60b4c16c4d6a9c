"""After every scenario, the MX hosts' Postfix, Dovecot and rspamd logs hold no
error or warning other than those the tests provoked on purpose."""
import re

import pytest

# What the scenarios provoke, each with the test that does it.
PROVOKED = [
    r"NOQUEUE: reject: RCPT from .*: 550 5\.1\.1 <nobody@acme\.test>",   # unknown recipient
    r"NOQUEUE: reject: RCPT from .*: 554 5\.7\.1 <victim@example\.test>",  # open relay tests
    r"NOQUEUE: reject: RCPT from .*: 553 5\.7\.1 <carol@acme\.test>",   # forged sender
    r"NOQUEUE: reject: RCPT from .*: 552 5\.2\.2 <frank@globex\.test>",  # over quota
    r"NOQUEUE: reject: RCPT from .*: 554 5\.7\.1 <dave@globex\.test>: Relay access denied",  # no login
    r"warning: Message delivery request rate limit exceeded: \d+ from [^ ]+\[10\.66\.0\.13\]",  # flood
    r"auth failed.*user=<(bob|carol)@acme\.test>",                       # wrong protocol
    r"SSL_accept error from unknown\[[0-9.]+\]: -1",                   # TLS 1.1 refused
    r"error:0A000102:SSL routines::unsupported protocol",
    r"warning: .*SASL (LOGIN|PLAIN) authentication failed",
    r"milter-reject: END-OF-MESSAGE from .*: 5\.7\.1 Spam message rejected",     # GTUBE
    r"milter-reject: END-OF-MESSAGE from .*: 4\.7\.1 Try again later",           # greylisting
    r"master: Warning: SIGHUP received - reloading configuration",      # renewal reload
    r"master: Warning: Processes aren't dying after reload",             # renewal reload
    r"master: Warning: Killed with signal 15",                          # mx1 stopped (outage)
    r"log\(\d+\): Warning: Killed with signal 15",                       # Dovecot stopped (restore)
    # rspamd stopped on purpose (test_trusted_mail.py, while rspamd is down).
    r"warning: connect to Milter service inet:127\.0\.0\.1:11332: Connection refused",
    # testssl.sh from outside (test_tls_scanner.py) tries what the servers refuse.
    r"-login: Disconnected: Connection closed: SSL_(accept\(\)|read) failed: .*rip=10\.66\.0\.20,",
    r"warning: TLS library problem: error:0A0000(FC|C1|F4):SSL routines::"
    r"(unknown protocol|no shared cipher|unexpected message)",
    r"warning: TLS library problem: error:0A000(10B|18C|410):SSL routines::"
    r"(wrong version number|version too low|sslv3 alert handshake failure)",
]
# mx2 sees the same bad clients, and mx1 away during the outage scenarios.
PROVOKED_MX2 = PROVOKED + [
    r"warning: (connect to|problem talking to server) 10\.66\.0\.11:12340: "
    r"(No route to host|Connection timed out|Connection refused|Application error)",
]
# Postfix compares queue files' time stamps with the clock; the kernel's coarse file
# times run up to a tick ahead, which Postfix reports on a busy queue (mail during a
# reload on mx1, the 200-message burst on mx2).
CLOCK = [r"warning: resetting file time stamps - this hurts performance",
         r"warning: file system clock is \d+ seconds? ahead of local clock"]
PROVOKED += CLOCK
PROVOKED_MX2 += CLOCK
UNITS = ("-u postfix@- -u dovecot -u rspamd -t postfix/smtpd -t postfix/submission"
         " -t postfix/submissions -t postfix/lmtp -t postfix/qmgr -t postfix/cleanup -t dovecot"
         " -t postfix/postfix-script -t postfix/master -t postfix/smtp -t postfix/relay/smtp"
         " -t postfix/bounce")


@pytest.mark.after_all
@pytest.mark.parametrize("name,provoked", [("mx1", PROVOKED), ("mx2", PROVOKED_MX2)])
def test_mail_services_logged_no_unexpected_error_or_warning(hosts, session_start, name, provoked):
    log = hosts[name].check_output(f"journalctl --no-pager -o cat --since @{session_start} {UNITS}")
    bad = [line for line in log.splitlines()
           if re.search(r"\b(error|warning|fatal|panic)\b", line, re.I)
           and not any(re.search(p, line) for p in provoked)]
    assert bad == []

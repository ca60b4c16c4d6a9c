"""After every scenario, no log of any lab host (the whole journal, every file
under /var/log) holds a fault other than those a scenario provoked on purpose:
each allowed line is named by the scenario that provokes it, on its host, while
it ran (tests/lab/logs.py)."""
import time
import uuid

import pytest

from .conftest import ROOT, WINDOWS
from .logs import SKIP_FILES, Provoked, unexpected

INJECTED = Provoked("tests/lab/test_logs_are_clean.py::test_the_log_check_reports_a_fault_"
                    "injected_into_every_log_of_every_host", "*",
                    r"mailstack-logcheck-injected [0-9a-f]{12}: error")
OPERATOR, OUTSIDE, GUESSER = r"operator\.example\.test\[10\.66\.0\.1\]", \
    r"mail\.example\.test\[10\.66\.0\.20\]", r"10\.66\.0\.2[01]"   # the guesser: outside, either address
# What a TLS server says when a client offers what it refuses (old versions, weak ciphers).
TLS_REASON = (r"SSL routines::(unexpected message|no shared cipher|unknown protocol|unsupported protocol|"
              r"wrong version number|version too low|sslv3 alert (handshake failure|unexpected message))")
TLS_REFUSED = (r"(SSL_accept error from {c}: (-1|lost connection)|warning: TLS library problem: "
               r"error:0A[0-9A-F]{{6}}:" + TLS_REASON + ")")
LOGIN_TLS_REFUSED = (r"(imap|pop3|managesieve)-login: Disconnected: Connection closed: SSL_(accept|read)"
                     r"(\(\))?( syscall)? failed: (error:0A[0-9A-F]{{6}}:" + TLS_REASON + "|Invalid argument)"
                     r".* rip={a},")
# A container booting (a rebuilt or restarted lab machine): what its first minute says.
BOOT = [r"org\.freedesktop\.DBus\.Error\.AccessDenied: Failed to set fd limit",
        r'Unknown username "systemd-timesync" in message bus configuration file',
        r"WARNING - (Unable to monitor PrepareForShutdown|To enable monitoring the PrepareForShutdown|"
        r"SIGTERM or SIGHUP received)",
        r"# WARNING Memory overcommit must be enabled",
        r"Mount disappeared even though umount process failed",
        # an SSH session open while the machine stops: logind is already going away
        r"pam_systemd\(sshd:session\): Failed to release session: Interrupted system call",
        r"WARNING  (MAIN: Got first exit signal! Terminating gracefully\.|STS: Awaiting \d+ client handlers)",
        r"symcache; save_items: cannot create file /var/lib/rspamd/symbols\.cache\.new",
        r"fail2ban\.filter +\[\d+\]: INFO +(Added|Removed) logfile: '/var/log/nginx/error\.log'"]
# A bare machine's first deploy: services Debian starts at package install, before
# mailstack's configuration is in place (fixed by the deploy's restart).
FIRST_DEPLOY = [r"postconf: fatal: open /etc/postfix/main\.cf: No such file or directory",
                r"postfix@-\.service: (Control process exited, code=exited, status=1/FAILURE|"
                r"Failed with result 'exit-code')|Failed to start postfix@-\.service",
                r"ERROR   (Failed during configuration: Have not found any log file for sshd jail|"
                r"Async configuration of server failed)",
                r"fail2ban\.service: Failed with result 'exit-code'",
                r"fail2ban\.database +\[\d+\]: WARNING New database created",
                r"rspamd_stat_init: error adding cache redis for symbol BAYES_(SPAM|HAM)",
                r"compiled class header\(X-Authentication-Warning\)",
                r"WARNING 'allowipv6' not defined in 'Definition'"]
# Dovecot stopped or restarted: its master says so, and when systemd's SIGTERM to the
# service's cgroup reaches another of its processes (log, config) before the master
# ends it, so do they.
DOVECOT_STOPPED = (r"((master|config|log\(\d+\)): Warning: Killed with signal 15 \(by pid=\d+ uid=0 code=kill\)|"
                   r"log\(\d+\): Warning: Shutting down logging for '[a-z-]+: ' with \d+ clients)")
# rspamd stopped or restarted: likewise, systemd's SIGTERM can reach a worker before
# rspamd's main process ends it, and the main process reports the worker's end.
RSPAMD_STOPPED = (r"rspamd_check_termination_clause: rspamd_(proxy|normal|controller) process \d+ terminated "
                  r"abnormally with exit code 0 by signal: Terminated but NOT created core file")
MX1_DOWN = r"10\.66\.0\.11:12340: (No route to host|Connection timed out|Connection refused|Application error)"


def scenario(name, host, *patterns, **kw):
    return [Provoked(f"tests/lab/{name}", host, p, **kw) for p in patterns]


# Each entry: the scenario (test file or test) that provokes the line on purpose,
# the host, and a pattern for that line only. Lines outside the scenario's time fail.
PROVOKED = [INJECTED] + [
    *scenario("test_tls.py", "mx1", TLS_REFUSED.format(c=OPERATOR),
              LOGIN_TLS_REFUSED.format(a=r"10\.66\.0\.1"),
              r"managesieve-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<>, method=PLAIN, rip=10\.66\.0\.1,",                       # AUTHENTICATE before TLS
              r"master: Warning: SIGHUP received - reloading configuration",       # renewal reloads
              r"NOQUEUE: reject: RCPT from " + OPERATOR + r": 554 5\.7\.1 <operator\.example\.test"),
    *scenario("test_tls_scanner.py", "mx1", TLS_REFUSED.format(c=OUTSIDE),
              LOGIN_TLS_REFUSED.format(a=r"10\.66\.0\.20").replace("C1|102|10B|410", "C1|102|10B|410|0A0"),
              r"-login: Disconnected: Connection closed: SSL_(accept|read)\(\) failed: .*rip=10\.66\.0\.20,",
              # testssl.sh resetting a STARTTLS connection before it says anything.
              r"(imap|pop3)-login: Disconnected: Connection closed: read\(size=\d+\) failed: Connection reset by "
              r"peer \(no auth attempts in \d+ secs\): user=<>, rip=10\.66\.0\.20,",
              r"warning: non-SMTP command from " + OUTSIDE + r": GET / HTTP/1\.[01]",
              r"\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 10\.66\.0\.20,",
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF"),
    *scenario("test_access_protocols.py", "mx1",
              r"(imap|pop3)-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<(alice|bob|carol)@acme\.test>, (method=PLAIN, )?rip=10\.66\.0\.1,"),
    *scenario("test_delivery.py", "mx1",
              r"NOQUEUE: reject: RCPT from (" + OPERATOR + "|" + OUTSIDE + r"): (550 5\.1\.1 <nobody@acme\.test>|"
              r"554 5\.7\.1 <victim@example\.test>: Relay access denied|553 5\.7\.1|552 5\.2\.2 <frank@globex)"),
    *scenario("test_submission.py", "mx1",
              r"NOQUEUE: reject: RCPT from " + OPERATOR + r": 55[34] 5\.7\.1",
              r"warning: " + OPERATOR + r": SASL (LOGIN|PLAIN) authentication failed"),
    *scenario("test_quota.py", "mx1", r"NOQUEUE: reject: RCPT from " + OPERATOR + r": 552 5\.2\.2 <frank@globex"),
    *scenario("test_limits.py", "mx1",
              r"warning: Message delivery request rate limit exceeded: \d+ from backup\.acme\.test\[10\.66\.0\.13\]"),
    *scenario("test_footholds.py", "mx1",
              r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 <friend@example\.test>",
              r"fatal: User www-data\(\d+\) is not allowed to submit mail",
              r"mailstack-password: refused: wrong current password for \S+ from 127\.0\.0\.1",
              r"imap-login: Disconnected: .*\(auth failed, \d+ attempts in \d+ secs\): user=<(grace|alice)@acme\.test>"),
    *scenario("test_brute_force.py", "mx1",
              r"(imap|pop3|managesieve)-login: Disconnected: (Connection closed|Inactivity)(: read\(size=\d+\) failed: "
              r"Connection reset by peer)? \(auth failed, \d+ attempts in \d+ secs\): user=<alice@acme\.test>.*rip=" + GUESSER,
              r"warning: unknown\[" + GUESSER + r"\]: SASL (LOGIN|PLAIN) authentication failed",
              r"warning: mail\.example\.test\[10\.66\.0\.2[01]\]: SASL (LOGIN|PLAIN) authentication failed",
              r"IMAP Error: Login failed for alice@acme\.test against mx1\.acme\.test from " + GUESSER,
              r"Failed login for alice@acme\.test from " + GUESSER + r" in session",
              r"\[error\] \d+#\d+: \*\d+ limiting requests, excess: [\d.]+ by zone \"mailstack_login\", client: " + GUESSER,
              r"NOQUEUE: reject: RCPT from \S+\[10\.66\.0\.2[01]\]: 554 5\.7\.1 <victim@example\.test>: Relay access denied"),
    *scenario("test_brute_force.py", "mx2", r"pam_systemd\(sshd:session\): Failed to release session: Interrupted system call",
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF", *BOOT),                                 # mx2 rebooted (firewall)
    *scenario("test_brute_force.py", "mx1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<alice@acme\.test>, method=PLAIN, rip=10\.66\.0\.11,",   # webmail's guesses, via IMAP
              r"SSL_accept error from mail\.example\.test\[10\.66\.0\.2[01]\]: lost connection"),  # port probes
    *scenario("test_webmail.py", "mx1",
              r"\[error\] \d+#\d+: \*\d+ limiting requests, excess: [\d.]+ by zone \"mailstack_login\", client: 10\.66\.0\.1,",
              r"Failed login for (alice|dave|grace)@(acme|globex)\.test from 10\.66\.0\.1 in session",
              r"IMAP Error: Login failed for (alice|dave|grace)@(acme|globex)\.test against mx1\.acme\.test from 10\.66\.0\.1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<(alice|dave|grace)@(acme|globex)\.test>, method=PLAIN, rip=(127\.0\.0\.1|10\.66\.0\.11?),",
              r"\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 10\.66\.0\.1, server: webmail\.acme\.test, "
              r'request: "GET /(config/|logs/|installer/|plugins/password/config)',
              r"postgres@roundcube ERROR:  relation \"system\" does not exist"),   # Roundcube's schema check
    *scenario("test_trusted_mail.py", "mx1", RSPAMD_STOPPED,                        # rspamd stopped
              r"warning: connect to Milter service inet:127\.0\.0\.1:11332: Connection refused",
              r"symcache; save_items: cannot create file /var/lib/rspamd/symbols\.cache\.new",
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF"),
    *scenario("test_secure_transport.py", "mx1",
              r"certificate verification failed for mail\.example\.test\[10\.66\.0\.20\]:25: self-signed certificate"),
    *scenario("test_secure_transport.py", "outside",
              r"server certificate verification failed for mx1\.acme\.test\[10\.66\.0\.11\]:25: num=\d+:no matching DANE TLSA"),
    # The primary away (outage scenarios): the backup MX cannot ask it about quotas
    # or hand mail over, and says so; Postfix on mx1 is stopped.
    *scenario("test_backup_mx.py", "mx2", r"warning: (connect to|problem talking to server) " + MX1_DOWN,
              r"connect to mx1\.acme\.test\[10\.66\.0\.11\]:25: (Connection timed out|No route to host|Connection refused)",
              r"to=<[^>]+>, relay=none, .*status=deferred \((delivery temporarily suspended: )?connect to "
              r"mx1\.acme\.test\[10\.66\.0\.11\]:25: (Connection timed out|No route to host|Connection refused)\)",
              r"(NOQUEUE|[0-9A-F]+): reject: RCPT from " + OPERATOR + r": 554 5\.7\.1 <victim@example\.test>: "
              r"Relay access denied",
              r"spf error for domain example\.test: cannot find MX record for example\.test",
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF", *BOOT),
    # mx1 cut off from the network mid-run: rspamd's DNS lookups time out.
    *scenario("test_backup_mx.py::test_primary_cut_off_mid_run_loses_nothing", "mx1",
              r"rbl\.lua:\d+: error looking up \S+: query timed out",
              r'asn\.lua:\d+: error querying dns "\S+" on 10\.66\.0\.10: query timed out',
              r"rspamd_task_write_log: .*: ?query timed out"),
    *scenario("test_backup_mx.py", "mx1", DOVECOT_STOPPED,
              r"(imap|pop3)-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<(alice|bob)@acme\.test>, (method=PLAIN, )?rip=10\.66\.0\.1,",
              r"cannot apply settings rule no_greylisting_\d+ \(id=[0-9a-f]+\): settings has been already applied "
              r"by rule from_backup",                                   # mail mx2 held for globex.test
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF",
              r"warning: hostname mx2\.acme\.test does not resolve to address 10\.66\.0\.12", *BOOT),
    # Backups: a backup run fails while the backup host is away, alerts; the drills
    # stop services, destroy mx1 and rebuild it from a bare machine.
    *scenario("test_backups.py", "mx1",
              r"mailstack-backup: backup failed: (backup\.acme\.test|offsite): ",
              r"mailstack-backup\.service: (Main process exited, code=exited, status=1/FAILURE|Failed with result 'exit-code')",
              r"Failed to start mailstack-backup\.service",
              r"(Starting|Finished) mailstack-backup-failed\.service|mailstack-backup-failed\.service: Deactivated",
              DOVECOT_STOPPED, r"master: Warning: SIGHUP received - reloading configuration",
              r"unable to resolve host (mailstack-mx1|mx1\.acme\.test): Temporary failure in name resolution",
              r"(imap|pop3)-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<alice@acme\.test>, method=PLAIN, rip=10\.66\.0\.1,",              # wrong passphrase
              r"rspamd_url_text_extract: got empty text part",                # odd mail: an empty body
              r"proxy_milter_error_handler: abnormally closing milter connection from: 127\.0\.0\.1:\d+, "
              r"error: Unexpected EOF",
              RSPAMD_STOPPED, *BOOT, *FIRST_DEPLOY),
    *scenario("test_backups.py", "backup",
              r"mailstack-backup-server: mx1\.acme\.test: verification failed, not pruned: "
              r"(\d+ snapshot\(s\) (dated in the future|deleted by the client|refused before))",
              r"mailstack-backup-(prune|check)\.service: (Main process exited, code=exited, status=1/FAILURE|"
              r"Failed with result 'exit-code')",
              r"Failed to start mailstack-backup-(prune|check)\.service",
              r"(Starting|Finished) mailstack-backup-alert\.service|mailstack-backup-alert\.service: Deactivated",
              r"mailstack-backup-alert\.service: multiple trigger source candidates for exit status propagation"),
]
# Not provoked by one scenario, and said on every host that runs rspamd, for reasons
# named here; nothing else is allowed at any time.
AMBIENT = [
    # rspamd's Bayes filter is still learning (fewer than 200 messages learnt): said
    # for every message a new system scores, for weeks in production too.
    Provoked("", "*", r"skip obtaining bayes tokens for BAYES_(HAM|SPAM) of classifier bayes: not enough learns"),
    # The lab's internet has no rspamd.com: its fuzzy hash servers and maps do not resolve.
    Provoked("", "*", r"(address resolution for fuzzy[12]\.rspamd\.com failed|cannot resolve maps\.rspamd\.com|"
                      r"fuzzy_parse_rule: cannot read servers definition)"),
    # Said by rspamd at each start with Debian's stock configuration (the controller
    # listens on loopback only; mailstack sets no timeouts).
    Provoked("", "*", r"rspamd_controller_password_sane: (your normal password is not encrypted|"
                      r"enable password is not set)|rspamd_worker_check_and_adjust_timeout: configured task_timeout"),
    # Postfix compares queue files' time stamps with the clock; the kernel's coarse file
    # times run up to a tick ahead, which Postfix reports on a busy queue.
    Provoked("", "*", r"warning: (resetting file time stamps - this hurts performance|"
                      r"file system clock is \d+ seconds? ahead of local clock)"),
    # The lab is IPv4 only: example.test's mail hosts have no AAAA records for SPF's
    # a/mx mechanisms (rspamd says "MX" for the MX host's missing AAAA).
    Provoked("", "*", r"spf error for domain example\.test: (cannot resolve AAAA record for \S+|cannot find MX "
                      r"record for example\.test): requested record is not found"),
]
PROVOKED += AMBIENT
REPORT = ROOT / ".lab" / "artifacts" / "log-check.txt"


def during(line):
    """The scenarios that ran when `line` was logged (for the report)."""
    return [nodeid for nodeid, spans in WINDOWS.items()
            if line.time and any(s - 2 <= line.time <= e + 15 for s, e in spans)]


@pytest.mark.after_all
def test_no_log_of_any_host_holds_a_fault_no_scenario_provoked(logs, hosts):
    for name in hosts:
        logs.read(name)
    bad, used = unexpected(logs.lines, PROVOKED, WINDOWS)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        f"{len(logs.lines)} fault lines read, {len(bad)} unexpected\n\n"
        + "".join(f"{n:5} {p.scenario} {p.host} {p.pattern}\n" for p, n in used.items())
        + "\nunexpected:\n"
        + "".join(f"{line}\n    during: {' '.join(during(line)) or '-'}\n" for line in bad))
    assert not bad, f"{len(bad)} unexpected fault lines, see {REPORT}:\n" + "\n".join(
        str(line) for line in bad[:40])


def test_the_log_check_reports_a_fault_injected_into_every_log_of_every_host(logs, hosts):
    token = uuid.uuid4().hex[:12]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    text = f"mailstack-logcheck-injected {token}: error: a fault only this test wrote"
    injected = set()
    for name, h in hosts.items():
        # The journal, under the names the mail services log as (any other is read too).
        for ident in ("postfix/submission/smtpd", "dovecot", "rspamd", "nginx", "knot",
                      "unbound", "mailstack-backup", "sshd"):
            h.run_expect([0], f"logger -p mail.info -t {ident} '{text}'")
            injected.add((name, f"journal {ident}"))
        # Every log file the check reads (at the file's end, as its program would).
        files = h.check_output(f"find /var/log -type f | grep -vE '{SKIP_FILES}' || true").split()
        assert files, name
        for path in files:
            h.run_expect([0], f"printf '%s\\n' '{stamp} {text}' >> {path}")
            injected.add((name, path))
    found = set()
    for name in hosts:
        found |= {(line.host, line.source) for line in logs.read(name) if token in line.text}
    assert found == injected
    # Without the entry that allows them, every injected line is reported.
    mine = [line for line in logs.lines if token in line.text]
    bad, _ = unexpected(mine, [p for p in PROVOKED if p is not INJECTED], WINDOWS)
    assert len(bad) == len(injected)

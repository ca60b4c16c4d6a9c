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
              r"wrong version number|version too low|sslv3 alert (handshake failure|unexpected message)|"
              r"ssl/tls alert handshake failure|record layer failure)")        # (the last two: OpenSSL 3.5)
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
        r"fail2ban\.filter +\[\d+\]: INFO +(Added|Removed) logfile: '/var/log/nginx/error\.log'",
        # Debian 13: sshd's unauthenticated children and the user manager's session end
        # with the machine; rspamd asks redis for Bayes statistics before redis is up.
        r"sshd-session\[\d+\]: error: mm_reap: preauth child terminated by signal 15|error: mm_reap: preauth "
        r"child terminated by signal 15",
        r"pam_systemd\(systemd-user:session\): Failed to release session: No session 'c\d+' known",
        r"lua_bayes_redis\.lua:\d+: cannot get bayes statistics for BAYES_(HAM|SPAM): Connection refused",
        r"neural\.lua:\d+: cannot get ANNs list from redis: Connection refused",
        # systemd 257's sysctl defaults (a host upgraded to Debian 13) in a container
        r"Couldn't write '0x[0-9a-f]+' to 'kernel/sysrq', ignoring: No such file or directory"]
# The operator's SSH connections closed under the hosts' feet (labctl rebuild ends
# them): OpenSSH 10 (Debian 13) says so.
SSH_CLOSED = r"Read error from remote host 10\.66\.0\.1 port \d+: Connection reset by peer"
# A machine made bare, or cut off halfway through its upgrade, whose OpenSSH 10 runs
# before the deploy exempts the operator from its penalties (roles/fail2ban.py): the
# scenario's polling for the machine is refused for a moment.
SSH_PENALTY = (r"drop connection #\d+ from \[10\.66\.0\.1\]:\d+ on \[10\.66\.0\.1[12]\]:22 penalty: "
               r"failed authentication")
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
                r"WARNING 'allowipv6' not defined in 'Definition'",
                # the node exporter, started by its package with every collector
                r'level=ERROR source=diskstats_linux\.go:\d+ msg="Failed to open directory, disabling udev '
                r'device properties" collector=diskstats path=/run/udev/data']
# Dovecot stopped or restarted: its master says so, and when systemd's SIGTERM to the
# service's cgroup reaches another of its processes (log, config, stats: Debian 12's
# Dovecot, seen since the monitoring host reads its statistics) before the master
# ends it, so do they.
DOVECOT_STOPPED = (r"((master|config|stats|log\(\d+\)): Warning: Killed with signal 15 \(by pid=\d+ uid=0 code=kill\)|"
                   r"log\(\d+\): Warning: Shutting down logging for '[a-z-]+: ' with \d+ clients)")
# Dovecot reloaded: Dovecot's statistics process, which the monitoring host keeps a
# connection open to, outlives the reload until the master ends it.
DOVECOT_RELOADED = (r"master: Warning: (SIGHUP received - reloading configuration|service\(stats\): Sent SIGTERM to "
                    r"\d+ stats process(es)?|Processes aren't dying after reload, sent SIGTERM to \d+ process(es)?)",
                    r"stats: Warning: Killed with signal 15 \(by pid=\d+ uid=0 code=kill\)")
# Postfix closed its milter connection mid-message (it stopped, lost power or was
# reloaded): rspamd's proxy says so.
MILTER_CUT = (r"proxy_milter_error_handler: abnormally closing milter connection from: "
              r"unix:/var/spool/postfix/rspamd/milter\.sock, error: Unexpected EOF")
# rspamd stopped or restarted: likewise, systemd's SIGTERM can reach a worker before
# rspamd's main process ends it, and the main process reports the worker's end.
RSPAMD_STOPPED = (r"rspamd_check_termination_clause: (rspamd_proxy|normal|controller) process \d+ terminated "
                  r"abnormally with exit code 0 by signal: Terminated but NOT created core file")
# The TLS-RPT sender restarted a second after it started (a restore starts every service
# again): systemd's SIGTERM ends the fetcher it runs at start, which then says nothing.
TLSRPT_STOPPED = (r"tlsrpt_reportd ERROR tlsrpt \d+ : Unsupported protocol version from fetcher \d+ "
                  r"'/opt/mailstack/tlsrpt/bin/tlsrpt-fetcher --config_file /etc/tlsrpt/tlsrpt\.cfg' :$",
                  r"tlsrpt_reportd WARNING tlsrpt \d+ : Fetcher \d+ /opt/mailstack/tlsrpt/bin/tlsrpt-fetcher "
                  r"--config_file /etc/tlsrpt/tlsrpt\.cfg failed in run 0$")
MX1_DOWN = r"10\.66\.0\.11:12340: (No route to host|Connection timed out|Connection refused|Application error)"


def either_dovecot(pattern):
    """A login process's line as Dovecot 2.3 (Debian 12) and 2.4 (Debian 13) word it:
    2.4 says "Login aborted" for "Disconnected" and adds a reason code after the
    counts, e.g. "(auth failed, 1 attempts in 2 secs) (auth_failed): user=<...>"."""
    return (pattern.replace("-login: Disconnected: ", "-login: (Disconnected|Login aborted): ")
            .replace(r" secs\): ", r" secs\)( \([a-z_]+\))?: "))


def scenario(name, host, *patterns, **kw):
    return [Provoked(f"tests/lab/{name}", host, either_dovecot(p), **kw) for p in patterns]


# Each entry: the scenario (test file or test) that provokes the line on purpose,
# the host, and a pattern for that line only. Lines outside the scenario's time fail.
PROVOKED = [INJECTED] + [
    *scenario("test_tls.py", "mx1", TLS_REFUSED.format(c=OPERATOR),
              LOGIN_TLS_REFUSED.format(a=r"10\.66\.0\.1"),
              r"managesieve-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<>, method=PLAIN, rip=10\.66\.0\.1,",                       # AUTHENTICATE before TLS
              *DOVECOT_RELOADED,       # renewal reloads
              r"NOQUEUE: reject: RCPT from " + OPERATOR + r": 554 5\.7\.1 <operator\.example\.test"),
    *scenario("test_tls_scanner.py", "mx1", TLS_REFUSED.format(c=OUTSIDE),
              LOGIN_TLS_REFUSED.format(a=r"10\.66\.0\.20").replace("C1|102|10B|410", "C1|102|10B|410|0A0"),
              r"-login: Disconnected: Connection closed: SSL_(accept|read)\(\) failed: .*rip=10\.66\.0\.20,",
              # testssl.sh resetting a STARTTLS connection before it says anything.
              r"(imap|pop3)-login: Disconnected: Connection closed: read\(size=\d+\) failed: Connection reset by "
              r"peer \(no auth attempts in \d+ secs\): user=<>, rip=10\.66\.0\.20,",
              r"warning: non-SMTP command from " + OUTSIDE + r": GET / HTTP/1\.[01]",
              r"\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 10\.66\.0\.20,",
              # nginx 1.26 (Debian 13) on testssl.sh's SSLv2/SSLv3 hellos.
              r"\[crit\] \d+#\d+: \*\d+ SSL_do_handshake\(\) failed \(SSL: error:0A00010B:SSL routines::"
              r"wrong version number .*client: 10\.66\.0\.20, server: 0\.0\.0\.0:443",
              MILTER_CUT),
    *scenario("test_access_protocols.py", "mx1",
              r"(imap|pop3)-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<(alice|bob|carol)@acme\.test>, (method=PLAIN, )?rip=10\.66\.0\.1,"),
    *scenario("test_delivery.py", "mx1",
              r"NOQUEUE: reject: RCPT from (" + OPERATOR + "|" + OUTSIDE + r"): (550 5\.1\.1 <nobody@acme\.test>|"
              r"554 5\.7\.1 <victim@example\.test>: Relay access denied|553 5\.7\.1|552 5\.2\.2 <frank@globex)"),
    # The command line's own pyinfra runs (deploys, the welcome, offboarding's steps)
    # close their SSH connections as every pyinfra run does.
    *scenario("test_mailbox_lifecycle.py", "*", SSH_CLOSED),
    *scenario("test_idempotence.py", "*", SSH_CLOSED),
    *scenario("test_offboarding.py", "*", SSH_CLOSED),
    *scenario("test_mailbox_lifecycle.py", "mx1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<newhire@acme\.test>, method=PLAIN, rip=10\.66\.0\.1,"),
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
              MILTER_CUT, *BOOT),                                 # mx2 rebooted (firewall)
    *scenario("test_brute_force.py", "mx1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<alice@acme\.test>, method=PLAIN, rip=10\.66\.0\.11,",   # webmail's guesses, via IMAP
              r"SSL_accept error from mail\.example\.test\[10\.66\.0\.2[01]\]: lost connection"),  # port probes
    *scenario("test_webmail.py", "mx1",
              # Roundcube 1.6's filter editor, saving a rule into a script that has rules
              # it did not name (written by another client: the upgrade scenario's, over
              # ManageSieve, on a lab that ran it first).
              r"PHP Warning:  Undefined array key \"name\" in /usr/share/roundcube/plugins/managesieve/lib/"
              r"Roundcube/rcube_sieve_engine\.php on line \d+",
              r"\[error\] \d+#\d+: \*\d+ limiting requests, excess: [\d.]+ by zone \"mailstack_login\", client: 10\.66\.0\.1,",
              r"Failed login for (alice|dave|grace)@(acme|globex)\.test from 10\.66\.0\.1 in session",
              r"IMAP Error: Login failed for (alice|dave|grace)@(acme|globex)\.test against mx1\.acme\.test from 10\.66\.0\.1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<(alice|dave|grace)@(acme|globex)\.test>, method=PLAIN, rip=(127\.0\.0\.1|10\.66\.0\.11?),",
              r"\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 10\.66\.0\.1, server: webmail\.acme\.test, "
              r'request: "GET /(config/|logs/|installer/|plugins/password/config)',
              r"postgres@roundcube ERROR:  relation \"system\" does not exist"),   # Roundcube's schema check
    *scenario("test_trusted_mail.py", "mx1", RSPAMD_STOPPED,                        # rspamd stopped
              r"warning: connect to Milter service unix:rspamd/milter\.sock: (Connection refused|No such file or directory)",
              r"symcache; save_items: cannot create file /var/lib/rspamd/symbols\.cache\.new",
              MILTER_CUT),
    *scenario("test_secure_transport.py", "mx1",
              r"certificate verification failed for mail\.example\.test\[10\.66\.0\.20\]:25: self-signed certificate",
              # Postfix 3.10 (Debian 13) records the same refusal for the TLS report
              r"TLSRPT: status=failure, domain=example\.test, receiving_mx=mail\.example\.test\[10\.66\.0\.20\], "
              r"failure_type=validation_failure, failure_reason=self-signed_certificate"),
    # ManageSieve's AUTHENTICATE before STARTTLS, refused.
    *scenario("test_sieve.py", "mx1",
              r"managesieve-login: (Disconnected|Login aborted): Connection closed \(auth failed, 1 attempts in \d+ secs\)"
              r"( \([a-z_]+\))?: user=<>, method=PLAIN, rip=10\.66\.0\.1,"),
    # A client moved in from its old provider: mx1's certificate gains the client's web
    # names and loses them again (the renewal hook reloads Dovecot).
    # The migration scenario's deploys (the client's domain in and out again): Dovecot
    # reloads; its SSH sessions end as the deploys and oldmail's removal close them.
    # oldmail's own logs are not read (made and dropped within the scenario).
    *scenario("test_migration.py", "mx1", *DOVECOT_RELOADED),
    *scenario("test_migration.py", "*", SSH_CLOSED),
    *scenario("test_secure_transport.py", "outside",
              r"server certificate verification failed for mx1\.acme\.test\[10\.66\.0\.11\]:25: num=\d+:no matching DANE TLSA"),
    # A smarthost under a name its certificate does not carry: mx1 refuses it and ends
    # the session after the handshake, before any login.
    *scenario("test_smarthost.py", "mx1",
              r"certificate verification failed for smtp\.example\.test\[10\.66\.0\.20\]:587: ",
              r"warning: TLS library problem: error:0A[0-9A-F]{6}:SSL routines::certificate verify failed"),
    *scenario("test_smarthost.py", "outside",
              r"SSL_accept error from mx1\.acme\.test\[10\.66\.0\.11\]: (-1|lost connection)",
              r"warning: TLS library problem: error:0A[0-9A-F]{6}:SSL routines::\S+ alert [a-z ]+"),
    # status: mail for mx1 waits at mx2 while mx1's Postfix is stopped.
    *scenario("test_status.py::test_mail_piling_up_at_the_backup_mx_while_the_primary_is_down_is_named_until_"
              "it_is_delivered", "mx2",
              r"connect to mx1\.acme\.test\[10\.66\.0\.11\]:25: Connection refused",
              r"to=<[^>]+>, relay=none, .*status=deferred \((delivery temporarily suspended: )?connect to "
              r"mx1\.acme\.test\[10\.66\.0\.11\]:25: Connection refused\)"),
    # ... which mx2 hands over once mx1 is back (globex.test: no greylisting either way).
    *scenario("test_status.py::test_mail_piling_up_at_the_backup_mx_while_the_primary_is_down_is_named_until_"
              "it_is_delivered", "mx1",
              r"cannot apply settings rule no_greylisting_\d+ \(id=[0-9a-f]+\): settings has been already applied "
              r"by rule from_backup_mx"),
    # ... and the other hosts' system mail (nullmailer) too, if they send then.
    *scenario("test_status.py::test_mail_piling_up_at_the_backup_mx_while_the_primary_is_down_is_named_until_"
              "it_is_delivered", "*", r"(smtp: Failed: Connect failed|Sending failed|Connection refused)"),
    # status names a stopped Dovecot on mx1, and monitoring alerts on it; mail arriving
    # meanwhile waits at RCPT, as its quota answer cannot be had.
    *[p for name in ("test_status.py", "test_monitoring.py") for p in scenario(name, "mx1", DOVECOT_STOPPED,
              r"warning: (connect to|problem talking to server) 127\.0\.0\.1:12340: Connection refused",
              r"NOQUEUE: reject: RCPT from \S+\[10\.66\.0\.\d+\]: 451 4\.3\.5 <[^>]+>: Recipient address "
              r"rejected: Server configuration problem")],
    # Alertmanager's mail waits while Dovecot is down on mx1 (451 at RCPT), and the
    # scenario's deploys of the monitoring host close their SSH sessions.
    *scenario("test_monitoring.py", "backup",
              r'msg="Notify attempt failed, will retry later".*451 4\.3\.5',
              r'msg="Notify for alerts failed".*451 4\.3\.5'),
    *scenario("test_monitoring.py", "*", SSH_CLOSED),
    # Outside's Postfix stopped to fill mx1's queue: mx1 cannot hand its mail over.
    *scenario("test_monitoring.py::test_a_fault_found_by_the_hosts_own_checks_mails_the_alert_address_then_its_end"
              "[queue growing]", "mx1",
              r"connect to mail\.example\.test\[10\.66\.0\.20\]:25: Connection refused",
              r"to=<[^>]+>, relay=none, .*status=deferred \((delivery temporarily suspended: )?connect to "
              r"mail\.example\.test\[10\.66\.0\.20\]:25: Connection refused\)"),
    # A member's rights changed and back: the two deploys change rspamd's senders map,
    # and rspamd 3.4 (Debian 12) drops Postfix's idle milter connections as it restarts.
    *scenario("test_shared_mailboxes.py", "mx1",
              MILTER_CUT),
    # The primary away (outage scenarios): the backup MX cannot ask it about quotas
    # or hand mail over, and says so; Postfix on mx1 is stopped.
    *scenario("test_backup_mx.py", "mx2", r"warning: (connect to|problem talking to server) " + MX1_DOWN,
              r"connect to mx1\.acme\.test\[10\.66\.0\.11\]:25: (Connection timed out|No route to host|Connection refused)",
              r"to=<[^>]+>, relay=none, .*status=deferred \((delivery temporarily suspended: )?connect to "
              r"mx1\.acme\.test\[10\.66\.0\.11\]:25: (Connection timed out|No route to host|Connection refused)\)",
              r"(NOQUEUE|[0-9A-F]+): reject: RCPT from " + OPERATOR + r": 554 5\.7\.1 <victim@example\.test>: "
              r"Relay access denied",
              r"spf error for domain example\.test: cannot find MX record for example\.test",
              MILTER_CUT, *BOOT),
    # outside, sending while mx1 is away: mail it still held for mx1 (from an earlier
    # scenario) finds mx1 gone; 200 messages at once keep its pickup too busy to wake.
    *scenario("test_backup_mx.py", "outside",
              r"connect to mx1\.acme\.test\[10\.66\.0\.11\]:25: (Connection timed out|No route to host|"
              r"Connection refused)",
              r"warning: master_wakeup_timer_event: service pickup\(public/pickup\): Resource temporarily "
              r"unavailable"),
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
              MILTER_CUT,
              r"warning: hostname mx2\.acme\.test does not resolve to address 10\.66\.0\.12", *BOOT),
    # The upgrade to Debian 13: each mail host in turn is away (the other MX and outside
    # say so, and hold mail), its services stop and start again on new versions,
    # Postfix comes back a moment before rspamd, rspamd's compiled caches of 3.4 are
    # refused by 3.12, and what runs while the packages are half in place fails.
    *scenario("test_debian_upgrade.py", "*",
              r"warning: (connect to|problem talking to server) 10\.66\.0\.1[12]:12340: Connection (refused|reset by peer)",
              r"compiled class header\(X-Authentication-Warning\)",
              r"pam_systemd\(systemd-user:session\): Failed to create session: Invalid session class manager",
              r"Trying to run as user instance, but \$XDG_RUNTIME_DIR is not set\.",
              r"connect to mx[12]\.acme\.test\[10\.66\.0\.1[12]\]:25: Connection refused",
              r"(status=deferred \((delivery temporarily suspended: )?|^[0-9A-F]+: )(connect to mx[12]\.acme\.test"
              r"\[10\.66\.0\.1[12]\]:25: Connection refused|TLS is required, but host mx[12]\.acme\.test\[10\.66\.0\.1[12]\] "
              r"refused to start TLS)",
              r"warning: connect to Milter service unix:rspamd/milter\.sock: (Connection refused|No such file or directory)",
              r"rspamd_url_text_extract: got empty text part",                # odd mail: an empty body
              MILTER_CUT,                                     # Postfix stops, or power fails
              r"rspamd_hyperscan_maybe_load: error when trying to load cached hyperscan: cannot load hyperscan "
              r"database from /var/lib/rspamd/\w+\.hs\w+\.unser: invalid version",
              r"symcache; save_items: cannot create file /var/lib/rspamd/symbols\.cache\.new",
              r"(roundcube-gc|run-p\d+-i\d+|user@1000)\.service: (Main process exited, code=exited, "
              r"status=1/FAILURE|Failed with result 'exit-code')|Failed to start (roundcube-gc|user@1000)\.service",
              r"Couldn't write '0x[0-9a-f]+' to 'kernel/sysrq', ignoring: No such file or directory",
              r"WARNING  (MAIN: Got first exit signal! Terminating gracefully\.|STS: Awaiting \d+ client handlers)",
              DOVECOT_STOPPED, RSPAMD_STOPPED, SSH_CLOSED, SSH_PENALTY, *BOOT),
    # mx1's power cut halfway through its package step: it boots with Debian 12's
    # systemd and some of Debian 13's unit files (their new keys unknown to it), and
    # what ran at the cut fails.
    *scenario("test_debian_upgrade.py::test_mail_hosts_move", "mx1",
              r"/(lib/systemd/system|run/systemd/generator)/[\w@.-]+:\d+: (Unknown key '\w+' in section "
              r"\[(Service|Socket)\]|Failed to parse (service type|boolean value|SuccessAction=|JobTimeoutAction=))"
              r"(, ignoring)?",
              r"systemd-soft-reboot\.service: Service has no ExecStart=, ExecStop=, or SuccessAction=\. Refusing\.",
              r"run-lock\.mount: Cannot create mount unit for API file system /run/lock\. Refusing\.",
              r"Failed to start bus client: No such file or directory",
              r"run-u\d+\.service: (Main process exited, code=exited, status=1/FAILURE|Failed with result 'exit-code')"),
    # ... and mx1 lost, made anew on Debian 13 and restored from its Debian 12 backup.
    *scenario("test_debian_upgrade.py::test_a_debian_12_host_lost", "mx1",
              *DOVECOT_RELOADED,
              r"unable to resolve host (mailstack-mx1|mx1\.acme\.test): Temporary failure in name resolution",
              *TLSRPT_STOPPED, *FIRST_DEPLOY),
    # Backups: a backup run fails while the backup host is away, alerts; the drills
    # stop services, destroy mx1 and rebuild it from a bare machine.
    *scenario("test_backups.py", "mx1",
              r"mailstack-backup: backup failed: (backup\.acme\.test|offsite): ",
              r"mailstack-backup\.service: (Main process exited, code=exited, status=1/FAILURE|Failed with result 'exit-code')",
              r"Failed to start mailstack-backup\.service",
              r"(Starting|Finished) mailstack-backup-failed\.service|mailstack-backup-failed\.service: Deactivated",
              DOVECOT_STOPPED, *DOVECOT_RELOADED,
              r"unable to resolve host (mailstack-mx1|mx1\.acme\.test): Temporary failure in name resolution",
              r"(imap|pop3)-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<alice@acme\.test>, method=PLAIN, rip=10\.66\.0\.1,",              # wrong passphrase
              r"rspamd_url_text_extract: got empty text part",                # odd mail: an empty body
              MILTER_CUT,
              RSPAMD_STOPPED, *TLSRPT_STOPPED, *BOOT, *FIRST_DEPLOY),
    *scenario("test_backups.py", "*", SSH_CLOSED, SSH_PENALTY),
    # Offboarding: the person offboarded cannot log in (the scenario tries), and a
    # restored mailbox's indexes are checked again (doveadm force-resync).
    *scenario("test_offboarding.py", "mx1",
              r"imap-login: Disconnected: Connection closed \(auth failed, 1 attempts in \d+ secs\): "
              r"user=<leaver@acme\.test>, method=PLAIN, rip=10\.66\.0\.1,",
              r"Warning: fscking index file .*/var/vmail/acme\.test/leaver/"),
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
    # The lab's internet has no rspamd.com nor surbl.org: rspamd's fuzzy hash servers and
    # maps do not resolve.
    Provoked("", "*", r"(address resolution for fuzzy[12]\.rspamd\.com failed|cannot resolve "
                      r"(maps\.rspamd\.com|sa-update\.surbl\.org)|fuzzy_parse_rule: cannot read servers definition)"),
    # The lab's containers on this host's hybrid cgroup v1: systemd 257 (Debian 13) cannot
    # put a user's service manager into its compat hierarchy, at each SSH login.
    Provoked("", "*", r"Failed to attach \d+ to compat systemd cgroup '/user\.slice/user-\d+\.slice/"
                      r"user@\d+\.service/init\.scope', ignoring: Permission denied"),
    # Said by rspamd at each start with Debian's stock configuration (the controller
    # listens on loopback only; mailstack sets no timeouts).
    Provoked("", "*", r"rspamd_controller_password_sane: (your normal password is not encrypted|"
                      r"enable password is not set)|rspamd_worker_check_and_adjust_timeout: configured task_timeout"),
    # Debian's daily unattended upgrade installs what the mirror has beyond the box;
    # apt-listchanges then asks the changelog server, which the lab's internet lacks
    # (its apt proxy tunnels no HTTPS).
    Provoked("", "*", r"apt-listchanges: Unable to retrieve changelog for package \S+; 'apt-get changelog' "
                      r"failed with: E: Failed to fetch https://\S+ +Changelog unavailable for \S+ \(Invalid "
                      r"response from proxy: HTTP/1\.0 403 CONNECT denied"),
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

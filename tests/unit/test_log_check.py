"""The lab's log check (tests/lab/logs.py): an allowed line is allowed only on its
host, while its scenario ran, and only if its pattern matches; times are read
from every log format the lab's hosts write."""
import datetime

from tests.lab.logs import AUDIT, BAD, Line, Provoked, line_time, unexpected

ENTRY = Provoked("tests/lab/test_x.py::test_y", "mx1", r"SSL_accept error from \S+\[10\.66\.0\.20\]")
WINDOWS = {"tests/lab/test_x.py::test_y[a]": [(1000.0, 1010.0)]}
TEXT = "SSL_accept error from mail.example.test[10.66.0.20]: -1"


def test_a_line_its_scenario_provoked_is_allowed():
    bad, used = unexpected([Line("mx1", "journal postfix/smtpd", 1005.0, TEXT)], [ENTRY], WINDOWS)
    assert (bad, used) == ([], {ENTRY: 1})


def test_the_same_line_later_elsewhere_from_another_address_or_without_time_is_reported():
    for other in (Line("mx1", "journal postfix/smtpd", 1100.0, TEXT),
                  Line("mx2", "journal postfix/smtpd", 1005.0, TEXT),
                  Line("mx1", "journal postfix/smtpd", 1005.0, TEXT.replace("20]", "21]")),
                  Line("mx1", "/var/log/x.log", None, TEXT)):
        assert unexpected([other], [ENTRY], WINDOWS) == ([other], {ENTRY: 0})


def test_fault_words_are_found_and_ordinary_lines_are_not():
    for text in ("Error: x", "warning: y", "FATAL z", "Failed to start a.service", "panic",
                 "connect to x: Connection refused", "Connection timed out"):
        assert BAD.search(text), text
    for text in ("status=sent (250 2.0.0 Ok)", "Started mailstack-backup.service",
                 "Accepted publickey for vagrant", "errorless terrorism"):
        assert not BAD.search(text), text


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp()


def test_times_of_each_log_format():
    at = utc(2026, 12, 1, 17, 51, 52)
    assert line_time("2026-12-01 17:51:52,123 fail2ban.filter [1]: WARNING x") == at
    assert line_time("2026/12/01 17:51:52 [error] 123#123: *1 x") == at          # nginx
    assert line_time("[01-Dec-2026 17:51:52] WARNING: [pool www] x") == at       # php-fpm
    assert line_time("[01-Dec-2026 17:51:52 +0000]: <abc> x") == at              # Roundcube
    assert line_time("123:M 01 Dec 2026 17:51:52.123 # x") == at                 # redis
    assert line_time("no time here: error") is None


def test_sudo_records_of_the_tests_commands_are_not_faults_but_sudo_errors_are():
    assert AUDIT.search(" vagrant : PWD=/home/vagrant ; USER=root ; COMMAND=/bin/sh -c grep error x")
    assert not AUDIT.search("vagrant : a password is required ; PWD=/home/vagrant ; USER=root ;")


def test_dovecot_stopped_by_a_backup_drill_is_allowed_only_during_the_backups():
    from tests.lab.test_logs_are_clean import PROVOKED
    during = {"tests/lab/test_backups.py::test_drill[restic]": [(1000.0, 1010.0)]}
    for text in ("log(12134): Warning: Killed with signal 15 (by pid=1 uid=0 code=kill)",
                 "config: Warning: Killed with signal 15 (by pid=1 uid=0 code=kill)",
                 "log(21503): Warning: Shutting down logging for 'config: ' with 1 clients"):
        line = Line("mx1", "journal dovecot", 1005.0, text)
        assert unexpected([line], PROVOKED, during)[0] == []
        later = Line("mx1", "journal dovecot", 1100.0, text)
        assert unexpected([later], PROVOKED, during)[0] == [later]


def test_a_failed_login_is_allowed_in_the_words_of_dovecot_2_3_and_2_4():
    from tests.lab.test_logs_are_clean import PROVOKED
    during = {"tests/lab/test_access_protocols.py::test_x": [(1000.0, 1010.0)]}
    for text in ("imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 5 secs): "
                 "user=<alice@acme.test>, method=PLAIN, rip=10.66.0.1, lip=10.66.0.11, TLS, session=<x>",
                 "imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 5 secs) (auth_failed): "
                 "user=<alice@acme.test>, method=PLAIN, rip=10.66.0.1, lip=10.66.0.11, TLS: Connection closed, "
                 "session=<x>"):
        assert unexpected([Line("mx1", "journal dovecot", 1005.0, text)], PROVOKED, during)[0] == []
        other = Line("mx1", "journal dovecot", 1005.0, text.replace("10.66.0.1,", "10.66.0.9,"))
        assert unexpected([other], PROVOKED, during)[0] == [other]


def test_rspamd_stopped_is_allowed_while_its_scenario_stops_it_and_not_after():
    from tests.lab.test_logs_are_clean import PROVOKED
    text = ("<21bb22>; main; rspamd_check_termination_clause: rspamd_proxy process 19495 terminated "
            "abnormally with exit code 0 by signal: Terminated but NOT created core file (throttled=no); "
            "core file limits: 0 current, 0 max")
    for test in ("tests/lab/test_trusted_mail.py::test_while_rspamd_is_down[x]",
                 "tests/lab/test_backups.py::test_drill[borg]"):
        during = {test: [(1000.0, 1010.0)]}
        assert unexpected([Line("mx1", "journal rspamd", 1005.0, text)], PROVOKED, during)[0] == []
        later = Line("mx1", "journal rspamd", 1100.0, text)
        assert unexpected([later], PROVOKED, during)[0] == [later]
    crashed = Line("mx1", "journal rspamd", 1005.0, text.replace("exit code 0 by signal: Terminated",
                                                                 "exit code 0 by signal: Segmentation fault"))
    assert unexpected([crashed], PROVOKED, {"tests/lab/test_backups.py::test_drill[borg]": [(1000.0, 1010.0)]})[0]


def test_the_tls_rpt_fetcher_ended_by_a_restart_is_allowed_in_the_restores_only_on_the_first_run():
    from tests.lab.test_logs_are_clean import PROVOKED
    # As mx1 logged them in CI: the restore restarted tlsrpt-reportd a second after it began.
    texts = ["2026-12-02 15:42:17,516 tlsrpt_reportd ERROR tlsrpt 1085 : Unsupported protocol version from "
             "fetcher 1 '/opt/mailstack/tlsrpt/bin/tlsrpt-fetcher --config_file /etc/tlsrpt/tlsrpt.cfg' :",
             "2026-12-02 15:42:17,516 tlsrpt_reportd WARNING tlsrpt 1055 : Fetcher 1 "
             "/opt/mailstack/tlsrpt/bin/tlsrpt-fetcher --config_file /etc/tlsrpt/tlsrpt.cfg failed in run 0"]
    lines = [Line("mx1", "journal tlsrpt-reportd", 1005.0, t) for t in texts]
    for test in ("tests/lab/test_debian_upgrade.py::test_a_debian_12_host_lost_is_rebuilt[x]",
                 "tests/lab/test_backups.py::test_drill[restic]"):
        assert unexpected(lines, PROVOKED, {test: [(1000.0, 1010.0)]})[0] == []
        assert unexpected(lines, PROVOKED, {"tests/lab/test_webmail.py::test_x": [(1000.0, 1010.0)]})[0] == lines
    # A fetcher that says something it should not, or fails again later, is reported.
    other = Line("mx1", "journal tlsrpt-reportd", 1005.0, texts[0].replace("' :", "' : Traceback"))
    again = Line("mx1", "journal tlsrpt-reportd", 1005.0, texts[1].replace("run 0", "run 3"))
    assert unexpected([other, again], PROVOKED, {"tests/lab/test_backups.py::test_drill[restic]": [(1000.0, 1010.0)]})[0] \
        == [other, again]

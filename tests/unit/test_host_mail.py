"""Every message mailstack writes is well-formed: parsed with the email package's
strict policy, it has the headers RFC 5322 requires (Date, From) and those a mail
system expects (Message-ID, Auto-Submitted)."""
import email
import email.policy
import subprocess

from mailstack.host import backup, quota_warning
from mailstack.host.mail import auto_message

from .test_host_backup import settings


def strictly(msg):
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.strict)
    assert parsed["Date"].datetime.tzinfo is not None
    assert len(parsed["From"].addresses) == 1 and "@" in parsed["From"].addresses[0].addr_spec
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith(">")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0" and parsed.get_content_type() == "text/plain"
    return parsed


def test_two_messages_never_share_a_message_id():
    a, b = (auto_message("a@example.org", "b@example.org", "s", "x", "example.org") for _ in "ab")
    assert a["Message-ID"] != b["Message-ID"]


def test_quota_warning_is_well_formed_and_from_the_postmaster():
    msg = strictly(quota_warning.warning("80", "frank@globex.test", "postmaster@acme.test"))
    assert msg["From"].addresses[0].addr_spec == "postmaster@acme.test"
    assert msg["To"] == "frank@globex.test" and msg["Subject"] == "Your mailbox is 80% full"
    assert msg["Message-ID"].endswith("@acme.test>")
    assert "frank@globex.test is now 80% full" in msg.get_content()


def test_quota_warning_is_delivered_with_dovecot_lda_outside_the_quota(monkeypatch):
    calls = []
    monkeypatch.setattr(quota_warning, "outside_quota", lambda: "quota_enforce=no")
    monkeypatch.setattr(subprocess, "run", lambda argv, input: calls.append((argv, input))
                        or subprocess.CompletedProcess(argv, 0))
    assert quota_warning.main(["95", "frank@globex.test", "postmaster@acme.test"]) == 0
    ((argv, data),) = calls
    assert argv == [quota_warning.LDA, "-d", "frank@globex.test", "-o", "quota_enforce=no"]
    assert b"Subject: Your mailbox is 95% full" in data


def test_the_setting_that_lifts_the_quota_is_the_one_of_the_hosts_dovecot():
    assert quota_warning.outside_quota("2.4.1-4 (7d8c0e5759)\n") == "quota_enforce=no"
    assert quota_warning.outside_quota("2.3.19.1 (9b53102964)\n") == "plugin/quota=count:User quota:noenforcing"


def test_quota_warning_refuses_wrong_arguments(capsys):
    assert quota_warning.main(["80", "frank@globex.test"]) == 2
    assert quota_warning.main(["most", "frank@globex.test", "postmaster@acme.test"]) == 2
    assert "usage: mailstack-quota-warning PERCENT USER POSTMASTER" in capsys.readouterr().err


def test_backup_failure_mail_is_well_formed():
    msg = strictly(backup.failure_mail(settings(), {}, "log"))
    assert msg["From"].addresses[0].addr_spec == "root@mx1.example.org"


def test_a_long_message_id_stays_on_one_line():
    domain = "backup-host-with-a-long-name.in-a-datacentre.example.org"
    raw = auto_message(f"root@{domain}", "postmaster@example.org", "s", "x", domain).as_bytes()
    (line,) = [h for h in raw.split(b"\n") if h.startswith(b"Message-ID:")]
    assert line.endswith(domain.encode() + b">")

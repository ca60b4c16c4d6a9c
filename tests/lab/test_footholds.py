"""What an attacker with a foothold tries, performed for real and shown refused
(README, "Security")."""
import imaplib
import shlex
import smtplib

import pytest

from .mailclient import IMAP, message
from .test_trusted_mail import received_on_outside

# A poppassd session as Roundcube's driver speaks it, run on mx1 as www-data (what
# any PHP code there runs as), printing the server's replies.
POPPASSD = """
import socket, sys
s = socket.create_connection(("127.0.0.1", 106), 10)
f = s.makefile("rw", newline="")
print(f.readline().strip())
for line in sys.argv[1:]:
    f.write(line + "\\r\\n"); f.flush()
    reply = f.readline().strip()
    print(reply)
    if not reply.startswith(("2", "3")):
        break
"""


def as_www_data(host, *lines):
    return host.run("runuser -u www-data -- python3 -c " + shlex.quote(POPPASSD) + " "
                    + " ".join(shlex.quote(line) for line in lines))


def logs_in(mx1, address, password):
    imap = IMAP(mx1.address, mx1.hostname, 993, mx1.ca_pem)
    try:
        imap.login(address, password)
        imap.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def test_php_code_cannot_change_a_password_it_does_not_know(hosts, mx1, mailbox):
    host, alice = hosts["mx1"], mailbox("alice@acme.test")   # alice is the postmaster
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    replies = as_www_data(host, f"user {alice['address']}", "pass not-her-password",
                          "newpass taken-over-1234").stdout.splitlines()
    assert replies[0].startswith("200") and replies[1].startswith("200")
    assert replies[2].startswith("500") and len(replies) == 3     # newpass never reached
    assert logs_in(mx1, alice["address"], alice["password"])
    assert not logs_in(mx1, alice["address"], "taken-over-1234")
    log = host.check_output(f"journalctl --since {shlex.quote(since)} -o cat "
                            "-u 'mailstack-password@*'")
    assert f"refused: wrong current password for {alice['address']}" in log


def test_php_code_has_no_other_way_to_root_or_the_password_files(hosts):
    host = hosts["mx1"]
    # No sudo rule for www-data (Roundcube no longer needs one).
    assert host.run("runuser -u www-data -- sudo -n /usr/local/sbin/mailstack-password"
                    " </dev/null").rc != 0
    assert not host.file("/etc/sudoers.d/mailstack-password").exists
    # It cannot make the lock file and hold it to block every change.
    assert host.run("runuser -u www-data -- touch /run/mailstack-password.lock").rc != 0
    # Nor read or write Dovecot's password files or the record of changes.
    for path in ("/etc/dovecot/passwd.imap", "/var/lib/mailstack/password-changes"):
        assert host.run(f"runuser -u www-data -- cat {path}").rc != 0
        assert host.run(f"runuser -u www-data -- sh -c 'echo x >> {path}'").rc != 0


def test_with_the_current_password_a_user_changes_their_own(hosts, mx1, mailbox):
    host, grace = hosts["mx1"], mailbox("grace@acme.test")
    new = "graces-new-passphrase-1"
    try:
        replies = as_www_data(host, f"user {grace['address']}", f"pass {grace['password']}",
                              f"newpass {new}", "quit").stdout.splitlines()
        assert [r[:3] for r in replies] == ["200", "200", "200", "200", "200"], replies
        assert logs_in(mx1, grace["address"], new)
        assert not logs_in(mx1, grace["address"], grace["password"])
    finally:
        host.run(f"printf '%s:%s\\n' {grace['address']} {shlex.quote(grace['password'])}"
                 " | /usr/local/sbin/mailstack-password")
    assert logs_in(mx1, grace["address"], grace["password"])


def test_a_user_cannot_sign_mail_as_someone_else_of_the_domain(hosts, mx1, mailbox):
    carol, outside = mailbox("carol@acme.test"), hosts["outside"]
    _, forged = message("ceo@acme.test", "friend@example.test", "urgent wire transfer")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        mx1.submit(carol, ["friend@example.test"], forged)     # envelope sender: carol
    assert refused.value.smtp_code == 554 and b"not one of yours" in refused.value.smtp_error
    # Her alias (sales@ delivers to her) is hers to use, and is signed.
    message_id, own = message("sales@acme.test", "friend@example.test", "from sales")
    assert mx1.submit(carol, ["friend@example.test"], own) == {}
    path = received_on_outside(outside, message_id)
    assert outside.run(f"dkimverify < {path}").rc == 0
    assert " d=acme.test;" in outside.check_output(f"grep -A1 '^DKIM-Signature' {path}")


# An SMTP session from mx1 itself as www-data: relay a forged From: to the internet.
LOCAL_RELAY = """
import smtplib, sys
with smtplib.SMTP("127.0.0.1", 25, "mx1.acme.test", 10) as s:
    try:
        s.sendmail("ceo@acme.test", ["friend@example.test"],
                   "From: ceo@acme.test\\r\\nTo: friend@example.test\\r\\nSubject: x\\r\\n\\r\\nx\\r\\n")
        print("accepted")
    except smtplib.SMTPRecipientsRefused as e:
        print("refused", e.recipients["friend@example.test"][0])
"""


def test_php_code_can_neither_relay_nor_submit_locally(hosts):
    host = hosts["mx1"]
    out = host.check_output("runuser -u www-data -- python3 -c " + shlex.quote(LOCAL_RELAY))
    assert out.startswith("refused 4") or out.startswith("refused 5"), out
    submit = host.run("printf 'From: ceo@acme.test\\nTo: friend@example.test\\n\\nx\\n' | "
                      "runuser -u www-data -- /usr/sbin/sendmail -t")
    assert submit.rc != 0 and "is not allowed to submit mail" in submit.stderr


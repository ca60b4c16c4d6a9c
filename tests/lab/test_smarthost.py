"""Outbound through a smarthost (relay: in the data), for providers that block port 25:
mail to the internet leaves the primary only through it, logged in (SASL) over TLS
whose certificate is verified, and still carries our DKIM signature. outside is the
smarthost (submission on 587, its own accounts); a variant of the lab's data turns
relay on for mx1, and the lab's own data is deployed back afterwards."""
import contextlib
import email
import email.policy
import re

from .conftest import LAB_DATA, deploy, lab_variant
from .mailclient import message
from .test_secure_transport import log_since, now, queue_id_of, wait_for_log
from .test_trusted_mail import received_on_outside


@contextlib.contextmanager
def sending_through(smarthost, lab, tmp_path):
    """mx1 deployed with outside, named `smarthost`, as its smarthost (the lab's
    account there: labctl made its password, in a file of .lab/)."""
    account = lab["smarthost"]
    data = lab_variant(tmp_path / "mail.yml", append=(
        f"\nrelay:\n  host: {smarthost}\n  port: 587\n  username: {account['username']}\n"
        f"  password_file: {account['password_file']}\n"))
    try:
        deploy(data, "mx1.acme.test")
        yield account
    finally:
        deploy(LAB_DATA, "mx1.acme.test")


def test_with_a_smarthost_mail_to_the_internet_leaves_through_it_authenticated_over_verified_tls_and_still_carries_our_dkim_signature(  # noqa: E501
        mx1, hosts, mailbox, lab, tmp_path):
    alice, mx, outside = mailbox("alice@acme.test"), hosts["mx1"], hosts["outside"]
    with sending_through("mail.example.test", lab, tmp_path) as account:
        assert mx.check_output("postconf -h relayhost") == "[mail.example.test]:587"
        # The password is on mx1 for root only (the table and its .db).
        for path in ("/etc/postfix/sasl_passwd", "/etc/postfix/sasl_passwd.db"):
            assert (mx.file(path).user, mx.file(path).mode) == ("root", 0o600), path
        since, since_outside = now(mx), now(outside)
        message_id, text = message(alice["address"], "friend@example.test", "through the smarthost")
        assert mx1.submit(alice, ["friend@example.test"], text) == {}
        path = received_on_outside(outside, message_id)
        # mx1 checked the smarthost's certificate and name, and handed it the message on 587 ...
        wait_for_log(mx, r"Verified TLS connection established to mail\.example\.test\[10\.66\.0\.20\]:587",
                     since, ["postfix/smarthost/smtp"])
        wait_for_log(mx, r"to=<friend@example\.test>, relay=mail\.example\.test\[10\.66\.0\.20\]:587,"
                         r".* status=sent", since, ["postfix/smarthost/smtp"])
        # ... never to example.test's MX on port 25, which a direct delivery would use.
        assert ":25," not in log_since(mx, since, "postfix/smtp")
        # outside's submission service took it from mx1, logged in with the lab's account.
        wait_for_log(outside, r"client=mx1\.acme\.test\[10\.66\.0\.11\], sasl_method=(PLAIN|LOGIN), "
                              + re.escape(f"sasl_username={account['username']}"),
                     since_outside, ["postfix/submission/smtpd"])
        raw = outside.check_output(f"cat {path}")
        received = email.message_from_string(raw, policy=email.policy.default).get_all("Received")
        assert re.search(r"from mx1\.acme\.test \(mx1\.acme\.test \[10\.66\.0\.11\]\)\s+\(using TLS"
                         r".*\(Authenticated sender: " + re.escape(account["username"]) + r"\)"
                         r"\s+by mail\.example\.test \(Postfix\) with ESMTPSA", received[0], re.S), received
        # Our signature, made by rspamd on mx1, verifies where the mail arrives.
        dkim = outside.run(f"dkimverify < {path}")
        assert dkim.rc == 0 and "signature ok" in dkim.stdout, dkim.stdout + dkim.stderr
        assert " d=acme.test;" in outside.check_output(f"grep -A1 '^DKIM-Signature' {path}")
    # The lab's own data again: straight to the internet, and no password left on mx1.
    assert mx.check_output("postconf -h relayhost") == ""
    assert not mx.file("/etc/postfix/sasl_passwd").exists
    assert not mx.file("/etc/postfix/sasl_passwd.db").exists


def test_a_smarthost_whose_certificate_does_not_verify_gets_no_mail(mx1, hosts, mailbox, lab,
                                                                     tmp_path):
    """outside under a name its certificate does not carry (smtp.example.test): mx1
    keeps the message, and never logs in there."""
    alice, mx, outside = mailbox("alice@acme.test"), hosts["mx1"], hosts["outside"]
    with sending_through("smtp.example.test", lab, tmp_path):
        since, since_outside = now(mx), now(outside)
        message_id, text = message(alice["address"], "friend@example.test", "not to an unverified smarthost")
        assert mx1.submit(alice, ["friend@example.test"], text) == {}
        queue_id = queue_id_of(mx, message_id)
        try:
            wait_for_log(mx, queue_id + r": to=<friend@example\.test>, relay=smtp\.example\.test\[10\.66\.0\.20\]"
                             r":587, .*status=deferred \(Server certificate not verified\)",
                         since, ["postfix/smarthost/smtp"])
            assert queue_id in mx.check_output("postqueue -p")
            assert outside.run(f"grep -rlF '{message_id}' /home/catchall/Maildir/new").stdout == ""
            assert "sasl_username=" not in log_since(outside, since_outside, "postfix/submission/smtpd")
        finally:
            mx.run_expect([0], f"postsuper -d {queue_id}")
    assert queue_id not in mx.check_output("postqueue -p")

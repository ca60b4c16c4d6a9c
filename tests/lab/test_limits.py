"""Limits from the mail data (lab: 25M messages, 50 recipients, 60 messages a
minute per client) hold at the door."""
import pytest


def test_a_message_over_the_size_limit_is_refused_before_it_is_sent(mx1):
    with mx1.smtp(25) as s:
        s.secure()
        code, reply = s.mail("someone@example.test", ["SIZE=30000000"])
    assert code == 552 and b"Message size exceeds fixed limit" in reply


def test_recipients_beyond_the_limit_are_deferred(mx1):
    with mx1.smtp(25) as s:
        s.secure()
        s.mail("someone@example.test")
        codes = [s.rcpt("alice+%d@acme.test" % i)[0] for i in range(51)]
        s.rset()
    assert codes[:50] == [250] * 50 and codes[50] == 452


@pytest.mark.after_all
def test_a_client_sending_too_fast_is_slowed_down(hosts):
    # From outside, and after the other scenarios: outside's own mail to mx1 is
    # deferred for a minute after this.
    script = ("for i in $(seq 1 61); do swaks --server mx1.acme.test --from flood@example.test"
              " --to alice@acme.test --body x --suppress-data >/dev/null 2>&1 || echo refused $i; done;"
              " swaks --server mx1.acme.test --from flood@example.test --to alice@acme.test --body x")
    out = hosts["outside"].run(script).stdout
    assert "450 4.7.1 Error: too much mail from 10.66.0.20" in out

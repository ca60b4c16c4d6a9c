"""Limits from the mail data (lab: 25M messages, 50 recipients, 300 messages a
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


FLOOD = """
import smtplib
replies = []
for connection in range(4):  # 76 RSETs each: below the junk command limit (100)
    with smtplib.SMTP("mx1.acme.test", 25, timeout=20) as s:
        s.ehlo()
        for i in range(76):
            replies.append(s.docmd("MAIL FROM:<flood@example.test>"))
            s.rset()
print(replies[-1])
"""


@pytest.mark.after_all
def test_a_client_sending_too_fast_is_slowed_down(hosts, lab):
    # From the backup machine, idle in these scenarios, so no other client is slowed
    # down (the backup MX may send as fast as it likes: it is exempt).
    out = hosts["backup"].check_output(f"python3 -c '{FLOOD}'")
    address = lab["hosts"]["backup"]["address"]
    assert f"(450, b'4.7.1 Error: too much mail from {address}')" == out

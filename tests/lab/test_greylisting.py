"""Greylisting: a sender never seen before is asked to retry; the retry (after
the lab's 10 s) is accepted. A domain can turn it off (globex.test does)."""
import time
import uuid


def swaks(outside, sender, recipient, body):
    return outside.run(f"swaks --server mx1.acme.test --from {sender} --to {recipient}"
                       f" --header 'Subject: greylisting' --body '{body}'")


def test_a_new_sender_is_deferred_then_accepted_on_retry(hosts):
    # rspamd remembers senders and message bodies: both are new here.
    sender, body = f"new-{uuid.uuid4().hex[:8]}@example.test", uuid.uuid4().hex
    first = swaks(hosts["outside"], sender, "carol@acme.test", body)
    assert "451 4.7.1 Try again later" in first.stdout, first.stdout
    time.sleep(11)
    retry = swaks(hosts["outside"], sender, "carol@acme.test", body)
    assert retry.rc == 0 and "250 2.0.0 Ok: queued" in retry.stdout, retry.stdout


def test_a_domain_without_greylisting_accepts_at_once(hosts):
    sender, body = f"new-{uuid.uuid4().hex[:8]}@example.test", uuid.uuid4().hex
    first = swaks(hosts["outside"], sender, "dave@globex.test", body)
    assert first.rc == 0 and "250 2.0.0 Ok: queued" in first.stdout, first.stdout

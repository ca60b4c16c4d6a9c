"""Each mailbox logs in only over the protocols it was given, and never with a
password in clear."""
import imaplib
import poplib

import pytest

from .mailclient import IMAP, POP3


def test_imap_only_mailbox_is_refused_over_pop3(mx1, mailbox):
    carol = mailbox("carol@acme.test")
    assert carol["protocols"] == ["imap"]
    pop = POP3(mx1.address, mx1.hostname, 995, mx1.ca_pem)
    pop.user(carol["address"])
    with pytest.raises(poplib.error_proto, match="Authentication failed"):
        pop.pass_(carol["password"])
    mx1.imap(carol).logout()          # the same password works over IMAP


def test_pop3_only_mailbox_is_refused_over_imap(mx1, mailbox):
    bob = mailbox("bob@acme.test")
    assert bob["protocols"] == ["pop3"]
    imap = IMAP(mx1.address, mx1.hostname, 993, mx1.ca_pem)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login(bob["address"], bob["password"])
    mx1.pop3(bob).quit()              # the same password works over POP3


def test_plaintext_login_is_refused_on_143_before_starttls(mx1, mailbox):
    alice = mailbox("alice@acme.test")
    imap = IMAP(mx1.address, mx1.hostname, 143, mx1.ca_pem, starttls=False)
    assert "LOGINDISABLED" in imap.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(alice["address"], alice["password"])
    imap.shutdown()


def test_plaintext_login_is_refused_on_110_before_stls(mx1, mailbox):
    alice = mailbox("alice@acme.test")
    pop = POP3(mx1.address, mx1.hostname, 110, mx1.ca_pem, starttls=False)
    with pytest.raises(poplib.error_proto, match="(Plaintext|Cleartext) authentication disallowed"):
        pop.user(alice["address"])
        pop.pass_(alice["password"])
    pop.close()

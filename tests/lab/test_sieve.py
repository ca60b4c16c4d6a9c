"""Users manage their own filters over ManageSieve (4190, TLS only)."""
from .mailclient import ManageSieve, message, wait_for_message

SCRIPT = """require ["fileinto", "mailbox"];
if header :contains "subject" "[invoices]" {
    fileinto :create "Invoices";
}
"""


def test_a_sieve_script_uploaded_over_managesieve_files_mail(mx1, mailbox):
    carol = mailbox("carol@acme.test")
    sieve = ManageSieve(mx1.address, mx1.hostname, mx1.ca_pem)
    assert any('"STARTTLS"' in line for line in sieve.greeting)
    sieve.login(carol["address"], carol["password"])
    sieve.put_and_activate("mailstack-test", SCRIPT)
    sieve.logout()

    message_id, text = message("someone@example.test", carol["address"], "[invoices] November")
    assert mx1.deliver([carol["address"]], text) == {}
    imap = mx1.imap(carol)
    wait_for_message(imap, message_id, mailbox="Invoices")
    imap.select("INBOX")
    assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]
    imap.logout()


def test_managesieve_refuses_login_before_tls(mx1):
    import socket
    with socket.create_connection((mx1.address, 4190), 10) as sock:
        greeting = sock.makefile("rb")
        lines = []
        while not lines or not lines[-1].startswith(b"OK"):
            lines.append(greeting.readline())
    assert not any(b'"SASL" "PLAIN' in line for line in lines)   # no mechanism before TLS

"""Users manage their own filters over ManageSieve (4190, TLS only)."""
import base64
import re
import socket

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


def sieve_response(file):
    """One ManageSieve response (RFC 5804): (its lines before the status line,
    (status, response code or None, text))."""
    lines = []
    while True:
        line = file.readline().decode()
        assert line.endswith("\r\n"), f"connection closed after {lines}"
        line = line[:-2]
        status = re.fullmatch(r'(OK|NO|BYE)(?: \(([^)]*)\))?(?: (.*))?', line)
        if status:
            return lines, status.groups()
        lines.append(line)


def sieve_capabilities(lines):
    """{capability: value} from capability lines such as `"SASL" "PLAIN LOGIN"`."""
    found = {}
    for line in lines:
        item = re.fullmatch(r'"([^"]+)"(?: "([^"]*)")?', line)
        assert item, f"not a capability line: {line!r}"
        found[item.group(1).upper()] = item.group(2)
    return found


def authenticate_plain(mailbox):
    token = base64.b64encode(f"\0{mailbox['address']}\0{mailbox['password']}".encode()).decode()
    return f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode()


def test_managesieve_refuses_login_before_tls_and_takes_it_after_starttls(mx1, mailbox):
    carol = mailbox("carol@acme.test")
    with socket.create_connection((mx1.address, 4190), 10) as sock:
        file = sock.makefile("rb")
        lines, (status, _, _) = sieve_response(file)
        greeting = sieve_capabilities(lines)
        assert status == "OK" and "STARTTLS" in greeting, lines
        assert not greeting.get("SASL"), f"SASL mechanisms offered before TLS: {greeting['SASL']}"
        # Valid credentials, in clear text: refused for want of TLS, not for the password.
        sock.sendall(authenticate_plain(carol))
        _, refusal = sieve_response(file)
        assert refusal[:2] == ("NO", "ENCRYPT-NEEDED"), refusal

    # After STARTTLS, PLAIN is offered and the same login succeeds. (On a new connection:
    # Dovecot's managesieve-login fails the first AUTHENTICATE after TLS on a connection
    # where one was refused before it.)
    sieve = ManageSieve(mx1.address, mx1.hostname, mx1.ca_pem)
    assert sieve.capabilities[-1].startswith("OK")
    assert "PLAIN" in sieve_capabilities(sieve.capabilities[:-1]).get("SASL", "").split()
    sieve.login(carol["address"], carol["password"])        # raises unless the server says OK
    sieve.logout()

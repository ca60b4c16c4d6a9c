"""Every TLS listener on mx1 serves the ACME certificate from the lab CA, TLS 1.2+
only; a renewal run by hand reloads the services without dropping mail."""
import re
import socket
import ssl
import warnings

import pytest

from .mailclient import IMAP, ManageSieve, POP3, message, wait_for_message


def issuer_of(ctx_sock):
    cert = ctx_sock.getpeercert()
    return dict(x[0] for x in cert["issuer"]).get("commonName", "")


@pytest.mark.parametrize("port", [25, 587, 465, 143, 993, 110, 995, 4190])
def test_certificate_on_every_listener_verifies_against_the_lab_ca(mx1, port):
    if port in (25, 587, 465):
        with mx1.smtp(port) as s:
            s.ehlo()
            s.secure()
            assert "Pebble" in issuer_of(s.sock)
    elif port in (143, 993):
        imap = IMAP(mx1.address, mx1.hostname, port, mx1.ca_pem)
        assert "Pebble" in issuer_of(imap.sock)
        imap.logout()
    elif port in (110, 995):
        pop = POP3(mx1.address, mx1.hostname, port, mx1.ca_pem)
        assert "Pebble" in issuer_of(pop.sock)
        pop.quit()
    else:
        sieve = ManageSieve(mx1.address, mx1.hostname, mx1.ca_pem)
        assert "Pebble" in issuer_of(sieve.sock)
        sieve.logout()


IMPLICIT = (465, 993, 995)
# The dialogue before the handshake on each STARTTLS port: (what we say, None for the
# greeting; how the server's reply ends; how it starts when it says yes).
SMTP_END = re.compile(rb"\d{3} ")
STARTTLS = {
    25: [(None, SMTP_END, b"220 "), (b"EHLO probe.example.test", SMTP_END, b"250 "),
         (b"STARTTLS", SMTP_END, b"220 ")],
    143: [(None, re.compile(rb"\* "), b"* OK"), (b"a STARTTLS", re.compile(rb"a "), b"a OK")],
    110: [(None, re.compile(rb"[+-]"), b"+OK"), (b"STLS", re.compile(rb"[+-]"), b"+OK")],
    4190: [(None, re.compile(rb"(OK|NO|BYE)\b"), b"OK"), (b"STARTTLS", re.compile(rb"(OK|NO|BYE)\b"), b"OK")],
}
STARTTLS[587] = STARTTLS[25]
WIRE = {ssl.TLSVersion.TLSv1: 0x0301, ssl.TLSVersion.TLSv1_1: 0x0302,
        ssl.TLSVersion.TLSv1_2: 0x0303, ssl.TLSVersion.TLSv1_3: 0x0304}
PROTOCOL_VERSION = ("alert", 2, 70)     # a fatal protocol_version alert (RFC 8446, 6.2)
CLOSED = ("closed",)                    # the server hung up without a word


def starttls(sock, port):
    file = sock.makefile("rb")
    for say, ends, yes in STARTTLS[port]:
        if say:
            sock.sendall(say + b"\r\n")
        reply = []
        while not reply or not ends.match(reply[-1]):
            reply.append(file.readline())
            assert reply[-1].endswith(b"\r\n"), reply
        assert reply[-1].startswith(yes), reply
    file.close()


def offered_versions(hello):
    """The TLS versions a ClientHello record offers (supported_versions, else its
    legacy version)."""
    assert hello[0] == 0x16 and hello[5] == 0x01, hello[:6]       # handshake, ClientHello
    assert len(hello) == 5 + int.from_bytes(hello[3:5], "big"), "not one whole record"
    body = hello[9:]
    i = 2 + 32                                                     # version, random
    i += 1 + body[i]                                               # session id
    i += 2 + int.from_bytes(body[i:i + 2], "big")                  # cipher suites
    i += 1 + body[i]                                               # compression methods
    end, i = i + 2 + int.from_bytes(body[i:i + 2], "big"), i + 2
    while i < end:
        kind, size = int.from_bytes(body[i:i + 2], "big"), int.from_bytes(body[i + 2:i + 4], "big")
        if kind == 0x2b:                                           # supported_versions
            data = body[i + 5:i + 4 + size]
            return {int.from_bytes(data[j:j + 2], "big") for j in range(0, len(data), 2)}
        i += 4 + size
    return {int.from_bytes(body[0:2], "big")}


def answer(received):
    """What the server sent back to our hello: CLOSED, ("alert", level, description),
    or ("handshake", record type) when it went on with a handshake of its own."""
    if not received:
        return CLOSED
    if received[0] == 0x15 and len(received) >= 7:
        return ("alert", received[5], received[6])
    return ("handshake", received[0])


def goodbye(sock, tls, outgoing):
    """Our close_notify, then what the server still sends until it hangs up (closing
    with its session tickets unread would reset the connection)."""
    try:
        tls.unwrap()
    except ssl.SSLError:                       # its greeting or tickets are still unread
        pass
    sock.sendall(outgoing.read())
    sock.settimeout(2)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def handshake(mx, port, version):
    """A TLS handshake offering only `version` (after STARTTLS where the port has it),
    our side as willing as OpenSSL can be: (the versions our hello offered, the
    outcome: the version agreed, or the server's refusal, as answer() reads it from
    the bytes the server sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=mx.ca_pem)
    with warnings.catch_warnings():            # Python deprecates TLS 1.0 and 1.1: so do we
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")     # so that our side offers TLS 1.0 and 1.1 at all
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=mx.hostname)
    offered, received = None, b""
    with socket.create_connection((mx.address, port), 10) as sock:
        if port not in IMPLICIT:
            starttls(sock, port)
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                if offered is None:
                    raise                      # our side refused before saying anything
                return offered, answer(received)
            else:
                sock.sendall(outgoing.read())
                agreed = tls.version()
                goodbye(sock, tls, outgoing)
                return offered, agreed
            data = outgoing.read()
            if offered is None:
                offered = offered_versions(data)
            sock.sendall(data)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return offered, answer(received)
            received += chunk
            incoming.write(chunk)


@pytest.mark.parametrize("port", [25, 587, 465, 143, 993, 110, 995, 4190])
def test_tls_1_2_and_1_3_are_agreed_on_every_port(mx1, port):
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        assert handshake(mx1, port, version) == ({WIRE[version]}, name)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["1.0", "1.1"])
@pytest.mark.parametrize("port", [25, 587, 465, 143, 993, 110, 995, 4190])
def test_tls_1_0_and_1_1_are_refused_by_the_server_on_every_port(mx1, port, version):
    # Our hello offered that version and nothing else; the server said no to it: Postfix
    # with its alert, Dovecot by hanging up (it sends no alert). The same client agrees
    # on TLS 1.2 there: the server hangs up on old versions, not on everyone.
    assert handshake(mx1, port, ssl.TLSVersion.TLSv1_2)[1] == "TLSv1.2"
    offered, outcome = handshake(mx1, port, version)
    assert offered == {WIRE[version]}
    assert outcome in (PROTOCOL_VERSION, CLOSED), outcome


def test_renewal_by_hand_reloads_services_without_dropping_mail(mx1, hosts, mailbox):
    mx = hosts["mx1"]
    before = mx.check_output("openssl x509 -noout -serial -in /etc/letsencrypt/live/mailstack/cert.pem")
    postfix_pid = mx.check_output("systemctl show -p MainPID --value postfix@-")
    # Mail in flight while the certificate changes.
    alice = mailbox("alice@acme.test")
    message_id, text = message("someone@example.test", alice["address"], "during renewal")
    mx.run_expect([0], "certbot renew --force-renewal --no-random-sleep-on-renew -q")
    assert mx1.deliver([alice["address"]], text) == {}
    after = mx.check_output("openssl x509 -noout -serial -in /etc/letsencrypt/live/mailstack/cert.pem")
    assert after != before
    # Reloaded, not restarted: same master process, new certificate served.
    assert mx.check_output("systemctl show -p MainPID --value postfix@-") == postfix_pid
    served = ssl.DER_cert_to_PEM_cert(
        IMAP(mx1.address, mx1.hostname, 993, mx1.ca_pem).sock.getpeercert(binary_form=True))
    assert served.strip() == mx.check_output("cat /etc/letsencrypt/live/mailstack/cert.pem").strip()
    imap = mx1.imap(alice)
    wait_for_message(imap, message_id)
    imap.logout()

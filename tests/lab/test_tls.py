"""Every TLS listener on mx1 serves the ACME certificate from the lab CA, TLS 1.2+
only; a renewal run by hand reloads the services without dropping mail."""
import socket
import ssl

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


# What a client says and waits for before its TLS handshake on each STARTTLS port.
STARTTLS = {25: (b"EHLO probe.example.test\r\nSTARTTLS\r\n", b"220 2.0.0"),
            587: (b"EHLO probe.example.test\r\nSTARTTLS\r\n", b"220 2.0.0"),
            143: (b"a STARTTLS\r\n", b"a OK"), 110: (b"STLS\r\n", b"+OK Begin"),
            4190: (b"STARTTLS\r\n", b"OK \"Begin")}


def handshake(mx1, port, version):
    """A TLS handshake offering only `version` (after STARTTLS where the port has it);
    the server's answer: "ok", the alert it sent, or that it hung up. (A refusal by
    our own side would be another SSLError, before anything is sent.)"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=mx1.ca_pem)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("ALL:@SECLEVEL=0")     # so that our side can offer TLS 1.1 at all
    with socket.create_connection((mx1.address, port), 10) as sock:
        if port in STARTTLS:
            say, ready = STARTTLS[port]
            sock.sendall(say)
            seen = b""
            while ready not in seen:
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
        try:
            ctx.wrap_socket(sock, server_hostname=mx1.hostname).close()
            return "ok"
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return "closed by the server"        # Dovecot hangs up on our hello
        except ssl.SSLError as e:
            return e.reason                      # the alert the server sent


@pytest.mark.parametrize("port", [25, 587, 465, 143, 993, 110, 995, 4190])
def test_tls_1_1_is_refused_by_the_server_on_every_port(mx1, port):
    # The same client does TLS 1.2 there: the refusal is the server's, by its alert.
    assert handshake(mx1, port, ssl.TLSVersion.TLSv1_2) == "ok"
    assert handshake(mx1, port, ssl.TLSVersion.TLSv1_1) in ("TLSV1_ALERT_PROTOCOL_VERSION",
                                                            "closed by the server")


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

"""Real protocol clients for lab scenarios. TLS is always verified, name included:
clients connect to a lab address but check the certificate against the host name."""
import imaplib
import smtplib
import socket
import ssl
import time


def tls_context(ca_pem):
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class IMAP(imaplib.IMAP4):
    """IMAP to `address`, verifying TLS for `hostname` (STARTTLS, or implicit on 993)."""

    def __init__(self, address, hostname, port, ca_pem, implicit_tls=False):
        self._address, self._ctx, self._implicit = address, tls_context(ca_pem), implicit_tls
        super().__init__(hostname, port, timeout=20)
        if not implicit_tls:
            self.starttls(ssl_context=self._ctx)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self._address, self.port), timeout)
        return self._ctx.wrap_socket(sock, server_hostname=self.host) if self._implicit else sock


def wait_for_message(imap, message_id, timeout=60, mailbox="INBOX"):
    """Return the raw message with this Message-ID once it is in `mailbox`."""
    deadline = time.monotonic() + timeout
    while True:
        imap.select(mailbox)
        typ, data = imap.search(None, "HEADER", "Message-ID", message_id)
        if data[0]:
            typ, msg = imap.fetch(data[0].split()[-1], "(RFC822)")
            return msg[0][1]
        if time.monotonic() > deadline:
            raise AssertionError(f"{message_id} not in {mailbox} after {timeout}s")
        time.sleep(1)


def smtp(address, port=25, timeout=20):
    return smtplib.SMTP(address, port, timeout=timeout, local_hostname="operator.lab.test")

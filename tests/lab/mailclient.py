"""Real protocol clients for lab scenarios. TLS is always verified, host name
included: the operator machine does not use the lab DNS, so each client connects
to a lab address while checking the certificate against the host's name."""
import base64
import hashlib
import http.client
import json
import imaplib
import poplib
import re
import shlex
import smtplib
import socket
import ssl
import time
import uuid


def https(address, name, path, ca_pem, method="GET", body=None, headers=None):
    """(status, {lowercase header: value}, body bytes) from the HTTPS server at
    `address`, for the virtual host `name`."""
    conn = http.client.HTTPConnection(name, 443, timeout=20)
    conn.sock = tls_context(ca_pem).wrap_socket(socket.create_connection((address, 443), 10),
                                                server_hostname=name)
    conn.request(method, path, body=body, headers={"Host": name, **(headers or {})})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def tls_context(ca_pem):
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class IMAP(imaplib.IMAP4):
    """IMAP to `address`, verifying TLS for `hostname` (STARTTLS, or implicit on 993)."""

    def __init__(self, address, hostname, port, ca_pem, starttls=True):
        self._address, self._ctx = address, tls_context(ca_pem)
        self._implicit = port == 993
        super().__init__(hostname, port, timeout=20)
        if starttls and not self._implicit:
            self.starttls(ssl_context=self._ctx)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self._address, self.port), timeout)
        return self._ctx.wrap_socket(sock, server_hostname=self.host) if self._implicit else sock


class POP3(poplib.POP3):
    """POP3 to `address`, verifying TLS for `hostname` (STLS, or implicit on 995)."""

    def __init__(self, address, hostname, port, ca_pem, starttls=True):
        self._address, self._ctx = address, tls_context(ca_pem)
        self._implicit = port == 995
        super().__init__(hostname, port, timeout=20)
        if starttls and not self._implicit:
            self.stls(context=self._ctx)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self._address, self.port), timeout)
        return self._ctx.wrap_socket(sock, server_hostname=self.host) if self._implicit else sock


class SMTP(smtplib.SMTP):
    """SMTP to `address` as `hostname`: STARTTLS verifies the name, 465 is implicit TLS."""

    def __init__(self, address, hostname, port=25, ca_pem=None):
        self._address, self._ctx = address, tls_context(ca_pem) if ca_pem else None
        self._implicit = port == 465
        super().__init__(hostname, port, local_hostname="operator.example.test", timeout=20)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self._address, port), timeout)
        return self._ctx.wrap_socket(sock, server_hostname=host) if self._implicit else sock

    def secure(self):
        if not self._implicit:
            self.starttls(context=self._ctx)
        self.ehlo()
        return self


class ManageSieve:
    """Just enough ManageSieve (RFC 5804) to upload and activate a script."""

    def __init__(self, address, hostname, ca_pem, port=4190):
        self.sock = socket.create_connection((address, port), 20)
        self.file = self.sock.makefile("rb")
        self.greeting = self._response()
        self._send("STARTTLS")
        self._ok()
        self.sock = tls_context(ca_pem).wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")
        self.capabilities = self._response()

    def _send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def _response(self):
        lines = []
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            lines.append(line)
            if re.match(r"^(OK|NO|BYE)\b", line):
                return lines

    def _ok(self):
        lines = self._response()
        if not lines[-1].startswith("OK"):
            raise RuntimeError(f"ManageSieve: {lines[-1]}")
        return lines

    def login(self, user, password):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self._send(f'AUTHENTICATE "PLAIN" "{token}"')
        self._ok()

    def put_and_activate(self, name, script):
        data = script.encode()
        self.sock.sendall(f'PUTSCRIPT "{name}" {{{len(data)}+}}\r\n'.encode() + data + b"\r\n")
        self._ok()
        self._send(f'SETACTIVE "{name}"')
        self._ok()

    def logout(self):
        self._send("LOGOUT")
        self._response()
        self.sock.close()


def wait_until(condition, timeout=20, what="the condition never held"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.5)


def wait_for_message(imap, message_id, timeout=60, mailbox="INBOX"):
    """Return the raw message with this Message-ID once it is in `mailbox`."""
    deadline = time.monotonic() + timeout
    while True:
        # A folder the delivery creates (Sieve's fileinto :create) may not be there yet.
        selected = imap.select(f'"{mailbox}"')[0] == "OK"
        data = imap.search(None, "HEADER", "Message-ID", message_id)[1] if selected else [b""]
        if data[0]:
            typ, msg = imap.fetch(data[0].split()[-1], "(RFC822)")
            return msg[0][1]
        if time.monotonic() > deadline:
            raise AssertionError(f"{message_id} not in {mailbox} after {timeout}s")
        time.sleep(0.5)


def digest(raw):
    """A message's identity in comparisons: a hash of its whole text, line ends
    normalised (IMAP serves CRLF, a Maildir stores LF). Any message has one, with
    or without a Message-ID; duplicates count twice."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()[:20]


def mailbox_state(imap):
    """{folder: sorted [(digest, flags)]}: what an IMAP user sees (shared mailboxes
    included; the "shared" level above them holds no mail)."""
    state = {}
    for line in imap.list()[1]:
        flags, folder = re.match(r'\((.*?)\) (?:".+?"|NIL) (.*)$', line.decode()).groups()
        folder = folder.strip('"')
        if "\\Noselect" in flags or "\\NonExistent" in flags:
            continue
        count = int(imap.select(f'"{folder}"', readonly=True)[1][0])
        data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")[1] if count else []
        found = []
        for item in data:
            if isinstance(item, tuple):
                flags = tuple(sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                                     .decode().split() if f != "\\Recent"))
                found.append((digest(item[1]), flags))
        state[folder] = sorted(found)
    return state


# Run on a mail host: the same state read from the Maildir (flags as Maildir letters),
# for mailboxes that cannot log in over IMAP.
MAILDIR_STATE = r"""
import hashlib, json, os, sys
root, state = sys.argv[1], {}
for folder in [""] + sorted(d for d in os.listdir(root) if d.startswith(".")) if os.path.isdir(root) else []:
    found = []
    for sub in ("cur", "new"):
        d = os.path.join(root, folder, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                text = f.read().replace(b"\r\n", b"\n")
            found.append([hashlib.sha256(text).hexdigest()[:20], name.partition(":2,")[2]])
    state[folder[1:] or "INBOX"] = sorted(found)
print(json.dumps(state))
"""


def maildir_state(host, address):
    """{folder: sorted [[digest, maildir flags]]} of `address`'s Maildir on `host`
    (a testinfra host)."""
    home = host.check_output(f"doveadm user -f home {address}")
    return json.loads(host.check_output(
        f"python3 -c {shlex.quote(MAILDIR_STATE)} {shlex.quote(home + '/Maildir')}"))


def message(sender, recipient, subject="test", body="Hello.", message_id=None, extra=""):
    message_id = message_id or f"<{uuid.uuid4()}@mailstack.test>"
    return message_id, (f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
                        f"Message-ID: {message_id}\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
                        f"{extra}\r\n{body}\r\n")


class Server:
    """A lab mail server seen from a client: logged-in sessions on each port."""

    def __init__(self, address, hostname, ca_pem):
        self.address, self.hostname, self.ca_pem = address, hostname, ca_pem

    def imap(self, mailbox, port=993):
        imap = IMAP(self.address, self.hostname, port, self.ca_pem)
        imap.login(mailbox["address"], mailbox["password"])
        return imap

    def pop3(self, mailbox, port=995):
        pop = POP3(self.address, self.hostname, port, self.ca_pem)
        pop.user(mailbox["address"])
        pop.pass_(mailbox["password"])
        return pop

    def smtp(self, port=25):
        return SMTP(self.address, self.hostname, port, self.ca_pem)

    def deliver(self, recipients, text, sender="someone@example.test"):
        """Inbound mail on port 25 (STARTTLS), as another mail server sends it;
        returns what the server said to each refused recipient."""
        with self.smtp(25) as s:
            s.secure()
            return s.sendmail(sender, recipients, text)

    def submit(self, mailbox, recipients, text, sender=None, port=587):
        """Authenticated submission; returns what the server said to each recipient."""
        with self.smtp(port) as s:
            s.secure()
            s.login(mailbox["address"], mailbox["password"])
            return s.sendmail(sender or mailbox["address"], recipients, text)

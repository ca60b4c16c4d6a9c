"""The mail a client brings from their old provider (tests/lab/test_migration.py): years
of it per person, made from a seed, the same on every run. Folders nested two deep,
one with a non-ASCII name; flags \\Seen, \\Flagged, \\Answered and a keyword;
internal dates spread over ten years; 7-bit, quoted-printable, raw 8-bit UTF-8 in
headers and bodies (8bit transfer encoding), multipart with attachments, no
Message-ID now and then, and a few large messages (5 to 10 MB).

    messages(seed, address, count, large=())  the messages, in APPEND order
    fill(imap, messages)                      APPEND them (folders made as needed)
"""
import base64
import datetime
import hashlib
import imaplib
import random
import re
from dataclasses import dataclass

# "/" separates folder levels here; fill() uses the server's own separator.
FOLDERS = [("INBOX", 30), ("Sent", 15), ("Drafts", 2), ("Trash", 4), ("Archive/2016", 8),
           ("Archive/2019", 8), ("Archive/2023", 8), ("Projects", 5), ("Projects/TPS reports", 8),
           ("Projects/Bücher & Co", 4), ("Lists/debian-user", 8)]
KEYWORD = "$TPSReport"
FIRST, LAST = datetime.datetime(2016, 1, 1), datetime.datetime(2026, 6, 30)
WORDS = ("memo report cover sheet stapler basement budget Friday meeting printer jam "
         "deadline quarterly review client project update lunch").split()
UTF8_WORDS = "Grüße Ärger Öl Übermut déjà naïve café 日本語 Ελληνικά Привет".split()


@dataclass(frozen=True)
class OldMessage:
    folder: str
    flags: tuple
    received: int           # seconds since the epoch (UTC): the IMAP internal date
    raw: bytes

    @property
    def digest(self):
        return hashlib.sha256(self.raw.replace(b"\r\n", b"\n")).hexdigest()[:20]


def _date(when):
    return when.strftime("%a, %d %b %Y %H:%M:%S +0000")


def _body(rng, words, lines):
    return "\r\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
                       for _ in range(lines)) + "\r\n"


def _message(rng, address, i, when, kind, large_size=0):
    other = f"{rng.choice(['bill', 'michael', 'joanna', 'tom'])}@{rng.choice(['initech.test', 'example.test'])}"
    headers = [f"From: {other}", f"To: {address}", f"Date: {_date(when)}"]
    if rng.random() > 0.05:                     # some mail out there has no Message-ID
        headers.append(f"Message-ID: <{rng.getrandbits(64):016x}.{i}@old.example.test>")
    subject = " ".join(rng.choice(WORDS) for _ in range(3))
    if kind == "8bit":
        headers += [f"Subject: {rng.choice(UTF8_WORDS)} {subject}", "MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        body = _body(rng, WORDS + UTF8_WORDS, rng.randint(3, 30))
    elif kind == "encoded-word":
        headers += [f"Subject: =?utf-8?b?{base64.b64encode(rng.choice(UTF8_WORDS).encode()).decode()}?= "
                    f"{subject}", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                    "Content-Transfer-Encoding: quoted-printable"]
        body = "Gr=C3=BC=C3=9Fe aus dem Keller, =E2=9C=93\r\n" + _body(rng, WORDS, rng.randint(1, 10))
    elif kind in ("attachment", "large"):
        size = large_size or rng.randint(2_000, 60_000)
        blob = base64.encodebytes(rng.randbytes(size)).decode().replace("\n", "\r\n")
        headers += [f"Subject: {subject} (attached)", "MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="=_old"']
        body = ("--=_old\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                + _body(rng, WORDS, 3) + "--=_old\r\nContent-Type: application/octet-stream; "
                f'name="scan-{i}.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + blob
                + "--=_old--\r\n")
    else:
        headers.append(f"Subject: {subject}")
        body = _body(rng, WORDS, rng.randint(1, 40))
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def messages(seed, address, count, large=()):
    """`count` messages for `address`, and one more per size in `large` (bytes of the
    attachment), the same for the same arguments on every run."""
    rng = random.Random(f"{seed}:{address}")
    names, weights = zip(*FOLDERS)
    span = int((LAST - FIRST).total_seconds())
    out = []
    kinds = ["plain"] * 12 + ["8bit"] * 3 + ["encoded-word", "attachment"]
    for i in range(count + len(large)):
        is_large = i >= count
        when = FIRST + datetime.timedelta(seconds=rng.randrange(span))
        kind = "large" if is_large else rng.choice(kinds)
        raw = _message(rng, address, i, when, kind, large[i - count] if is_large else 0)
        flags = [f for f, p in (("\\Seen", 0.7), ("\\Flagged", 0.1), ("\\Answered", 0.15),
                                (KEYWORD, 0.08)) if rng.random() < p]
        folder = "INBOX" if is_large else rng.choices(names, weights)[0]
        epoch = int(when.replace(tzinfo=datetime.timezone.utc).timestamp()) + rng.randint(0, 3600)
        out.append(OldMessage(folder, tuple(flags), epoch, raw))
    return out


def utf7(name):
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3)."""
    out, pending = [], ""

    def flush():
        if pending:
            b64 = base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            pending = ""
            out.append("&-" if ch == "&" else ch)
        else:
            pending += ch
    flush()
    return "".join(out)


def from_utf7(name):
    """A folder name from IMAP's modified UTF-7 back to text (utf7's inverse)."""
    def decode(m):
        if not m.group(1):
            return "&"
        b64 = m.group(1).replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")
    return re.sub(r"&([^-]*)-", decode, name)


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def separator(imap):
    """The server's folder hierarchy separator."""
    _, data = imap.list('""', '""')
    found = re.match(rb'\(.*?\) "(.)"', data[0])
    return found.group(1).decode() if found else "/"


def fill(imap, batch):
    """APPEND every message with its flags and internal date, making and subscribing
    each folder first."""
    sep = separator(imap)
    made = {"INBOX"}
    for m in batch:
        name = quoted(utf7(m.folder.replace("/", sep)))
        if m.folder not in made:
            typ, data = imap.create(name)
            assert typ == "OK" or b"ALREADYEXISTS" in data[0], (m.folder, data)
            imap.subscribe(name)
            made.add(m.folder)
        typ, data = imap.append(name, f"({' '.join(m.flags)})",
                                imaplib.Time2Internaldate(m.received), m.raw)
        assert typ == "OK", (m.folder, data)

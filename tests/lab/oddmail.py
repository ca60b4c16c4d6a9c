"""Mail as the real world sends it, not as tests write it: no Message-ID (as spam
often is), no Date, the same message twice, raw 8-bit text in headers and body,
a large attachment, an empty body. tests/play_with_lab.py sends these to the lab
as a user trying it out would; scenarios use them to show that what they compare
holds for any mail."""
import base64
import os
import time
import uuid


def odd_messages(sender, recipient, tag=None):
    """[(name, message bytes)]; `tag` (default: random) makes this batch unique."""
    tag = tag or uuid.uuid4().hex[:8]
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())

    def text(headers, body):
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()

    plain = [f"From: {sender}", f"To: {recipient}"]
    duplicate = text(plain + [f"Subject: twice {tag}", f"Message-ID: <{tag}.twice@example.test>",
                              f"Date: {date}"], "Sent twice, byte for byte.\r\n")
    blob = base64.encodebytes(os.urandom(3 * 1024 * 1024)).decode().replace("\n", "\r\n")
    return [
        ("no Message-ID", text(plain + [f"Subject: no id {tag}", f"Date: {date}"],
                               "This message has no Message-ID.\r\n")),
        ("no Date", text(plain + [f"Subject: no date {tag}",
                                  f"Message-ID: <{tag}.nodate@example.test>"],
                         "This message has no Date.\r\n")),
        ("duplicate 1", duplicate),
        ("duplicate 2", duplicate),
        ("8-bit", (f"From: {sender}\r\nTo: {recipient}\r\nSubject: Grüße {tag} ✓\r\n"
                   f"Date: {date}\r\n\r\nÄrger, Öl, Übermut — déjà vu, naïve café. 日本語\r\n"
                   ).encode()),
        ("large", text(plain + [f"Subject: large {tag}", f"Date: {date}",
                                f"Message-ID: <{tag}.large@example.test>", "MIME-Version: 1.0",
                                'Content-Type: multipart/mixed; boundary="b"'],
                       "--b\r\nContent-Type: text/plain\r\n\r\nA 3 MB attachment.\r\n"
                       "--b\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n" + blob + "--b--\r\n")),
        ("empty body", text(plain + [f"Subject: empty {tag}", f"Date: {date}",
                                     f"Message-ID: <{tag}.empty@example.test>"], "")),
    ]

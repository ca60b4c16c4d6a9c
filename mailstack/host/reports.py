"""mailstack-reports: the DMARC aggregate and TLS-RPT reports that reached the
system's reporting address, for `mailstack reports` to read on the operator's side.

    mailstack-reports fetch --since SECONDS MAILBOX...

prints one JSON line per message in the mailboxes' Maildirs (every folder) that
arrived in the last SECONDS and carries a report (a gzip, zip or XML attachment, or
TLS-RPT's application/tlsrpt+gzip or +json): {"mailbox", "raw": base64 of the
message}. Other mail is not read past its headers and MIME types; nothing changes.
"""
import argparse
import base64
import email
import email.policy
import json
import os
import subprocess
import sys
import time

REPORT_TYPES = ("application/gzip", "application/x-gzip", "application/zip", "application/x-zip-compressed",
                "application/xml", "text/xml", "application/tlsrpt+gzip", "application/tlsrpt+json")


def home_of(mailbox):
    out = subprocess.run(["doveadm", "user", "-f", "home", mailbox], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def message_files(maildir, since):
    for folder in [maildir] + [os.path.join(maildir, d) for d in sorted(os.listdir(maildir))
                               if d.startswith(".") and os.path.isdir(os.path.join(maildir, d, "cur"))]:
        for sub in ("new", "cur"):
            directory = os.path.join(folder, sub)
            for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
                path = os.path.join(directory, name)
                if os.path.getmtime(path) >= since:
                    yield path


def is_report(raw):
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    return any(part.get_content_type() in REPORT_TYPES for part in message.walk())


def fetch(args):
    since = time.time() - args.since
    for mailbox in args.mailboxes:
        home = home_of(mailbox)
        maildir = os.path.join(home, "Maildir") if home else None
        if not maildir or not os.path.isdir(maildir):
            continue
        for path in message_files(maildir, since):
            with open(path, "rb") as f:
                raw = f.read()
            if is_report(raw):
                print(json.dumps({"mailbox": mailbox, "raw": base64.b64encode(raw).decode()}))


def main(argv=None):
    p = argparse.ArgumentParser(prog="mailstack-reports")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("--since", type=int, required=True, metavar="SECONDS")
    f.add_argument("mailboxes", nargs="+", metavar="MAILBOX")
    f.set_defaults(func=fetch)
    args = p.parse_args(argv)
    args.func(args)
    sys.stdout.flush()

#!/usr/bin/env python3
"""Use the lab as a person would before running `make test` again: odd mail
(tests/lab/oddmail.py) arrives in every mailbox over port 25, and the IMAP users
put some into folders of their own. `make test` must still pass afterwards.

    .venv/bin/python tests/play_with_lab.py
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.mailclient import Server  # noqa: E402
from tests.lab.oddmail import odd_messages  # noqa: E402


def main():
    lab = json.loads((ROOT / ".lab" / "lab.json").read_text())
    mx1 = lab["hosts"]["mx1"]
    server = Server(mx1["address"], mx1["fqdn"], Path(lab["ca_certificate"]).read_text())
    sent = 0
    for box in lab["mailboxes"]:
        if box["quota"] < 10 * 1024 * 1024:     # a tiny quota: the large one would not fit
            continue
        for name, raw in odd_messages("someone@example.test", box["address"]):
            refused = server.deliver([box["address"]], raw)
            assert not refused, (box["address"], name, refused)
            sent += 1
        if "imap" in box["protocols"]:
            imap = server.imap(box)
            imap.create("Played")
            for name, raw in odd_messages("friend@example.test", box["address"]):
                imap.append("Played", "(\\Seen)", None, raw)
            imap.logout()
    print(f"{sent} odd messages delivered, folder 'Played' filled for the IMAP users")


if __name__ == "__main__":
    main()

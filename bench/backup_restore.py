#!/usr/bin/env python3
"""Benchmark P4: backups of 10,000 messages on the lab's primary: restic and Borg
against two plain copies, a full tar and an incremental rsync.

    .venv/bin/python bench/backup_restore.py [--rounds 3] [--messages 10000] [--json]

Seeds a corpus that looks like mail into a "Bench" folder of four lab mailboxes:
messages built with Python's `email` (text from a 5,000-word made-up vocabulary drawn
with Zipf's law, as words in real text are; a quarter with an HTML part; one in seven
with an attachment of random bytes, 8-400 KiB, which no tool can compress), so the
figures are not flattered by text that compresses a hundredfold. Then for each tool,
ROUNDS times: empties mx1's repository on the backup host, times a first backup
(`mailstack-backup run`), a second one with nothing changed, and a restore of
/var/vmail into a scratch directory (`mailstack-backup extract`).

The floors: `tar` of /var/vmail piped over SSH (mx1 -> operator -> backup host, one
more hop than the tools) and back; and `rsync -a --delete` of /var/vmail from mx1 to
the operator machine, run twice (the second is rsync's "nothing changed": it compares
sizes and times of 10,000 files) and back. rsync is installed on mx1 for the run and
removed after if it was not there. Prints medians with min-max. Leaves the lab as it
found it (Bench folders deleted, the lab's tool redeployed, a normal backup run).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labrun import ROOT, spread, ssh

LAB = json.loads((ROOT / ".lab" / "lab.json").read_text())
DATA = ROOT / "inventory" / "lab" / "mail.yml"
MAILBOXES = ["alice@acme.test", "carol@acme.test", "dave@globex.test", "erin@acme.test"]
SEED = r"""
import os, random, subprocess, sys, time
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone
random.seed(7)
letters = "etaoinshrdlucmfwypvbgkjqxz"
vocab = ["".join(random.choices(letters, weights=range(26, 0, -1), k=random.randint(2, 11)))
         for _ in range(5000)]
zipf = [1 / rank for rank in range(1, len(vocab) + 1)]
def text(words):
    out = random.choices(vocab, weights=zipf, k=words)
    lines, line = [], []
    for w in out:
        line.append(w)
        if len(line) > 11:
            lines.append(" ".join(line).capitalize() + ".")
            line = []
    return "\n".join(lines) + "\n"
boxes, total = sys.argv[1].split(","), int(sys.argv[2])
for n in range(total):
    box = boxes[n % len(boxes)]
    local, domain = box.split("@")
    folder = f"/var/vmail/{domain}/{local}/Maildir/.Bench"
    for sub in ("cur", "new", "tmp"):
        os.makedirs(f"{folder}/{sub}", exist_ok=True)
    m = EmailMessage()
    m["From"] = f"{random.choice(vocab)}@{random.choice(vocab)}.test"
    m["To"] = box
    m["Subject"] = " ".join(random.choices(vocab, weights=zipf, k=random.randint(2, 8)))
    m["Date"] = format_datetime(datetime.fromtimestamp(1.6e9 + n * 3000, timezone.utc))
    m["Message-ID"] = f"<bench-{n}@example.test>"
    body = text(random.randint(40, 1500))
    m.set_content(body)
    if n % 4 == 0:
        m.add_alternative("<html><body><p>" + body.replace("\n", "</p>\n<p>") + "</p></body></html>",
                          subtype="html")
    if n % 7 == 0:
        m.add_attachment(os.urandom(random.randint(8, 400) * 1024), maintype="application",
                         subtype="octet-stream", filename=f"{random.choice(vocab)}.bin")
    with open(f"{folder}/cur/{1600000000 + n}.bench{n}.mx1:2,S", "wb") as f:
        f.write(bytes(m))
subprocess.run(["chown", "-R", "vmail:vmail", "/var/vmail"], check=True)
for box in boxes:
    subprocess.run(["doveadm", "force-resync", "-u", box, "Bench"], check=True)
"""


def timed(host, command):
    t0 = time.monotonic()
    ssh(host, command)
    return time.monotonic() - t0


def local(command):
    t0 = time.monotonic()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def deploy(tool, scratch):
    """The lab's data with `tool`, backing up to the backup host only (one copy)."""
    data = scratch / "mail.yml"
    text = re.sub(r"\n  # A second copy.*?\n      url: [^\n]*", "", DATA.read_text(), flags=re.S)
    data.write_text(text.replace("tool: restic", f"tool: {tool}"))
    # password_hashes_file is a file beside the data.
    shutil.copyfile(ROOT / ".lab" / "password-hashes.yml", scratch / "password-hashes.yml")
    subprocess.run([str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "--limit", "mx1.acme.test",
                    "--limit", "backup.acme.test", "inventory/lab.py", "deploy.py"], cwd=ROOT,
                   check=True, capture_output=True, env={**os.environ, "MAILSTACK_LAB_DATA": str(data)})


def empty_repository(tool):
    # The backup host's ledger of that repository goes too: a new repository.
    ssh("backup", f"rm -rf /srv/mailstack-backup/mx1.acme.test/{tool}/* "
                  f"/srv/mailstack-backup/mx1.acme.test/{tool}/.[!.]* "
                  f"/var/lib/mailstack-backup-server/mx1.acme.test.{tool}.json")
    ssh("mx1", "rm -rf /var/cache/mailstack-backup /var/lib/mailstack-backup/borg")


def tool_round():
    first = timed("mx1", "mailstack-backup run")
    again = timed("mx1", "mailstack-backup run")
    restore = timed("mx1", "rm -rf /var/tmp/bench-restore && mailstack-backup extract "
                           "--into /var/tmp/bench-restore /var/vmail")
    ssh("mx1", "rm -rf /var/tmp/bench-restore")
    return first, again, restore


def tar_round():
    cfg = LAB["ssh_config"]
    pipe = (f"ssh -F {cfg} mx1 sudo tar -C / -cf - var/vmail | "
            f"ssh -F {cfg} backup 'sudo sh -c \"rm -rf /srv/bench-copy && "
            f"mkdir /srv/bench-copy && tar -C /srv/bench-copy -xf -\"'")
    back = (f"ssh -F {cfg} backup sudo tar -C /srv/bench-copy -cf - var/vmail | "
            f"ssh -F {cfg} mx1 'sudo sh -c \"rm -rf /var/tmp/bench-restore && "
            f"mkdir /var/tmp/bench-restore && tar -C /var/tmp/bench-restore -xf -\"'")
    times = [local(pipe), local(pipe), local(back)]
    ssh("backup", "rm -rf /srv/bench-copy")
    ssh("mx1", "rm -rf /var/tmp/bench-restore")
    return times


def rsync_round(copy):
    rsync = f"rsync -a --delete -e 'ssh -F {LAB['ssh_config']}' --rsync-path='sudo rsync'"
    shutil.rmtree(copy, ignore_errors=True)
    first = local(f"{rsync} mx1:/var/vmail/ {copy}/")
    again = local(f"{rsync} mx1:/var/vmail/ {copy}/")
    ssh("mx1", "rm -rf /var/tmp/bench-restore")
    restore = local(f"{rsync} {copy}/ mx1:/var/tmp/bench-restore/")
    ssh("mx1", "rm -rf /var/tmp/bench-restore")
    shutil.rmtree(copy)
    return first, again, restore


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp())
    had_rsync = ssh("mx1", "dpkg-query -W -f '${Status}' rsync 2>/dev/null || true").endswith(" installed")
    ssh("mx1", "python3 - " + ",".join(MAILBOXES) + f" {args.messages} <<'EOF'\n{SEED}\nEOF")
    size = int(ssh("mx1", "du -sm /var/vmail | cut -f1"))
    count = int(ssh("mx1", "find /var/vmail -path '*/cur/*' -type f | wc -l"))
    gzipped = int(ssh("mx1", "tar -C / -cf - var/vmail | gzip -1 | wc -c")) // 2**20
    print(f"/var/vmail on mx1: {count} messages, {size} MiB ({gzipped} MiB gzipped)", file=sys.stderr)
    results = {}
    try:
        for tool in ("restic", "borg"):
            deploy(tool, scratch)
            rows = []
            for _ in range(args.rounds):
                empty_repository(tool)
                rows.append(tool_round())
            stored = int(ssh("backup", f"du -sm /srv/mailstack-backup/mx1.acme.test/{tool}").split()[0])
            results[tool] = [spread(c) for c in zip(*rows)] + [stored]
        results["tar over ssh"] = [spread(c) for c in zip(*(tar_round() for _ in range(args.rounds)))] \
            + [size]
        if not had_rsync:
            ssh("mx1", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q rsync >/dev/null")
        copy = scratch / "rsync-copy"
        results["rsync over ssh"] = [spread(c) for c in zip(*(rsync_round(copy) for _ in range(args.rounds)))] \
            + [size]
    finally:
        if not had_rsync:
            ssh("mx1", "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q rsync >/dev/null", check=False)
        for box in MAILBOXES:
            ssh("mx1", f"doveadm mailbox delete -u {box} -s Bench || true")
        subprocess.run([str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py",
                        "deploy.py"], cwd=ROOT, check=True, capture_output=True)
        empty_repository("restic")
        ssh("mx1", "mailstack-backup run")
        shutil.rmtree(scratch, ignore_errors=True)
    out = {"messages": count, "mib": size, "gzipped_mib": gzipped, "rounds": args.rounds,
           "rows": {name: dict(zip(("first", "again", "restore", "stored_mib"), r)) for name, r in results.items()}}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"\nmedians of {args.rounds} rounds, seconds (a backup run includes the database dumps)")
    print(f"{'':15} {'first backup':>13} {'nothing changed':>16} {'full restore':>13} {'stored MiB':>11}")
    for name, r in out["rows"].items():
        print(f"{name:15} {r['first']['median']:13.1f} {r['again']['median']:16.1f} "
              f"{r['restore']['median']:13.1f} {r['stored_mib']:>11}")


if __name__ == "__main__":
    main()

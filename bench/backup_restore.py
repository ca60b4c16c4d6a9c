"""Backups of 10,000 messages on the lab's primary: restic, Borg and a plain tar copy.

    .venv/bin/python bench/backup_restore.py [ROUNDS]

Seeds 10,000 messages (1-30 KiB, a tenth with a base64 attachment) into a "Bench"
folder of four lab mailboxes, then for each tool, ROUNDS times (default 3): empties
mx1's repository on the backup host, times a first backup (`mailstack-backup run`),
a second one with nothing changed, and a restore of /var/vmail into a scratch
directory (`mailstack-backup extract`). The plain copy is `tar` of /var/vmail piped
over SSH from mx1 to the backup host (through the operator machine, one more hop)
and back. Prints medians in seconds. Leaves the lab as it found it (the Bench
folders are deleted, the lab's tool redeployed, a normal backup run).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = json.loads((ROOT / ".lab" / "lab.json").read_text())
DATA = ROOT / "inventory" / "lab" / "mail.yml"
MAILBOXES = ["alice@acme.test", "carol@acme.test", "dave@globex.test", "erin@acme.test"]
MESSAGES = 10_000
SEED = r"""
import base64, os, random, subprocess, sys, time
random.seed(7)
words = "mail server backup restore folder message meeting invoice report quarterly " \
        "project schedule attached please review thanks regards tomorrow customer".split()
boxes, total = sys.argv[1].split(","), int(sys.argv[2])
for n in range(total):
    box = boxes[n % len(boxes)]
    local, domain = box.split("@")
    folder = f"/var/vmail/{domain}/{local}/Maildir/.Bench"
    for sub in ("cur", "new", "tmp"):
        os.makedirs(f"{folder}/{sub}", exist_ok=True)
    size = random.randint(1024, 30 * 1024)
    body = " ".join(random.choice(words) for _ in range(size // 7))
    if n % 10 == 0:
        body += "\n\n" + base64.encodebytes(os.urandom(size)).decode()
    text = (f"From: someone@example.test\nTo: {box}\nSubject: bench {n}\n"
            f"Message-ID: <bench-{n}@example.test>\n\n{body}\n")
    with open(f"{folder}/cur/{int(time.time())}.bench{n}.mx1:2,S", "w") as f:
        f.write(text)
subprocess.run(["chown", "-R", "vmail:vmail", "/var/vmail"], check=True)
for box in boxes:
    subprocess.run(["doveadm", "force-resync", "-u", box, "Bench"], check=True)
"""


def ssh(host, command, **kw):
    return subprocess.run(["ssh", "-F", LAB["ssh_config"], host, "sudo", "sh", "-c",
                           f"'{command}'"], check=True, capture_output=True, text=True, **kw)


def timed(host, command):
    t0 = time.monotonic()
    ssh(host, command)
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


def tar_round():
    pipe = (f"ssh -F {LAB['ssh_config']} mx1 sudo tar -C / -cf - var/vmail | "
            f"ssh -F {LAB['ssh_config']} backup 'sudo sh -c \"rm -rf /srv/bench-copy && "
            f"mkdir /srv/bench-copy && tar -C /srv/bench-copy -xf -\"'")
    back = (f"ssh -F {LAB['ssh_config']} backup sudo tar -C /srv/bench-copy -cf - var/vmail | "
            f"ssh -F {LAB['ssh_config']} mx1 'sudo sh -c \"rm -rf /var/tmp/bench-restore && "
            f"mkdir /var/tmp/bench-restore && tar -C /var/tmp/bench-restore -xf -\"'")
    times = []
    for command in (pipe, pipe, back):
        t0 = time.monotonic()
        subprocess.run(command, shell=True, check=True)
        times.append(time.monotonic() - t0)
    ssh("backup", "rm -rf /srv/bench-copy")
    ssh("mx1", "rm -rf /var/tmp/bench-restore")
    return times


def main():
    import tempfile
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    scratch = Path(tempfile.mkdtemp())
    subprocess.run(["ssh", "-F", LAB["ssh_config"], "mx1", "sudo", "python3", "-",
                    ",".join(MAILBOXES), str(MESSAGES)], input=SEED, text=True, check=True)
    size = ssh("mx1", "du -sm /var/vmail | cut -f1").stdout.strip()
    count = ssh("mx1", "find /var/vmail -path \"*/cur/*\" -type f | wc -l").stdout.strip()
    print(f"/var/vmail on mx1: {count} messages, {size} MiB")
    results = {}
    try:
        for tool in ("restic", "borg"):
            deploy(tool, scratch)
            rows = []
            for _ in range(rounds):
                empty_repository(tool)
                first = timed("mx1", "mailstack-backup run")
                again = timed("mx1", "mailstack-backup run")
                restore = timed("mx1", "rm -rf /var/tmp/bench-restore && mailstack-backup extract "
                                       "--into /var/tmp/bench-restore /var/vmail")
                ssh("mx1", "rm -rf /var/tmp/bench-restore")
                rows.append((first, again, restore))
            stored = ssh("backup", f"du -sm /srv/mailstack-backup/mx1.acme.test/{tool}").stdout.split()[0]
            results[tool] = [statistics.median(c) for c in zip(*rows)] + [stored]
        rows = [tar_round() for _ in range(rounds)]
        results["tar over ssh"] = [statistics.median(c) for c in zip(*rows)] + [size]
    finally:
        for box in MAILBOXES:
            ssh("mx1", f"doveadm mailbox delete -u {box} -s Bench || true")
        subprocess.run([str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py",
                        "deploy.py"], cwd=ROOT, check=True, capture_output=True)
        empty_repository("restic")
        ssh("mx1", "mailstack-backup run")
    print(f"\nmedians of {rounds} rounds, seconds "
          f"(a backup run includes the database dumps)")
    print(f"{'':14} {'first backup':>13} {'nothing changed':>16} {'full restore':>13} {'stored MiB':>11}")
    for name, (first, again, restore, stored) in results.items():
        print(f"{name:14} {first:13.1f} {again:16.1f} {restore:13.1f} {stored:>11}")
    r, t = results["restic"], results["tar over ssh"]
    print(f"\nnothing changed vs a full copy: restic {t[1] / r[1]:.1f}x faster, "
          f"borg {t[1] / results['borg'][1]:.1f}x faster")


if __name__ == "__main__":
    main()

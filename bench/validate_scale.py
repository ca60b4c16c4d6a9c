#!/usr/bin/env python3
"""Scale check, no hosts: how long the model takes to validate a big mail system
(bench/generate_system.py: 1,000 mailboxes over 50 domains) beside the lab's data,
and how long the files each host gets from it take to render. Prints figures;
asserts nothing.

    .venv/bin/python bench/validate_scale.py [--runs 5] [--mailboxes 1000] [--domains 50]

Both systems are validated in turn, --runs times each (median, min-max). The lab's
password hashes live in the lab (.lab/); here each of its mailboxes gets the big
system's hash instead, which validates the same. Goal: validation under 1 s.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from generate_system import LAB_DATA, generate  # noqa: E402
from mailstack import dns, dovecot, postfix  # noqa: E402
from mailstack.host.password import SERVICES, hash_password  # noqa: E402
from mailstack.model import SAFE_LOADER, load_system  # noqa: E402

GOAL = 1.0   # seconds to validate the big system


def timed(f, runs):
    """(seconds of each run, the last result)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t0)
    return times, result


def zones(system):
    """The zone files the dns host gets (roles/dns.py), without the lab's own zones."""
    ns = system.hosts_with("dns")[0].fqdn
    return [dns.zone_file(z, records, ns, system.postmaster)
            for z, records in dns.zone_records(system).items()]


# What each host renders from the model, as roles/postfix.py, rspamd.py, dovecot.py
# and dns.py call it.
RENDERS = {
    "postfix virtual_mailboxes": postfix.virtual_mailboxes,
    "postfix virtual_aliases": postfix.virtual_aliases,
    "postfix sender_logins": postfix.sender_logins,
    "postfix relay_recipients": postfix.relay_recipients,
    "rspamd senders_by_login": postfix.senders_by_login,
    "dovecot users": dovecot.users_file,
    "dovecot passwd (imap, pop3, smtp, sieve)": lambda s: [dovecot.passwd_file(s, x) for x in SERVICES],
    "dovecot retention": dovecot.retention_file,
    "dns zone records + zone files": zones,
}


def row(name, times, goal=""):
    ms = [t * 1000 for t in times]
    return (f"{name:54} {len(ms):>4} {statistics.median(ms):>10.1f} "
            f"{f'{min(ms):.1f}-{max(ms):.1f}':>14}  {goal}").rstrip()


def header(what):
    return f"{what:54} {'runs':>4} {'median ms':>10} {'min-max ms':>14}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--domains", type=int, default=50)
    args = ap.parse_args()
    password_hash = hash_password("scale check")
    lab_hashes = yaml.safe_dump({m["address"]: password_hash
                                 for m in yaml.safe_load(LAB_DATA.read_text())["mailboxes"]})
    with tempfile.TemporaryDirectory() as tmp:
        big_data = generate(tmp, args.mailboxes, args.domains, password_hash=password_hash).with_suffix("") / "mail.yml"
        texts = [big_data.read_text(), (big_data.parent / "password-hashes.yml").read_text()]
        lab, big, parse = [], [], []
        for _ in range(args.runs):     # in turn: both measured in the same conditions
            lab += timed(lambda: load_system(LAB_DATA, hashes_text=lab_hashes), 1)[0]
            times, system = timed(lambda: load_system(big_data), 1)
            big += times
            parse += timed(lambda: [yaml.load(t, Loader=SAFE_LOADER) for t in texts], 1)[0]
    size = (f"{len(system.mailboxes)} mailboxes, {len(system.domains)} domains, {len(system.aliases)} aliases, "
            f"{len(system.shared_mailboxes)} shared")
    lab_system = load_system(LAB_DATA, hashes_text=lab_hashes)
    print(header("validate (load_system)"))
    print(row(f"the lab's data ({len(lab_system.mailboxes)} mailboxes)", lab))
    verdict = "met" if statistics.median(big) < GOAL else "NOT MET"
    print(row(f"generated: {size}", big, f"goal < {GOAL * 1000:.0f} ms: {verdict}"))
    print(row("  of which reading its YAML (libyaml)", parse))
    print(f"ratio generated/lab: {statistics.median(big) / statistics.median(lab):.0f}x\n")

    print(header(f"render for the hosts ({len(system.mailboxes)} mailboxes)"))
    total = 0
    for name, render in RENDERS.items():
        times, _ = timed(lambda: render(system), args.runs)
        total += statistics.median(times)
        print(row(name, times))
    print(f"all rendering: {total * 1000:.0f} ms (sum of medians)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: the no-op deploy of a 1,000-mailbox / 50-domain system against the lab's
own, on the lab. Prints figures; asserts nothing.

    .venv/bin/python bench/scale_deploy.py [--runs 3] [--mailboxes 1000] [--domains 50] [--json]

The big system is bench/generate_system.py's, on the lab's hosts (MAILSTACK_LAB_DATA).
Each figure is the median of --runs no-op deploys of the whole lab (the first deploy of
the big system, which makes 1,000 homes' worth of maps, is timed once and not a no-op);
the goal is the big system within 1.5x the lab's. The lab's own data is deployed again
at the end.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labrun import ROOT, spread

PYINFRA = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py", "deploy.py"]
LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]


def timed(data):
    env = {**os.environ, "MAILSTACK_LAB_DATA": str(data)}
    t0 = time.monotonic()
    subprocess.run(PYINFRA, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def row(what, runs):
    return (f"{what:44} {len(runs):>4} {statistics.median(runs):>9.1f} "
            f"{min(runs):>7.1f}-{max(runs):.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="figures as JSON (bench/report.py)")
    args = ap.parse_args()
    subprocess.run(LABCTL + ["up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(LABCTL + ["ensure-deployed"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    lab_data = ROOT / "inventory" / "lab" / "mail.yml"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate_system.py"), out,
                        "--mailboxes", str(args.mailboxes), "--domains", str(args.domains)],
                       check=True, stdout=subprocess.DEVNULL)
        big = next(Path(out).glob("*/mail.yml"))
        try:
            lab = [timed(lab_data) for _ in range(args.runs)]
            first = timed(big)
            scale = [timed(big) for _ in range(args.runs)]
        finally:
            timed(lab_data)
    if args.json:
        print(json.dumps({"lab": spread(lab), "big": spread(scale), "first": first,
                          "ratio": statistics.median(scale) / statistics.median(lab)}))
        return
    print(f"{'no-op deploy of the whole lab':44} {'runs':>4} {'median s':>9} {'min-max s':>11}")
    print(row("the lab's data (7 mailboxes, 2 domains)", lab))
    print(row(f"{args.mailboxes} mailboxes, {args.domains} domains", scale))
    print(f"first deploy of the big system: {first:.1f} s")
    print(f"ratio big/lab: {statistics.median(scale) / statistics.median(lab):.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()

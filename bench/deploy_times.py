#!/usr/bin/env python3
"""Benchmark: how long deploys take in the lab. Prints figures; asserts nothing.

    .venv/bin/python bench/deploy_times.py [--noop-runs 5] [--fresh-runs 1]

- no-op deploy: the whole lab, nothing changed (median of --noop-runs);
- first deploy of mx1: mx1 destroyed and recreated bare, then deployed alone
  (pyinfra --limit), the apt proxy's cache already warm.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py", "deploy.py"]
LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--noop-runs", type=int, default=5)
    ap.add_argument("--fresh-runs", type=int, default=1)
    args = ap.parse_args()
    subprocess.run(LABCTL + ["up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(LABCTL + ["ensure-deployed"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    noop = [timed(PYINFRA) for _ in range(args.noop_runs)]
    fresh = []
    for _ in range(args.fresh_runs):
        subprocess.run(["vagrant", "destroy", "-f", "mx1"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(LABCTL + ["up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        fresh.append(timed(PYINFRA[:2] + ["--limit", "mx1.acme.test"] + PYINFRA[2:]))
    subprocess.run(LABCTL + ["deploy"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    print(f"{'deploy':34} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, xs in (("no-op deploy, whole lab (5 hosts)", noop), ("first deploy of a bare mx1", fresh)):
        print(f"{name:34} {len(xs):>4} {statistics.median(xs):>9.1f} {min(xs):>7.1f} {max(xs):>7.1f}")
    print(f"ratio first/no-op: {statistics.median(fresh) / statistics.median(noop):.1f}x")


if __name__ == "__main__":
    main()

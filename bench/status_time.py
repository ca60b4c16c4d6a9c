#!/usr/bin/env python3
"""Benchmark: how long `mailstack status` takes for the lab, and what the monitoring
role costs in memory. Prints figures; asserts nothing.

    .venv/bin/python bench/status_time.py [--runs 5]

- status: the whole table (every host asked over SSH, DNS and HTTPS from here), and
  with --html (the reports and the monitoring host's charts too); median, min-max;
- memory: PSS of Prometheus, Alertmanager and the node exporter on each lab host.
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = json.loads((ROOT / ".lab" / "lab.json").read_text()) if (ROOT / ".lab" / "lab.json").exists() else None
PSS = ("for p in $(pgrep -x prometheus; pgrep -f '^/usr/bin/prometheus-alertmanager'; "
       "pgrep -f '^/usr/bin/prometheus-node-exporter'); do printf '%s ' $(cat /proc/$p/comm); "
       "awk '/^Pss:/{s+=$2} END{print s}' /proc/$p/smaps_rollup; done")


def timed(args):
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "mailstack", "status", "inventory/lab.py", *args,
                    "--resolver", LAB["resolver"], "--ca", LAB["ca_certificate"]],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def line(name, runs):
    return f"{name:36} {len(runs):4}  {statistics.median(runs):8.2f}  {min(runs):.2f}-{max(runs):.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if LAB is None:
        sys.exit("no lab: make lab first")
    page = ROOT / ".lab" / "artifacts" / "bench-status.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'mailstack status, the lab':36} runs  median s  min-max s")
    print(line("table", [timed([]) for _ in range(args.runs)]))
    print(line("table and --html page", [timed(["--html", str(page)]) for _ in range(args.runs)]))
    print("\nmemory of monitoring (PSS, MiB)")
    for name in LAB["hosts"]:
        out = subprocess.run(["ssh", "-F", LAB["ssh_config"], name, "sudo sh -c " + shlex.quote(PSS)],
                             capture_output=True, text=True).stdout
        for row in out.splitlines():
            comm, kib = row.split()
            print(f"  {name:8} {comm:24} {int(kib) / 1024:6.1f}")


if __name__ == "__main__":
    main()

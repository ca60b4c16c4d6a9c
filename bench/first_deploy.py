#!/usr/bin/env python3
"""Benchmark P1: a bare mx1's first deploy against the apt floor. Prints figures (or
--json); asserts nothing. Destroys mx1 (its mail with it) and deploys the lab again
at the end.

    .venv/bin/python bench/first_deploy.py [--runs 2] [--json]

Each run: mx1 made bare (labctl rebuild), then `pyinfra --limit mx1.acme.test` timed;
the apt command line that deploy ran is read from the host's own apt history; mx1
made bare again, and `apt-get update` plus exactly that command line timed on it,
through the same (warm) apt proxy: the floor, what installing the packages alone
costs.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]
DEPLOY_MX1 = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "--limit", "mx1.acme.test", "inventory/lab.py",
              "deploy.py"]


def quiet(cmd):
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ssh(script):
    lab = json.loads((ROOT / ".lab" / "lab.json").read_text())
    return subprocess.run(["ssh", "-F", lab["ssh_config"], "mx1", "sudo", "sh"], input=script,
                          capture_output=True, text=True, check=True).stdout


def timed(run):
    start = time.monotonic()
    run()
    return time.monotonic() - start


def install_command(history):
    """The deploy's one `apt-get install` (the entry that installed Postfix)."""
    for entry in history.split("\n\n"):
        command = re.search(r"^Commandline: (.*)$", entry, re.M)
        if command and re.search(r"^Install: .*\bpostfix:", entry, re.M):
            return command.group(1)
    raise SystemExit("bench: no apt-get install of postfix in mx1's apt history")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    deploys, floors, packages = [], [], 0
    try:
        for _ in range(args.runs):
            quiet(LABCTL + ["rebuild", "mx1"])
            deploys.append(timed(lambda: quiet(DEPLOY_MX1)))
            command = install_command(ssh("cat /var/log/apt/history.log"))
            packages = len([w for w in command.split() if not w.startswith("-") and "=" not in w]) - 2
            quiet(LABCTL + ["rebuild", "mx1"])
            floors.append(timed(lambda: ssh(f"export DEBIAN_FRONTEND=noninteractive; apt-get -q update && "
                                            f"{command}")))
    finally:
        quiet(LABCTL + ["rebuild", "mx1"])
        quiet(LABCTL + ["deploy"])

    def spread(xs):
        return {"median": round(statistics.median(xs), 1), "min": round(min(xs), 1), "max": round(max(xs), 1),
                "runs": len(xs)}
    result = {"deploy": spread(deploys), "floor": spread(floors), "packages": packages,
              "ratio": round(statistics.median(deploys) / statistics.median(floors), 2)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"first deploy of a bare mx1: {result['deploy']}")
    print(f"apt floor ({packages} packages named): {result['floor']}")
    print(f"ratio: {result['ratio']}x (goal <= 1.25x)")


if __name__ == "__main__":
    main()

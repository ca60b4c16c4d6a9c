#!/usr/bin/env python3
"""Benchmark: where a deploy's time goes, fact by fact. Runs pyinfra's own command
line in this process with its fact reader counted; prints the facts asked (per
kind: how many, seconds spent waiting) and the run's wall time. Asserts nothing.

    .venv/bin/python bench/fact_profile.py [pyinfra arguments]

Default arguments: -y inventory/lab.py deploy.py (the whole lab).
"""
import collections
import os
import sys
import time
from pathlib import Path

from pyinfra.api import facts

ROOT = Path(__file__).resolve().parent.parent
asked = collections.Counter()
waited = collections.Counter()
paths = collections.Counter()
_get_fact = facts._get_fact


def counted(state, host, cls, *args, **kwargs):
    start = time.monotonic()
    try:
        return _get_fact(state, host, cls, *args, **kwargs)
    finally:
        asked[cls.__name__] += 1
        if (kwargs := (args[1] if len(args) > 1 else None) or {}).get("path"):
            paths[f"{cls.__name__} {kwargs['path']}"] += 1
        waited[cls.__name__] += time.monotonic() - start


def main():
    facts._get_fact = counted
    from pyinfra_cli.main import main as pyinfra
    os.chdir(ROOT)
    sys.argv = ["pyinfra", *(sys.argv[1:] or ["-y", "inventory/lab.py", "deploy.py"])]
    start = time.monotonic()
    try:
        pyinfra()
    except SystemExit:
        pass
    wall = time.monotonic() - start
    print(f"\n{'fact':28} {'asked':>6} {'waited s':>9}", file=sys.stderr)
    for name, n in asked.most_common():
        print(f"{name:28} {n:>6} {waited[name]:>9.1f}", file=sys.stderr)
    if os.environ.get("FACT_PATHS"):
        for path, n in paths.most_common():
            print(f"{n:>4} {path}", file=sys.stderr)
    print(f"{'all':28} {sum(asked.values()):>6} {sum(waited.values()):>9.1f}   wall {wall:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()

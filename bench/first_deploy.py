#!/usr/bin/env python3
"""Benchmark P1: a bare mx1's first deploy against the apt floor. Prints figures (or
--json); asserts nothing. Destroys mx1 (its mail with it) and deploys the lab again
at the end.

    .venv/bin/python bench/first_deploy.py [--runs 2] [--json]

Each run: mx1 made bare (labctl rebuild), then `pyinfra --limit mx1.acme.test` timed;
the apt command line that deploy ran is read from the host's own apt history; mx1
made bare again, given the deploy's apt settings (/etc/apt/apt.conf.d/01proxy: the
lab's proxy), and `apt-get update` plus exactly that command line timed on it,
through the same (warm) apt proxy: the floor, what installing the packages alone
costs. A bare mx1's whole-host PSS is the memory floor of P5. The first run's
deploy is also profiled: the seconds from each operation's start (pyinfra's
"Starting operation" line, read as it streams) to the next one's.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from labrun import PSS, ROOT, spread, ssh

LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]
DEPLOY_MX1 = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "--limit", "mx1.acme.test", "inventory/lab.py",
              "deploy.py"]


def quiet(cmd):
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def on_mx1(script):
    return ssh("mx1", script)


def profiled_deploy():
    """The deploy's time, and its operations' (name, seconds), slowest first."""
    start = time.monotonic()
    marks = []
    # Unbuffered: each line arrives when pyinfra writes it.
    with subprocess.Popen(DEPLOY_MX1, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as deploy:
        for line in deploy.stdout:
            op = re.match(r"--> Starting operation: (.*)", line.strip())
            if op:
                marks.append((op.group(1).strip(), time.monotonic()))
    if deploy.returncode:
        raise SystemExit(f"bench: the deploy of mx1 failed ({deploy.returncode})")
    end = time.monotonic()
    ops = {}
    for (name, t), (_, t_next) in zip(marks, marks[1:] + [("end", end)]):
        ops[name] = ops.get(name, 0) + t_next - t
    # Before the first operation: connecting, facts and preparing the operations.
    ops["(connect, facts, prepare)"] = (marks[0][1] if marks else end) - start
    return end - start, sorted(ops.items(), key=lambda kv: -kv[1])


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
    deploys, floors, packages, profile, bare = [], [], 0, None, []
    try:
        for n in range(args.runs):
            quiet(LABCTL + ["rebuild", "mx1"])
            time.sleep(10)                      # the bare host's boot settles
            bare.append(int(on_mx1(PSS)) / 1024)
            if n == 0:
                seconds, profile = profiled_deploy()
                deploys.append(seconds)
            else:
                deploys.append(timed(lambda: quiet(DEPLOY_MX1)))
            command = install_command(on_mx1("cat /var/log/apt/history.log"))
            # The deploy's own apt settings (the lab's proxy), for the floor to use the same.
            apt_conf = on_mx1("cat /etc/apt/apt.conf.d/01proxy 2>/dev/null || true")
            packages = len([w for w in command.split() if not w.startswith("-") and "=" not in w]) - 2
            quiet(LABCTL + ["rebuild", "mx1"])
            on_mx1(f"cat > /etc/apt/apt.conf.d/01proxy <<'EOF'\n{apt_conf}\nEOF")
            floors.append(timed(lambda: on_mx1(f"export DEBIAN_FRONTEND=noninteractive; apt-get -q update && "
                                            f"{command}")))
    finally:
        quiet(LABCTL + ["rebuild", "mx1"])
        quiet(LABCTL + ["deploy"])

    result = {"deploy": spread(deploys, 1), "floor": spread(floors, 1), "packages": packages,
              "ratio": round(statistics.median(deploys) / statistics.median(floors), 2),
              "bare_pss_mib": spread(bare, 1),
              "profile": [(name, round(t, 1)) for name, t in profile[:15]]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"first deploy of a bare mx1: {result['deploy']}")
    print(f"apt floor ({packages} packages named): {result['floor']}")
    print(f"ratio: {result['ratio']}x (goal <= 1.25x)")
    print(f"a bare mx1's whole-host PSS (the memory floor): {result['bare_pss_mib']} MiB")
    print("slowest operations of the first deploy (s):")
    for name, t in result["profile"]:
        print(f"  {t:6.1f}  {name}")


if __name__ == "__main__":
    main()

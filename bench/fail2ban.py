"""How fast a password guesser is banned on the lab's primary, per protocol.

    .venv/bin/python bench/fail2ban.py [ROUNDS]

From outside: failed logins one at a time until mx1 refuses the connection; prints,
per protocol, the failures it took and the seconds from the first failure to the
ban (median of ROUNDS, default 3), then waits for each ban to end (the lab's 30 s).
"""
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.lab.test_brute_force import GUESS  # noqa: E402  (the scenario's own guesser)

LAB = json.loads((ROOT / ".lab" / "lab.json").read_text())


def on_outside(command):
    return subprocess.run(["ssh", "-F", LAB["ssh_config"], "outside", "sudo", "sh", "-c",
                           shlex.quote(command)], capture_output=True, text=True)


def refused(mx1, source):
    probe = (f"import socket; socket.create_connection(('{mx1}', 25), 3, "
             f"source_address=('{source}', 0)).close()")
    return on_outside(f"python3 -c {shlex.quote(probe)}").returncode != 0


def one_round(proto, mx1, source, user):
    while refused(mx1, source):              # an earlier ban must end first
        time.sleep(2)
    start, failures = time.monotonic(), 0
    while not refused(mx1, source) and failures < 20:
        on_outside(f"python3 -c {shlex.quote(GUESS)} {proto} {mx1} {source} {user} wrong 1")
        failures += 1
    return failures, time.monotonic() - start


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    mx1, source = LAB["hosts"]["mx1"]["address"], LAB["hosts"]["outside"]["address"]
    print(f"{'protocol':12} {'failures to ban':>16} {'seconds to ban (median, min-max)':>34}")
    for proto in ("imap", "pop3", "submission", "managesieve", "webmail"):
        results = [one_round(proto, mx1, source, "alice@acme.test") for _ in range(rounds)]
        times = [t for _, t in results]
        print(f"{proto:12} {statistics.median(f for f, _ in results):>16} "
              f"{statistics.median(times):>20.1f} ({min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()

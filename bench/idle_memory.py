"""Memory of the web stack on the lab's primary (nginx + php-fpm) when idle.

    .venv/bin/python bench/idle_memory.py [SECONDS_IDLE]

Waits (default 70 s: php-fpm's on-demand children leave after 60 s idle), then
prints each process's proportional set size (PSS) and resident size (RSS), and the
totals per service. Figures in MiB.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = r"""
for p in $(pgrep -x nginx) $(pgrep -f '^php-fpm'); do
  printf '%s %s %s %s\n' "$p" "$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)" \
    "$(awk '/VmRSS/{print $2}' /proc/$p/status)" "$(tr '\0' ' ' < /proc/$p/cmdline | cut -c1-40)"
done
"""


def main():
    idle = int(sys.argv[1]) if len(sys.argv) > 1 else 70
    lab = json.loads((ROOT / ".lab" / "lab.json").read_text())
    time.sleep(idle)
    out = subprocess.run(["ssh", "-F", lab["ssh_config"], "mx1", "sudo", "sh"], input=SCRIPT,
                         capture_output=True, text=True, check=True).stdout
    totals = {}
    print(f"{'pid':>6} {'PSS MiB':>8} {'RSS MiB':>8}  process")
    for line in out.splitlines():
        pid, pss, rss, cmd = line.split(" ", 3)
        service = "nginx" if cmd.startswith("nginx") else "php-fpm"
        t = totals.setdefault(service, [0, 0, 0])
        t[0], t[1], t[2] = t[0] + int(pss), t[1] + int(rss), t[2] + 1
        print(f"{pid:>6} {int(pss) / 1024:8.1f} {int(rss) / 1024:8.1f}  {cmd}")
    for service, (pss, rss, n) in totals.items():
        print(f"{service}: {n} process(es), PSS {pss / 1024:.1f} MiB, RSS {rss / 1024:.1f} MiB")
    print(f"nginx + php-fpm idle: PSS {sum(t[0] for t in totals.values()) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()

"""What the benchmarks share: commands on the lab's hosts and figures' spreads."""
import json
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A host's whole PSS in KiB (every process).
PSS = "cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Pss:/ {s += $2} END {print s}'"


def ssh(host, script, check=True, shell="sh"):
    """`script` run as root on a lab host (read from stdin: no quoting on the way)."""
    lab = json.loads((ROOT / ".lab" / "lab.json").read_text())
    return subprocess.run(["ssh", "-F", lab["ssh_config"], host, "sudo", shell], input=script,
                          capture_output=True, text=True, check=check).stdout.strip()


def spread(xs, digits=2):
    """Median, min, max and the number of runs."""
    return {"median": round(statistics.median(xs), digits), "min": round(min(xs), digits),
            "max": round(max(xs), digits), "runs": len(xs)}

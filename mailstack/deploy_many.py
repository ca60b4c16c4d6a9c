"""mailstack deploy PATH...: many mail systems (an agency's clients, one data file
each) deployed side by side, with one summary.

Every system's data is checked first, by the model the inventory uses: a system
with bad data is reported and never deployed. Each other system gets its own
`pyinfra -y --json INVENTORY deploy.py` (pyinfra runs a system's hosts in parallel
itself), up to `parallel` at once; one system's failure stops no other. A run's
whole output goes to logs/<system>.log beside its inventory (the last run's).

The summary, per system: its hosts, changes (operations that changed something,
counted per host), errors (hosts where pyinfra stopped on an error, or that it
never reached), seconds of the run and ok or failed, with why.
"""
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .facts import PYINFRA
from .lifecycle import ROOT
from .model import DataError, load_system

# pyinfra's line for a host it cannot reach: "    [mx1.example.org]   Could not connect (...)".
UNREACHABLE = re.compile(r"\s*\[([^\]]+)\]\s+Could not connect\b")


def inventories(paths):
    """([inventory], [(path, why skipped)]): files as given, each directory's
    <system>.py that have <system>/mail.yml beside them, by name."""
    found, skipped = [], []
    for p in map(Path, paths):
        if p.is_dir():
            for inv in sorted(p.glob("*.py")):
                data = inv.with_suffix("") / "mail.yml"
                if data.is_file():
                    found.append(inv)
                else:
                    skipped.append((inv, f"no data file at {data}"))
        else:
            found.append(p)
    # A file named twice (alone and in its directory) is deployed once.
    return list({inv.resolve(): inv for inv in found}.values()), skipped


def check(inv, names):
    """(the system, None), or (None, why it cannot be deployed)."""
    data = inv.with_suffix("") / "mail.yml"
    if not inv.is_file():
        return None, f"{inv}: no such file"
    if inv.suffix != ".py":
        return None, f"{inv} is not an inventory (inventory/<system>.py)"
    try:
        system = load_system(data)
    except DataError as e:
        return None, f"invalid mail data: {e}"
    # Two inventories of one system would write the same secrets/<name>/ at once.
    if system.name in names:
        return None, f"{data}: name: '{system.name}' is also the system of {names[system.name]}"
    names[system.name] = inv
    return system, None


def results(stdout):
    """What pyinfra's --json output says (pyinfra_cli/prints.py, build_results_json),
    or None if the run ended before its results (no host left, say).

    Each operation lists the hosts it changed ("success"), left as they were
    ("no_change") and did not succeed on ("error": also every operation after a
    host's first error, which pyinfra then skips there). So errors counts the hosts
    that stopped (failed_hosts, unreachable ones too) and `failed` names where."""
    line = next((s for s in reversed(stdout.splitlines()) if s.startswith("{")), None)
    try:
        r = json.loads(line)["results"]
        ops, stopped = r["operations"], r["failed_hosts"]
    except (TypeError, ValueError, KeyError):
        return None
    hosts = {h for op in ops for k in ("success", "no_change", "error") for h in op[k]}
    failed = {h: next((op["name"] for op in ops if h in op["error"]),
                      "before any operation (unreachable?)") for h in stopped}
    return {"hosts": len(hosts | set(stopped)), "changes": sum(len(op["success"]) for op in ops),
            "errors": len(stopped), "failed": failed}


def deploy_one(inv, system, pyinfra):
    log = inv.parent / "logs" / f"{inv.stem}.log"
    log.parent.mkdir(exist_ok=True)
    command = [str(pyinfra), "-y", "--json", str(inv.resolve()), "deploy.py"]
    print(f"{inv.stem}: deploying (log: {log})", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    with open(log, "w") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        run = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=out, text=True)
        out.write(run.stdout)
    seconds = round(time.monotonic() - t0, 1)
    found = results(run.stdout)
    ok = run.returncode == 0 and found is not None and not found["failed"]
    message = None
    if found and found["failed"]:
        message = "; ".join(f"{h}: {op}" for h, op in sorted(found["failed"].items()))
    elif not ok:
        # No results: what pyinfra said last is what went wrong.
        said = [s for s in log.read_text().splitlines()[1:] if s.strip() and not s.startswith("{")]
        unreachable = sorted({m.group(1) for m in map(UNREACHABLE.match, said) if m})
        message = (f"could not connect to {', '.join(unreachable)}" if unreachable else
                   f"pyinfra exited {run.returncode}" + (f": {said[-1].strip()}" if said else ""))
    print(f"{inv.stem}: {'done' if ok else 'FAILED'} in {seconds:.0f} s", file=sys.stderr, flush=True)
    found = found or {"hosts": len(system.hosts), "changes": None, "errors": None}
    return row(inv, "ok" if ok else "failed", message, str(log), found["hosts"], found["changes"],
               found["errors"], seconds)


def row(inv, status, message=None, log=None, hosts=None, changes=None, errors=None, seconds=None):
    return {"system": inv.stem, "inventory": str(inv), "hosts": hosts, "changes": changes,
            "errors": errors, "seconds": seconds, "status": status, "message": message, "log": log}


def table(rows):
    def cell(v):
        return "-" if v is None else f"{v:.0f}" if isinstance(v, float) else str(v)
    lines = [f"{'system':20} {'hosts':>5} {'changes':>7} {'errors':>6} {'time s':>6}  status"]
    lines += [f"{r['system']:20} {cell(r['hosts']):>5} {cell(r['changes']):>7} "
              f"{cell(r['errors']):>6} {cell(r['seconds']):>6}  {r['status']}" for r in rows]
    messages = [f"{r['system']}: {r['message']}" + (f" (log: {r['log']})" if r["log"] else "")
                for r in rows if r["message"]]
    lines += [""] + messages if messages else []
    return "\n".join(lines)


def deploy(paths, parallel=4, as_json=False, pyinfra=PYINFRA):
    found, skipped = inventories(paths)
    for inv, why in skipped:
        print(f"{inv}: skipped, {why}", file=sys.stderr)
    if not found:
        sys.exit("mailstack: no mail system to deploy (inventory/<system>.py beside "
                 "inventory/<system>/mail.yml)")
    names = {}
    checked = {inv: check(inv, names) for inv in found}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        runs = {inv: pool.submit(deploy_one, inv, system, pyinfra)
                for inv, (system, _) in checked.items() if system}
        rows = [runs[inv].result() if inv in runs else row(inv, "failed", checked[inv][1])
                for inv in found]
    ok = all(r["status"] == "ok" for r in rows)
    if as_json:
        print(json.dumps({"ok": ok, "systems": rows,
                          "skipped": [{"inventory": str(i), "why": w} for i, w in skipped]}, indent=2))
    else:
        print(table(rows))
    sys.exit(0 if ok else 1)

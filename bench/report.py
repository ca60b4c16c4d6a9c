#!/usr/bin/env python3
"""make bench: run the benchmarks on the running lab and write docs/benchmarks.md
with SVG charts beside it (docs/bench-*.svg). Each figure is a median with its
min-max, set against a floor measured in the same run.

    .venv/bin/python bench/report.py [--messages 10000] [--runs 3] [--skip-scale] [--skip-first]

P1  a bare mx1's first deploy against apt installing the same packages on an
    identical bare mx1 (bench/first_deploy.py; destroys mx1's mail)
P2  no-op deploy of the whole lab (and the facts it reads), and of a 1,000-mailbox /
    50-domain system against it (bench/scale_deploy.py)
P3  delivery throughput with rspamd against the milter-off floor (bench/delivery.py)
P4  backups of 10,000 mail-like messages: restic and Borg against a full tar and an
    incremental rsync (bench/backup_restore.py)
P5  whole-host memory (PSS, every process) of each lab host idle, and mx1's peak
    during P3
P6  the suite's time per scenario module, from the last lab run
    (.lab/artifacts/suite-times.txt, written by tests/lab/conftest.py)
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import time

from labrun import PSS, ROOT, spread, ssh

PY = str(ROOT / ".venv" / "bin" / "python")
DOCS = ROOT / "docs"
PYINFRA = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py", "deploy.py"]
# The biggest processes of a host by PSS (KiB, name).
TOP = ("for p in /proc/[0-9]*; do awk -v n=\"$(cat $p/comm 2>/dev/null)\" '/^Pss:/ {print $2, n}' "
       "$p/smaps_rollup 2>/dev/null; done | awk '{s[$2] += $1} END {for (n in s) print s[n], n}' | sort -rn | head -6")


def noop_deploys(runs):
    subprocess.run(PYINFRA, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(PYINFRA, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - start)
    profile = subprocess.run([PY, "bench/fact_profile.py"], cwd=ROOT, capture_output=True, text=True).stderr
    facts = re.search(r"^all +(\d+) +[\d.]+ +wall ([\d.]+) s", profile, re.M)
    return {"seconds": spread(times), "facts": int(facts.group(1)) if facts else None}


# Of a host's PSS, the part in anonymous and shared memory (KiB): what the kernel cannot
# drop under pressure, unlike clean pages of mapped files (rspamd's hyperscan databases).
ANON = ("cat /proc/[0-9]*/smaps_rollup 2>/dev/null | "
        "awk '/^Pss_(Anon|Shmem):/ {s += $2} END {print s}'")


def memory(hosts):
    return {h: {"pss_mib": round(int(ssh(h, PSS)) / 1024, 1),
                "anon_mib": round(int(ssh(h, ANON)) / 1024, 1),
                "top": [(n, round(int(k) / 1024, 1)) for k, n in
                        (line.split(maxsplit=1) for line in ssh(h, TOP).splitlines())]}
            for h in hosts}


def suite_times():
    path = ROOT / ".lab" / "artifacts" / "suite-times.txt"
    if not path.exists():
        return None
    rows = [line.split(maxsplit=2) for line in path.read_text().splitlines() if line.strip()]
    return {"rows": [(r[2], float(r[0])) for r in rows if len(r) == 3],
            "when": datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")}


def bars(name, title, rows, unit, goal=None):
    """A horizontal bar chart (hand-written SVG) of (label, value) rows."""
    width, left, height = 640, 260, 26
    top = max(v for _, v in rows) or 1
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{40 + height * len(rows)}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="8" y="18" font-weight="bold">{title}</text>']
    for i, (label, value) in enumerate(rows):
        y = 30 + i * height
        w = (width - left - 80) * value / top
        lines += [f'<text x="8" y="{y + 15}">{label}</text>',
                  f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{height - 8}" fill="#4a7ab5"/>',
                  f'<text x="{left + w + 6:.1f}" y="{y + 15}">{value:g} {unit}</text>']
    if goal:
        x = left + (width - left - 80) * goal / top
        lines.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="26" y2="{30 + height * len(rows)}" '
                     f'stroke="#c33" stroke-dasharray="4"/>')
    lines.append("</svg>\n")
    (DOCS / f"bench-{name}.svg").write_text("\n".join(lines))
    return f"![{title}](bench-{name}.svg)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-scale", action="store_true", help="leave out the 1,000-mailbox deploys")
    ap.add_argument("--skip-first", action="store_true", help="leave out P1 (it rebuilds mx1 four times)")
    ap.add_argument("--skip-backups", action="store_true", help="leave out P4")
    args = ap.parse_args()
    lab = json.loads((ROOT / ".lab" / "lab.json").read_text())
    hosts = [h for h in lab["hosts"] if h != "oldmail"]
    started = time.monotonic()
    first = None if args.skip_first else json.loads(subprocess.run(
        [PY, "bench/first_deploy.py", "--runs", str(min(args.runs, 2)), "--json"], cwd=ROOT, check=True,
        stdout=subprocess.PIPE, text=True).stdout)
    noop = noop_deploys(max(args.runs, 5))
    scale = None if args.skip_scale else json.loads(subprocess.run(
        [PY, "bench/scale_deploy.py", "--runs", str(args.runs), "--json"], cwd=ROOT, check=True,
        stdout=subprocess.PIPE, text=True).stdout)
    time.sleep(30)                                  # the deploys' restarts settle
    idle = memory(hosts)
    delivery = json.loads(subprocess.run(
        [PY, "bench/delivery.py", "--messages", str(args.messages), "--runs", str(args.runs), "--json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout)
    backups = None if args.skip_backups else json.loads(subprocess.run(
        [PY, "bench/backup_restore.py", "--rounds", str(args.runs), "--json"], cwd=ROOT, check=True,
        stdout=subprocess.PIPE, text=True).stdout)
    suite = suite_times()
    DOCS.mkdir(exist_ok=True)
    when = datetime.date.today().isoformat()
    cores = os.cpu_count()
    n = noop["seconds"]
    d = delivery
    w, f = d["with_rspamd_per_s"], d["floor_per_s"]
    out = ["# Benchmarks\n",
           f"Written by `make bench` (bench/report.py) on {when}, on a {cores}-core machine running the lab "
           f"(vagrant-lxc: every lab host shares these cores). Medians of the runs shown, min-max in "
           f"brackets; each figure beside a floor measured in the same run. The whole run took "
           f"{(time.monotonic() - started) / 60:.0f} min.\n",
           "## P1: first deploy against the apt floor\n"]
    if first:
        fd, fl = first["deploy"], first["floor"]
        out += [f"A bare mx1 deployed alone (`pyinfra --limit mx1.acme.test`) against `apt-get update` and the "
                f"deploy's own `apt-get install` command line ({first['packages']} packages named) on an "
                f"identical bare mx1, through the same warm apt proxy.\n",
                "| | median | min-max | runs |", "|---|---|---|---|",
                f"| first deploy | {fd['median']} s | {fd['min']}-{fd['max']} s | {fd['runs']} |",
                f"| apt floor | {fl['median']} s | {fl['min']}-{fl['max']} s | {fl['runs']} |",
                f"| **ratio** | **{first['ratio']:.2f}x** | | goal <= 1.25x |", "",
                bars("first-deploy", "Bare mx1: first deploy and the apt floor (s)",
                     [("first deploy", fd["median"]), ("apt floor", fl["median"])], "s"), "",
                "Where the first deploy's time goes (its first run; seconds from an operation's start to "
                "the next one's, slowest first):\n", "| operation | s |", "|---|---|"]
        out += [f"| {name} | {t} |" for name, t in first["profile"]] + [""]
    else:
        out.append("Not measured in this run (--skip-first).\n")
    out += ["## P2: no-op deploy\n",
           "| what | median | min-max | runs | goal |", "|---|---|---|---|---|",
           f"| whole lab ({len(hosts)} hosts), zero changes | {n['median']:.1f} s | {n['min']:.1f}-{n['max']:.1f} s "
           f"| {n['runs']} | <= 10 s |",
           f"| facts read over SSH by one such deploy (bench/fact_profile.py) | {noop['facts']} | | 1 | |"]
    if scale:
        out.append(f"| 1,000 mailboxes over 50 domains, zero changes, against the lab's data in the same run "
                   f"| {scale['big']['median']:.1f} s vs {scale['lab']['median']:.1f} s: **{scale['ratio']:.2f}x** "
                   f"| {scale['big']['min']:.1f}-{scale['big']['max']:.1f} s | {scale['big']['runs']} | <= 1.5x |")
    out += ["", bars("noop", "No-op deploy of the lab (s)", [("median", n["median"]), ("slowest", n["max"])],
                     "s", goal=10), "",
            "## P3: delivery throughput\n",
            f"{d['messages']:,} messages of ~3 KB from `outside` (Postfix's smtp-source, 4 sessions) to one "
            f"mailbox on mx1 over port 25, through rspamd and Dovecot's LMTP, counted in the mailbox "
            f"(zero lost, zero twice in every run). Floor: the same with Postfix's milters off on mx1. "
            f"Greylisting and the per-client rate limit are product features: the bench deploys a data "
            f"variant that exempts `outside` from both.\n",
            "| | msgs/s median | min-max | runs |", "|---|---|---|---|",
            f"| with rspamd | {w['median']} | {w['min']}-{w['max']} | {w['runs']} |",
            f"| milter off (floor) | {f['median']} | {f['min']}-{f['max']} | {f['runs']} |",
            f"| **ratio** | **{d['ratio']:.2f}x** | | goal >= 0.9x |", "",
            f"rspamd's share of the CPU time of rspamd + Postfix + Dovecot on mx1 during the runs with it: "
            f"{d['rspamd_cpu_share']:.0%}. The sender's own CPU: {d['sender_cpu_per_wall_s']:.2f} s per second "
            f"of run (of {cores} cores shared by every host).\n",
            bars("delivery", "Delivery to a mailbox (messages/s)",
                 [("with rspamd", w["median"]), ("milter off (floor)", f["median"])], "msg/s"), "",
            "## P4: backups\n"]
    if backups:
        b = backups["rows"]
        out += [f"{backups['messages']:,} messages ({backups['mib']} MiB; {backups['gzipped_mib']} MiB gzipped) in "
                f"mx1's /var/vmail: text drawn from a made-up vocabulary by Zipf's law, a quarter with an HTML "
                f"part, one in seven with an attachment of random bytes. Seconds, median of "
                f"{backups['rounds']} rounds [min-max]. The tools back up to the backup host (a first backup "
                f"into an emptied repository, then one with nothing changed) and restore /var/vmail into a "
                f"scratch directory; the floors copy the same tree with tar (mx1 -> operator -> backup host) "
                f"and rsync (mx1 -> operator).\n",
                "| | first backup | nothing changed | full restore | stored MiB |", "|---|---|---|---|---|"]
        for name, r in b.items():
            out.append(f"| {name} | " + " | ".join(f"{r[k]['median']} [{r[k]['min']}-{r[k]['max']}]"
                                                    for k in ("first", "again", "restore"))
                       + f" | {r['stored_mib']} |")
        out += ["", "Nothing changed, against rsync's own incremental run: " + ", ".join(
            f"{name} {b[name]['again']['median'] / b['rsync over ssh']['again']['median']:.0f}x"
            for name in ("restic", "borg")) + " of rsync's time.\n",
            bars("backups", "Backup with nothing changed (s)",
                 [(name, r["again"]["median"]) for name, r in b.items()], "s"), ""]
    else:
        out.append("Not measured in this run (--skip-backups).\n")
    out += ["## P5: memory\n",
            "Whole-host PSS (every process) after the deploys settled, and mx1's peak during P3. "
            "\"anonymous\" is the part in anonymous and shared memory; the rest are pages of mapped "
            "files (programs, libraries, rspamd's compiled hyperscan databases), which the kernel can "
            "drop and read again under pressure.\n",
            "| host | PSS idle | anonymous | largest |", "|---|---|---|---|"]
    for h, m in idle.items():
        out.append(f"| {h} | {m['pss_mib']} MiB | {m['anon_mib']} MiB | "
                   + ", ".join(f"{p} {v}" for p, v in m["top"][:4]) + " |")
    floor = (f" The floor, a bare mx1 (Debian with systemd and sshd, measured by P1): "
             f"{first['bare_pss_mib']['median']} MiB; mx1 idle is "
             f"{idle['mx1']['pss_mib'] / first['bare_pss_mib']['median']:.1f}x that.") if first else ""
    out += ["", f"mx1: idle {idle['mx1']['pss_mib']} MiB (goal <= 256 MiB), peak during P3 "
                f"{d['mx1_peak_pss_mib']} MiB (goal <= 512 MiB).{floor}\n",
            bars("memory", "Whole-host PSS idle (MiB)", [(h, m["pss_mib"]) for h, m in idle.items()], "MiB"), ""]
    out.append("## P6: the suite\n")
    if suite:
        modules = len(list((ROOT / "tests" / "lab").glob("test_*.py")))
        ran = len([m for m, _ in suite["rows"] if m != "in all"])
        partial = f" It ran {ran} of the {modules} modules." if ran < modules else ""
        out += [f"Seconds per scenario module of the last lab run ({suite['when']}), slowest first.{partial}\n",
                "| module | s |", "|---|---|"]
        out += [f"| {m} | {s:.0f} |" for m, s in suite["rows"]]
        out += ["", bars("suite", "Lab scenario modules (s)", [(m.replace("tests/lab/", ""), s)
                                                              for m, s in suite["rows"] if m != "in all"][:12], "s")]
    else:
        out.append("No lab run has written .lab/artifacts/suite-times.txt yet (make lab-test writes it).")
    (DOCS / "benchmarks.md").write_text("\n".join(out) + "\n")
    print(f"bench: wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()

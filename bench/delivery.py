#!/usr/bin/env python3
"""Benchmark P3: delivery throughput, with rspamd in the path and without it (the
floor), on the running lab. Prints figures (and --json); asserts nothing except that
no message was lost or delivered twice.

    .venv/bin/python bench/delivery.py [--messages 10000] [--sessions 4] [--runs 3]

Each run: Postfix's own smtp-source on `outside` sends --messages messages of ~3 KB over
--sessions parallel SMTP sessions to mx1:25 (port 25 -> rspamd milter -> Dovecot LMTP
-> Maildir), one recipient: a mailbox made for the bench. Time runs from the first
connection until Dovecot holds every message (counted with doveadm: zero lost, zero
twice). The floor is the same run with Postfix's milters turned off on mx1 for the run
(postconf), the rest unchanged.

Rate limits and greylisting are part of the product: the bench deploys a data variant
(inventory/lab/mail.yml plus: the bench mailbox, outside exempt from greylisting, the
per-client rate limit lifted) and deploys the lab's own data again at the end, then
removes the bench mailbox's mail.

Also measured: the CPU seconds each side spent (smtp-source on outside; rspamd,
Postfix and Dovecot on mx1), so it shows whether the sender, on the same two cores,
is what limits the rate; and mx1's whole-host PSS at its peak during the run (P5).
"""
import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from labrun import PSS, ROOT, spread, ssh

sys.path.insert(0, str(ROOT))
from mailstack.host.password import hash_password  # noqa: E402

LAB_DATA = ROOT / "inventory" / "lab" / "mail.yml"
BOX = "bench@acme.test"
MAILDIR = "/var/vmail/acme.test/bench"
# CPU seconds (user + system) of each service's process tree on the host: the live
# processes' own, plus what its main process collected from children that ended.
CPU = """
import json, os
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    f = s[s.rindex(")") + 2:].split()
    procs[int(pid)] = (s[s.index("(") + 1:s.rindex(")")], int(f[1]), int(f[11]) + int(f[12]),
                       int(f[13]) + int(f[14]))
out = {}
for name, comm in (("rspamd", "rspamd"), ("postfix", "master"), ("dovecot", "dovecot")):
    total = 0
    for root in [p for p, v in procs.items() if v[0] == comm and v[1] == 1]:
        total += procs[root][2] + procs[root][3]
        stack = [root]
        while stack:
            parent = stack.pop()
            for p, v in procs.items():
                if v[1] == parent:
                    total += v[2] + v[3]
                    stack.append(p)
    out[name] = total / os.sysconf("SC_CLK_TCK")
print(json.dumps(out))
"""
def deploy(data):
    subprocess.run([str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", "inventory/lab.py", "deploy.py"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "MAILSTACK_LAB_DATA": str(data)})


def variant(directory):
    """The lab's data with the bench mailbox, outside never greylisted, no rate limit
    that 10,000 messages from one client would meet."""
    text = LAB_DATA.read_text()
    for old, new in (("exempt_networks: [10.66.0.1/32]", "exempt_networks: [10.66.0.1/32, 10.66.0.20/32]"),
                     ("messages_per_minute: 300", "messages_per_minute: 1000000"),
                     ("mailboxes:\n", f"mailboxes:\n  - address: {BOX}\n    quota: 4G\n    protocols: [imap]\n")):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = directory / "mail.yml"
    path.write_text(text)
    hashes = (ROOT / ".lab" / "password-hashes.yml").read_text()
    (directory / "password-hashes.yml").write_text(
        hashes + f"{BOX}: '{hash_password(secrets.token_urlsafe(18))}'\n")
    return path


def held():
    out = ssh("mx1", f"doveadm mailbox status -u {BOX} messages '*' 2>/dev/null || true")
    return sum(int(n) for n in re.findall(r"messages=(\d+)", out))


def cpu():
    return json.loads(ssh("mx1", CPU, shell="python3"))


def one_run(messages, sessions, milter, data):
    subject = f"bench {secrets.token_hex(4)}"
    ssh("mx1", f"doveadm expunge -u {BOX} mailbox '*' all 2>/dev/null; "
               f"rm -rf {MAILDIR}/Maildir-expunged; true")
    if not milter:
        ssh("mx1", "postconf -e 'smtpd_milters =' 'non_smtpd_milters =' && postfix reload")
    before = cpu()
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], int(ssh("mx1", PSS, check=False) or 0))
            done.wait(2)
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    # -t: the envelope recipient; -f: the sender; -s: parallel sessions; -l: bytes.
    sent = ssh("outside", f"cd /tmp; TIMEFORMAT='%U %S'; {{ time /usr/sbin/smtp-source -s {sessions} "
                          f"-m {messages} -l 3000 -f bench@example.test -t {BOX} -S '{subject}' "
                          f"mx1.acme.test:25; }} 2>&1", shell="bash")
    accepted = time.monotonic() - start
    deadline = time.monotonic() + max(300, messages / 5)
    while (count := held()) < messages and time.monotonic() < deadline:
        time.sleep(0.5)
    delivered = time.monotonic() - start
    done.set()
    sampler.join()
    after = cpu()
    if not milter:
        deploy(data)                         # main.cf as the data says
    times = re.search(r"([\d.]+) ([\d.]+)$", sent)
    sender_cpu = float(times.group(1)) + float(times.group(2)) if times else None
    return {"milter": milter, "messages": messages, "held": count, "accepted_s": round(accepted, 2),
            "delivered_s": round(delivered, 2), "per_s": round(messages / delivered, 1),
            "cpu_s": {k: round(after[k] - before[k], 1) for k in after}, "sender_cpu_s": sender_cpu,
            "mx1_peak_pss_mib": round(peak[0] / 1024, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailstack-bench-"))
    data = variant(work)
    results = []
    try:
        deploy(data)
        idle = int(ssh("mx1", PSS)) / 1024
        for _ in range(args.runs):
            for milter in (True, False):
                r = one_run(args.messages, args.sessions, milter, data)
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
                if r["held"] != args.messages:
                    sys.exit(f"bench: {r['held']} of {args.messages} messages held: lost or twice")
    finally:
        deploy(LAB_DATA)
        ssh("mx1", f"rm -rf {MAILDIR}", check=False)
        shutil.rmtree(work)
    summary = summarize(results, idle)
    print(json.dumps(summary, indent=2) if args.json else report(summary))


def summarize(results, idle):
    with_, floor = (spread([r["per_s"] for r in results if r["milter"] is milter], 1) for milter in (True, False))
    share = statistics.median(r["cpu_s"]["rspamd"] / max(0.01, sum(r["cpu_s"].values()))
                              for r in results if r["milter"])
    sender = statistics.median((r["sender_cpu_s"] or 0) / r["delivered_s"] for r in results if r["milter"])
    return {"messages": results[0]["messages"], "with_rspamd_per_s": with_, "floor_per_s": floor,
            "ratio": round(with_["median"] / floor["median"], 2),
            "rspamd_cpu_share": round(share, 2), "sender_cpu_per_wall_s": round(sender, 2),
            "mx1_idle_pss_mib": round(idle, 1),
            "mx1_peak_pss_mib": max(r["mx1_peak_pss_mib"] for r in results), "runs": results}


def report(s):
    w, f = s["with_rspamd_per_s"], s["floor_per_s"]
    return "\n".join([
        f"delivery of {s['messages']} messages from outside to one mailbox on mx1 (msgs/s, median of "
        f"{w['runs']}, min-max):",
        f"  with rspamd      {w['median']:7.1f}  ({w['min']}-{w['max']})",
        f"  milter off       {f['median']:7.1f}  ({f['min']}-{f['max']})",
        f"  ratio            {s['ratio']:7.2f}x  (goal >= 0.9x)",
        f"  rspamd's share of mx1's mail CPU time: {s['rspamd_cpu_share']:.0%}; sender's CPU per second "
        f"of run: {s['sender_cpu_per_wall_s']:.2f} s (of 2 cores)",
        f"  mx1 whole-host PSS: idle {s['mx1_idle_pss_mib']} MiB, peak during the runs "
        f"{s['mx1_peak_pss_mib']} MiB"])


if __name__ == "__main__":
    main()

"""mailstack-status: what `mailstack status` asks each host, as one JSON object.

    mailstack-status [--peer HOST:PORT ...]
    mailstack-status --metrics FILE [--address IP --dnsbl ZONE ...]
    mailstack-status --history SECONDS

With --metrics, the same facts (and rspamd's counters, and whether the host's
address is on each blocklist) are written as Prometheus metrics to FILE, for the
node exporter's textfile collector (a timer runs it where a monitoring host reads
this host: roles/metrics.py). With --history, on a monitoring host: HISTORY's
series over the last SECONDS from the Prometheus beside it, as JSON (the charts of
`mailstack status --html`).

services   every service and timer this kit runs that is enabled here: its state
           (anything but "active" needs attention), and the units systemd lists failed
certificate the ACME certificate's expiry (seconds left), where the host has one
queue      Postfix's queue: messages and the oldest one's age (seconds)
disk       percent used of / and of the mail store
quota      mailboxes at QUOTA_WARN percent of their quota or more
peers      whether each HOST:PORT answers a TCP connection from here (the other MX)
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

CERT = "/etc/letsencrypt/live/mailstack/cert.pem"
# Units of this kit (and Debian's, that it enables) that must run where enabled.
UNITS = ("postfix", "dovecot", "rspamd", "redis-server", "nginx", "php8.2-fpm", "php8.4-fpm",
         "postgresql", "knot", "unbound", "fail2ban", "tlsrpt-collectd", "tlsrpt-reportd",
         "mailstack-password.socket", "certbot.timer", "mailstack-backup.timer",
         "mailstack-backup-check.timer", "mailstack-backup-prune.timer", "mailstack-dkim-retire.timer",
         "mailstack-expire.timer", "mailstack-offboarded.timer")
QUOTA_WARN = 90


def run(*argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def services():
    states = {}
    for unit in UNITS:
        if (run("systemctl", "is-enabled", unit) or "").strip() == "enabled":
            states[unit] = (subprocess.run(["systemctl", "is-active", unit], capture_output=True,
                                           text=True).stdout.strip() or "unknown")
    failed = (run("systemctl", "list-units", "--state=failed", "--plain", "--no-legend") or "").split("\n")
    return {"units": states, "failed": [line.split()[0] for line in failed if line.strip()]}


def certificate(now):
    out = run("openssl", "x509", "-in", CERT, "-noout", "-enddate") if os.path.exists(CERT) else None
    if not out:
        return None
    end = datetime.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return {"not_after": end.isoformat() + "Z",
            "seconds_left": int(end.replace(tzinfo=datetime.timezone.utc).timestamp() - now)}


def postfix_running():
    """Whether Postfix's master runs (its pid file names a live process): postqueue
    with Postfix stopped reads the queue directly and logs a warning each time."""
    try:
        with open("/var/spool/postfix/pid/master.pid") as f:
            os.kill(int(f.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def queue(now):
    if not shutil.which("postqueue") or not postfix_running():
        return None
    arrivals = [json.loads(line)["arrival_time"] for line in (run("postqueue", "-j") or "").splitlines()
                if line.strip()]
    return {"messages": len(arrivals), "oldest": int(now - min(arrivals)) if arrivals else 0}


def disk():
    used = {}
    for path in ("/", "/var/vmail"):
        if os.path.isdir(path):
            s = os.statvfs(path)
            used[path] = round(100 * (1 - s.f_bavail / s.f_blocks), 1) if s.f_blocks else 0.0
    return used


def quota():
    """Mailboxes at QUOTA_WARN % or more of their storage quota."""
    if not shutil.which("doveadm"):
        return None
    full = []
    for line in (run("doveadm", "-f", "tab", "quota", "get", "-A") or "").splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 6 and fields[2] == "STORAGE" and fields[5].isdigit() \
                and int(fields[5]) >= QUOTA_WARN:
            full.append({"mailbox": fields[0], "percent": int(fields[5])})
    return full


def peers(targets):
    reached = {}
    for target in targets:
        host, _, port = target.rpartition(":")
        if host == socket.getfqdn():
            continue
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            reached[target] = True
        except OSError:
            reached[target] = False
    return reached


def listed(address, zone):
    """Whether an IPv4 address is on a DNS blocklist (any A answer), asked of this
    host's resolver."""
    try:
        socket.gethostbyname(".".join(reversed(address.split("."))) + "." + zone)
        return True
    except OSError:
        return False


def rspamd_counters():
    """rspamd's own counters (its controller on loopback, no password there)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:11334/stat", timeout=5) as r:
            stat = json.load(r)
    except (OSError, ValueError):
        return None
    return {"scanned": stat.get("scanned", 0), "actions": stat.get("actions", {})}


def metrics(now, address=None, dnsbls=()):
    """The Prometheus text exposition of this host's facts."""
    out = []

    def metric(name, value, help_text, labels=None, kind="gauge"):
        if not any(line.startswith(f"# TYPE {name} ") for line in out):
            out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        label = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        out.append(f"{name}{label} {value}")
    q = queue(now)
    if q is not None:
        metric("mailstack_queue_messages", q["messages"], "Messages in Postfix's queue.")
        metric("mailstack_queue_oldest_seconds", q["oldest"], "Age of the oldest message in the queue.")
    cert = certificate(now)
    if cert:
        metric("mailstack_certificate_expiry_timestamp_seconds", int(now + cert["seconds_left"]),
               "When the ACME certificate expires.")
    for zone in dnsbls if address else ():
        metric("mailstack_dnsbl_listed", int(listed(address, zone)), "1 if this host is on the blocklist.",
               {"zone": zone})
    counters = rspamd_counters()
    if counters:
        metric("mailstack_rspamd_scanned_total", counters["scanned"], "Messages rspamd has scanned.",
               kind="counter")
        for action, count in sorted(counters["actions"].items()):
            metric("mailstack_rspamd_actions_total", count, "Messages per rspamd action.",
                   {"action": action}, kind="counter")
    return "".join(line + "\n" for line in out)


PROMETHEUS = "http://127.0.0.1:9090"
SPAM_ACTIONS = "reject|add header|rewrite subject"
# name -> PromQL ({w}: the rate window); each answer a series per host, or one for all.
HISTORY = {
    "volume": "sum by (host) (rate(mailstack_rspamd_scanned_total[{w}])) * 3600",
    "spam": f'sum(rate(mailstack_rspamd_actions_total{{{{action=~"{SPAM_ACTIONS}"}}}}[{{w}}])) '
            "/ sum(rate(mailstack_rspamd_scanned_total[{w}]))",
    "queue": "sum by (host) (mailstack_queue_messages)",
}


def history(seconds, now):
    """{name: {label: [[time, value], ...]}} at about 200 points per series."""
    step = max(15, int(seconds / 200))
    window = f"{max(300, 4 * step)}s"
    out = {}
    for name, query in HISTORY.items():
        args = urllib.parse.urlencode({"query": query.format(w=window), "start": now - seconds, "end": now,
                                       "step": step})
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query_range?{args}", timeout=30) as r:
            result = json.load(r)["data"]["result"]
        out[name] = {s["metric"].get("host", "all"): [[float(t), float(v)] for t, v in s["values"]
                                                      if v not in ("NaN", "+Inf", "-Inf")]
                     for s in result}
    return out


def write_atomically(path, text):
    with open(f"{path}.new", "w") as f:
        f.write(text)
    os.chmod(f"{path}.new", 0o644)
    os.replace(f"{path}.new", path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="mailstack-status")
    p.add_argument("--peer", action="append", default=[], metavar="HOST:PORT")
    p.add_argument("--metrics", metavar="FILE")
    p.add_argument("--address")
    p.add_argument("--dnsbl", action="append", default=[], metavar="ZONE")
    p.add_argument("--history", type=int, metavar="SECONDS")
    args = p.parse_args(argv)
    now = time.time()
    if args.history:
        print(json.dumps(history(args.history, now)))
        return
    if args.metrics:
        write_atomically(args.metrics, metrics(now, args.address, args.dnsbl))
        return
    print(json.dumps({"services": services(), "certificate": certificate(now), "queue": queue(now),
                      "disk": disk(), "quota": quota(), "peers": peers(args.peer)}, sort_keys=True))

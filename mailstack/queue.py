"""What a backup MX holds for the primary: its Postfix queue, per domain."""
import json
import time

QUEUE_COMMAND = "postqueue -j"
FLUSH_COMMAND = "postqueue -f && postqueue -j"


def per_domain(postqueue_json, now=None):
    """{domain: {"messages": n, "oldest": seconds, "reason": last delay reason}} from
    `postqueue -j` output (one JSON object per queued message)."""
    now = now or time.time()
    out = {}
    for line in postqueue_json.splitlines():
        if not line.strip():
            continue
        message = json.loads(line)
        by_domain = {}
        for r in message["recipients"]:
            by_domain.setdefault(r["address"].rsplit("@", 1)[-1].lower(), []).append(r)
        for domain, recipients in by_domain.items():
            entry = out.setdefault(domain, {"messages": 0, "oldest": 0, "reason": ""})
            entry["messages"] += 1
            entry["oldest"] = max(entry["oldest"], int(now - message["arrival_time"]))
            entry["reason"] = next((r["delay_reason"] for r in recipients if r.get("delay_reason")),
                                   entry["reason"])
    return out


def report(by_host):
    """Printable lines for {host: per_domain(...)}."""
    lines = []
    for host, domains in sorted(by_host.items()):
        total = sum(d["messages"] for d in domains.values())
        lines.append(f"{host}: {total} message(s) queued")
        for domain, d in sorted(domains.items()):
            lines.append(f"  {domain}: {d['messages']} message(s), oldest {d['oldest']}s"
                         + (f" ({d['reason']})" if d["reason"] else ""))
    return "\n".join(lines)

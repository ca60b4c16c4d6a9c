"""`mailstack status`: what needs attention in a mail system, from the operator's side
(DNS as the world resolves it, the MTA-STS policy as senders fetch it) and on the
hosts (mailstack/host/status.py, and the backups' own status). Each check is a row;
a row with a problem makes the command exit 1."""
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import asdict, dataclass

import dns.exception
import dns.flags
import dns.rdata
import dns.resolver

from .dns import mta_sts_policy, zone_records

CERT_WARN = 20 * 86400          # a certificate expiring sooner needs attention
BACKUP_MAX_AGE = 26 * 3600      # a daily backup older than this has been missed
DISK_WARN = 90                  # percent
QUEUE_MAX_AGE = 3600            # a message waiting longer is stuck
STATUS_COMMAND = "/usr/local/sbin/mailstack-status"


@dataclass(frozen=True)
class Check:
    check: str
    target: str
    problem: str = ""           # "" when all is well
    detail: str = ""


def wanted_records(records):
    """(name, type) -> the values (in canonical text) the model wants there."""
    wanted = {}
    for r in records:
        wanted.setdefault((r.name, r.rtype), set()).add(dns.rdata.from_text("IN", r.rtype, r.value).to_text())
    return wanted


def wrong_records(resolver, records):
    """(name, type) -> (what resolves, what the model wants) for every record that differs."""
    wrong = {}
    for (name, rtype), values in wanted_records(records).items():
        try:
            got = {r.to_text() for r in resolver.resolve(name, rtype)}
        except dns.exception.DNSException as e:
            got = repr(e)
        if got != values:
            wrong[(name, rtype)] = (got, values)
    return wrong


def dns_checks(system, facts, resolver):
    """Every record the model wants, as the resolver answers; DNSSEC where the
    system's own DNS signs its zones."""
    zones = zone_records(system, facts=facts)
    checks = []
    for d in system.domains:
        wrong = wrong_records(resolver, zones[d.name])
        checks.append(Check("dns records", d.name, "; ".join(
            f"{name} {rtype}: {'missing' if isinstance(got, str) else 'differs'}"
            for (name, rtype), (got, _) in sorted(wrong.items())),
            f"{len(wanted_records(zones[d.name]))} names"))
        if system.hosts_with("dns"):
            try:
                answer = resolver.resolve(d.name, "SOA")
                validated = bool(answer.response.flags & dns.flags.AD)
            except dns.exception.DNSException:
                validated = False
            checks.append(Check("dnssec", d.name, "" if validated else "the resolver does not validate it"))
    return checks


def dnsbl_checks(system, resolver):
    """Each MX address on each blocklist the data names: a blocklist answers an A
    record (127.0.0.x) for a listed address, NXDOMAIN for a clean one."""
    checks = []
    for h in [system.primary_mx] + system.backup_mx:
        for zone in system.dnsbls:
            name = ipaddress.ip_address(h.address).reverse_pointer.rsplit(".", 2)[0] + f".{zone}"
            try:
                answer = resolver.resolve(name, "A")
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                checks.append(Check("dnsbl", f"{h.fqdn} on {zone}"))
                continue
            except dns.exception.DNSException as e:
                checks.append(Check("dnsbl", f"{h.fqdn} on {zone}", f"no answer from the blocklist: {e}"))
                continue
            try:
                reason = " ".join(b.decode() for r in resolver.resolve(name, "TXT") for b in r.strings)
            except dns.exception.DNSException:
                reason = ""
            checks.append(Check("dnsbl", f"{h.fqdn} on {zone}",
                                f"listed ({', '.join(sorted(r.to_text() for r in answer))})"
                                + (f": {reason}" if reason else "")))
    return checks


def fetch_policy(address, name, context):
    conn = http.client.HTTPConnection(name, 443, timeout=15)
    conn.sock = context.wrap_socket(socket.create_connection((address, 443), 10), server_hostname=name)
    conn.request("GET", "/.well-known/mta-sts.txt", headers={"Host": name})
    response = conn.getresponse()
    return response.status, response.read().decode(errors="replace")


def mta_sts_checks(system, resolver, context):
    """Each domain's policy fetched as a sender does (HTTPS, verified), equal to the model's."""
    checks, want = [], mta_sts_policy(system)
    for d in system.domains:
        name = f"mta-sts.{d.name}"
        try:
            address = resolver.resolve(name, "A")[0].to_text()
            code, text = fetch_policy(address, name, context)
            problem = "" if code == 200 and text == want else f"HTTP {code}, policy differs" if code == 200 \
                else f"HTTP {code}"
        except (dns.exception.DNSException, OSError, ssl.SSLError, http.client.HTTPException) as e:
            problem = f"not served: {e}"
        checks.append(Check("mta-sts policy", d.name, problem))
    return checks


def host_checks(fqdn, report, queue_max=100):
    """Rows from one host's mailstack-status report (mailstack/host/status.py);
    queue_max: more messages waiting need attention (the data's queue.warn_messages)."""
    if not report:
        return [Check("host", fqdn, "no answer")]
    checks = []
    units = report["services"]["units"]
    down = sorted(f"{u} {state}" for u, state in units.items() if state != "active")
    failed = sorted(set(report["services"]["failed"]) - {f"{u}.service" for u in units} - set(units))
    checks.append(Check("services", fqdn, "; ".join(down + [f"{u} failed" for u in failed]),
                        f"{len(units)} running"))
    if report.get("certificate"):
        left = report["certificate"]["seconds_left"]
        checks.append(Check("certificate", fqdn,
                            "expired" if left <= 0 else f"expires in {left // 86400} days" if left < CERT_WARN else "",
                            f"until {report['certificate']['not_after']}"))
    if report.get("queue") is not None:
        q = report["queue"]
        stuck = [f"{q['messages']} messages waiting"] if q["messages"] > queue_max else []
        if q["oldest"] > QUEUE_MAX_AGE:
            stuck.append(f"oldest message waits {q['oldest'] // 60} min")
        checks.append(Check("queue", fqdn, "; ".join(stuck), f"{q['messages']} message(s)"))
    full = [f"{path} {used}%" for path, used in sorted(report["disk"].items()) if used >= DISK_WARN]
    checks.append(Check("disk", fqdn, "; ".join(full),
                        ", ".join(f"{p} {u}%" for p, u in sorted(report["disk"].items()))))
    if report.get("quota") is not None:
        checks.append(Check("quota", fqdn, "; ".join(f"{q['mailbox']} {q['percent']}%" for q in report["quota"])))
    for peer, reached in sorted(report["peers"].items()):
        checks.append(Check("mx reachable", f"{fqdn} -> {peer}", "" if reached else "no answer"))
    return checks


def backup_checks(rows, now=None):
    """Rows from the backups' status (mailstack.backup.statuses): failed, or too old."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    checks = []
    for r in rows:
        problem = r["problem"]
        if not problem and r["last_success"]:
            age = (now - datetime.datetime.fromisoformat(r["last_success"])).total_seconds()
            if age > BACKUP_MAX_AGE:
                problem = f"last success {int(age // 3600)} h ago"
        checks.append(Check("backup", r["host"], problem, f"last success {r['last_success'] or 'never'}"))
    return checks


def peer_arguments(system):
    """Each mail host checks that the others answer on port 25."""
    mxs = [system.primary_mx] + system.backup_mx
    return " ".join(f"--peer {h.fqdn}:25" for h in mxs) if len(mxs) > 1 else ""


def table(name, checks):
    lines = [f"{name}: {sum(1 for c in checks if c.problem)} problem(s) in {len(checks)} checks",
             f"  {'check':16} {'target':36} {'state':6} detail"]
    lines += [f"  {c.check:16} {c.target:36} {'FAIL' if c.problem else 'ok':6} {c.problem or c.detail}"
              for c in checks]
    return "\n".join(lines)


def as_json(name, checks):
    return {"system": name, "ok": not any(c.problem for c in checks), "checks": [asdict(c) for c in checks]}


def parse_host_reports(outputs):
    reports = {}
    for fqdn, out in outputs.items():
        try:
            reports[fqdn] = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
        except (json.JSONDecodeError, IndexError):
            reports[fqdn] = None
    return reports

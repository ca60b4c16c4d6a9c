"""`mailstack reports`: the DMARC aggregate and TLS-RPT reports the world sent the
system's reporting address, read with PyPI's parsedmarc (offline: no lookups, no
downloads) into one summary per domain: who sends as it, passing or failing DMARC
by source address, what our policy makes receivers do with the failures; and the
TLS failures senders met delivering to it."""
import base64
import json

from .model import MailSystem

ENFORCED = {"reject": "rejected", "quarantine": "quarantined"}
FETCH_COMMAND = "/usr/local/sbin/mailstack-reports fetch --since {since} {mailboxes}"


def parse(lines):
    """Parsed reports ({"report_type", "report"}) from mailstack-reports' JSON lines;
    a message parsedmarc cannot read is counted, not fatal."""
    import parsedmarc
    parsed, unreadable = [], 0
    for line in lines.splitlines():
        if not line.strip():
            continue
        raw = base64.b64decode(json.loads(line)["raw"])
        try:
            parsed.append(parsedmarc.parse_report_email(raw, offline=True, always_use_local_files=True))
        except parsedmarc.ParserError:
            unreadable += 1
    return parsed, unreadable


def summary(system: MailSystem, parsed):
    """{"dmarc": {domain: {...}}, "tls": {domain: {...}}} over every report."""
    ours = {h.address: h.fqdn for h in system.hosts}
    dmarc, tls, seen = {}, {}, set()
    for p in parsed:
        report = p["report"]
        if p["report_type"] == "aggregate":
            meta, policy = report["report_metadata"], report["policy_published"]
            key = (meta["org_name"], meta["report_id"])
            if key in seen:         # the same report, sent twice
                continue
            seen.add(key)
            d = dmarc.setdefault(policy["domain"], {"policy": policy["p"], "reporters": set(), "sources": {}})
            d["reporters"].add(meta["org_name"])
            for r in report["records"]:
                ip = r["source"]["ip_address"]
                passed = bool(r["alignment"]["dmarc"])
                s = d["sources"].setdefault((ip, passed), {
                    "source": ip, "host": ours.get(ip), "dmarc": "pass" if passed else "fail",
                    "messages": 0, "dispositions": set()})
                s["messages"] += int(r["count"])
                s["dispositions"].add(r["policy_evaluated"]["disposition"])
        elif p["report_type"] == "smtp_tls":
            for policy in report.get("policies", []):
                t = tls.setdefault(policy["policy_domain"], {"successful": 0, "failed": 0, "failures": {}})
                t["successful"] += int(policy.get("successful_session_count") or 0)
                t["failed"] += int(policy.get("failed_session_count") or 0)
                for f in policy.get("failure_details") or []:
                    what = f.get("result_type", "unknown")
                    t["failures"][what] = t["failures"].get(what, 0) + int(f.get("failed_session_count") or 0)
    return {"dmarc": {domain: {"policy": d["policy"], "reporters": sorted(d["reporters"]),
                               "sources": sorted(({**s, "dispositions": sorted(s["dispositions"])}
                                                  for s in d["sources"].values()),
                                                 key=lambda s: (s["dmarc"], -s["messages"], s["source"]))}
                      for domain, d in sorted(dmarc.items())},
            "tls": dict(sorted(tls.items()))}


def digest_message(system: MailSystem, body):
    """The weekly digest, from the postmaster to the postmaster."""
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid
    m = EmailMessage()
    m["From"] = m["To"] = system.postmaster
    m["Subject"] = f"DMARC and TLS reports for {system.name}"
    m["Date"] = formatdate()
    m["Message-ID"] = make_msgid(domain=system.postmaster.split("@")[1])
    m["Auto-Submitted"] = "auto-generated"
    m.set_content(body + "\n")
    return m


def text(s, unreadable=0):
    lines = []
    for domain, d in s["dmarc"].items():
        failing = sum(x["messages"] for x in d["sources"] if x["dmarc"] == "fail")
        lines.append(f"{domain}: DMARC p={d['policy']}, reports from {', '.join(d['reporters'])}; "
                     f"{failing} message(s) failed")
        lines.append(f"  {'source':40} {'messages':>8}  dmarc  receivers did")
        for x in d["sources"]:
            name = f"{x['source']} ({x['host']})" if x["host"] else x["source"]
            note = (f"  <- {ENFORCED[d['policy']]} by our policy"
                    if x["dmarc"] == "fail" and d["policy"] in ENFORCED else "")
            lines.append(f"  {name:40} {x['messages']:>8}  {x['dmarc']:5}  {', '.join(x['dispositions'])}{note}")
    for domain, t in s["tls"].items():
        failures = ", ".join(f"{what} {n}" for what, n in sorted(t["failures"].items())) or "none"
        lines.append(f"{domain}: TLS-RPT: {t['successful']} session(s) ok, {t['failed']} failed ({failures})")
    if not lines:
        lines.append("no DMARC or TLS-RPT report arrived in this time")
    if unreadable:
        lines.append(f"({unreadable} report message(s) could not be read)")
    return "\n".join(lines)

"""`mailstack status --html FILE`: one self-contained page (no script, no file or
address it loads) with the status table, the DMARC and TLS-RPT summary, and charts
of the last days from the monitoring host's Prometheus, drawn as inline SVG."""
import datetime
import html

from .reports import ENFORCED

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
CHARTS = (("volume", "Mail scanned by rspamd", "messages per hour"),
          ("spam", "Spam share of the mail scanned", "fraction"),
          ("queue", "Messages in Postfix's queue", "messages"))
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f4f4f4}.fail td{background:#fde8e8}.state-fail{color:#b00;font-weight:bold}
.state-ok{color:#080}.summary{font-size:16px;margin:8px 0}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}figcaption{font-weight:bold;margin-bottom:4px}.none{color:#777}
"""


def e(text):
    return html.escape(str(text), quote=True)


def chart(series, unit, width=340, height=180):
    """A line per label over time; the axes give the range of time and values."""
    points = [p for values in series.values() for p in values]
    if not points:
        return '<p class="none">no data in this time</p>'
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1      # all zero: a flat line at the bottom
    left, bottom, right, up = 44, height - 28, width - 8, 8

    def x(t):
        return left + (right - left) * ((t - t0) / (t1 - t0) if t1 > t0 else 1)

    def y(v):
        return bottom - (bottom - up) * v / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 18 * len(series)}" '
             f'role="img" aria-label="{e(unit)}">',
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>',
             f'<line x1="{left}" y1="{up}" x2="{left}" y2="{bottom}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{up + 10}" font-size="11" text-anchor="end">{top:.3g}</text>',
             f'<text x="{left - 4}" y="{bottom}" font-size="11" text-anchor="end">0</text>']
    for t, anchor, at in ((t0, "start", left), (t1, "end", right)):
        stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%d %b %H:%M")
        parts.append(f'<text x="{at}" y="{bottom + 14}" font-size="11" text-anchor="{anchor}">{stamp}</text>')
    for i, (label, values) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        parts.append(f'<polyline class="series" data-label="{e(label)}" fill="none" stroke="{colour}" '
                     f'stroke-width="1.5" points="{line}"/>')
        parts.append(f'<text x="{left}" y="{height + 4 + 18 * i}" font-size="12" fill="{colour}">{e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(name, checks, reports=None, history=None, generated=None, span="7d"):
    generated = generated or datetime.datetime.now(datetime.timezone.utc)
    failing = [c for c in checks if c.problem]
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(name)}: mail system status</title><style>{STYLE}</style></head><body>",
           f"<h1>{e(name)}: mail system status</h1>",
           f'<p class="summary" id="summary">{len(failing)} problem(s) in {len(checks)} checks, '
           f'{generated:%Y-%m-%d %H:%M} UTC</p>',
           '<table id="checks"><tr><th>check</th><th>target</th><th>state</th><th>detail</th></tr>']
    for c in checks:
        state = "fail" if c.problem else "ok"
        out.append(f'<tr class="{state}"><td>{e(c.check)}</td><td>{e(c.target)}</td>'
                   f'<td class="state-{state}">{state.upper() if c.problem else state}</td>'
                   f"<td>{e(c.problem or c.detail)}</td></tr>")
    out.append("</table>")
    out.append(f"<h2>Who sends as our domains (DMARC reports of the last {e(span)})</h2>")
    out.extend(dmarc_tables(reports))
    out.append(f'<h2>The last {e(span)}</h2><div class="charts">')
    for key, title, unit in CHARTS:
        body = chart((history or {}).get(key, {}), unit) if history is not None else \
            '<p class="none">no monitoring host in this system</p>'
        out.append(f'<figure id="chart-{key}"><figcaption>{e(title)} ({e(unit)})</figcaption>{body}</figure>')
    out.append("</div></body></html>")
    return "\n".join(out) + "\n"


def dmarc_tables(reports):
    if not reports or not (reports["dmarc"] or reports["tls"]):
        return ['<p class="none">no DMARC or TLS-RPT report arrived in this time</p>']
    out = []
    for domain, d in reports["dmarc"].items():
        out.append(f"<h3>{e(domain)}: p={e(d['policy'])}, reports from {e(', '.join(d['reporters']))}</h3>")
        out.append('<table class="dmarc"><tr><th>source</th><th>messages</th><th>DMARC</th>'
                   "<th>receivers did</th></tr>")
        for s in d["sources"]:
            name = f"{s['source']} ({s['host']})" if s["host"] else s["source"]
            note = (f" (our policy: {ENFORCED[d['policy']]})"
                    if s["dmarc"] == "fail" and d["policy"] in ENFORCED else "")
            out.append(f'<tr class="{"fail" if s["dmarc"] == "fail" else "ok"}"><td>{e(name)}</td>'
                       f"<td>{s['messages']}</td><td>{e(s['dmarc'])}</td>"
                       f"<td>{e(', '.join(s['dispositions']) + note)}</td></tr>")
        out.append("</table>")
    for domain, t in reports["tls"].items():
        out.append(f"<p>{e(domain)}: TLS-RPT: {t['successful']} session(s) ok, {t['failed']} failed</p>")
    return out

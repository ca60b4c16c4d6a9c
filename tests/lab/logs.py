"""Every log of every lab host, read for the whole run: the whole journal (every
unit and identifier, no filter) and every log file under /var/log. Lines that
say something went wrong are collected with their time, host and source; the
after-all check (test_logs_are_clean.py) reports each one that no scenario
provoked on purpose. A host about to be rebuilt is read first (snapshot)."""
import datetime
import json
import re
import shlex
import time
from dataclasses import dataclass

# What a line that reports a fault says (besides a journal priority of warning or worse).
BAD = re.compile(r"\b(errors?|warn(ing)?s?|fatal|panic|crit(ical)?|emerg(ency)?|alert|"
                 r"fail(ed|ure|s)?|denied|refused|timed? ?out|segfault|traceback)\b", re.I)
AUDIT = re.compile(r"^\s*\S+ : (\(command continued\)|(TTY=\S+ ; )?PWD=\S+ ; USER=root ; COMMAND=)")
# Files that are not logs of faults: compressed or rotated copies, binary login
# records, package logs (they quote package descriptions and file names), request
# logs (one line per HTTP request) and certbot's debug log (whole ACME exchanges;
# certbot's own errors go to the journal).
SKIP_FILES = r"(/journal/|\.(gz|xz|[0-9])$|/(wtmp|btmp|lastlog|faillog)$|/access\.log$" \
             r"|/(dpkg|alternatives)\.log$|/apt/(history|eipp|term)\.log|/letsencrypt/)"

# Run on a host: new lines of every log file since the offsets given (JSON in
# argv[1]); prints {"offsets": {...}, "lines": [[path, line], ...]} (faults only).
READ_FILES = r"""
import json, os, re, sys
offsets, bad, skip = json.loads(sys.argv[1]), re.compile(sys.argv[2], re.I), re.compile(sys.argv[3])
out = {"offsets": {}, "lines": []}
for root, dirs, names in os.walk("/var/log"):
    for name in sorted(names):
        path = os.path.join(root, name)
        if skip.search(path) or not os.path.isfile(path):
            continue
        size, start = os.path.getsize(path), offsets.get(path, 0)
        if size < start:
            start = 0                      # rotated or truncated: read it all
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(size - start)
        # Keep a partly written last line for the next read.
        end = data.rfind(b"\n") + 1
        out["offsets"][path] = start + end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            if bad.search(line):
                out["lines"].append([path, line])
print(json.dumps(out))
"""

# Times as the log files write them (first match near the start of the line).
TIME_FORMATS = [
    (re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)"), "%Y-%m-%d %H:%M:%S"),
    (re.compile(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)"), "%Y/%m/%d %H:%M:%S"),          # nginx
    (re.compile(r"(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d)"), "%d-%b-%Y %H:%M:%S"),  # php, Roundcube
    (re.compile(r"(\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d)"), "%d %b %Y %H:%M:%S"),  # redis
]


def line_time(text):
    """Seconds since the epoch (UTC, as the lab hosts log) of a log file's line, or None."""
    head = text[:60]
    for pattern, fmt in TIME_FORMATS:
        m = pattern.search(head)
        if m:
            stamp = datetime.datetime.strptime(m.group(1).replace("T", " "), fmt)
            return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


@dataclass(frozen=True)
class Line:
    host: str
    source: str       # "journal <identifier or unit>" or a log file's path
    time: float       # seconds since the epoch; None when the line has no time
    text: str

    def __str__(self):
        when = time.strftime("%H:%M:%S", time.gmtime(self.time)) if self.time else "--:--:--"
        return f"{when} {self.host} [{self.source}] {self.text}"


def journal_entry(host, entry):
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):               # not UTF-8: journald gives the bytes
        message = bytes(message).decode("utf-8", "replace")
    source = entry.get("SYSLOG_IDENTIFIER") or entry.get("_SYSTEMD_UNIT") or "?"
    return int(entry.get("PRIORITY", 6)), Line(host, f"journal {source}",
                                               int(entry["__REALTIME_TIMESTAMP"]) / 1e6, message)


class Collector:
    """Reads each host's logs from the start of the run onwards, keeping the
    fault lines; read(name) again returns only what is new."""

    def __init__(self, hosts, start):
        self.hosts, self.start = hosts, int(start)
        self.offsets = {name: {} for name in hosts}
        self.lines = []
        # Where each host's journal was last read (journalctl's cursor); None: from start.
        self.cursors = {name: None for name in hosts}
        for name in hosts:
            self.offsets[name] = self._read_files(name)[0]   # only what comes from now on

    def _read_files(self, name):
        out = json.loads(self.hosts[name].check_output(
            f"python3 -c {shlex.quote(READ_FILES)} {shlex.quote(json.dumps(self.offsets[name]))}"
            f" {shlex.quote(BAD.pattern)} {shlex.quote(SKIP_FILES)}"))
        return out["offsets"], [Line(name, path, line_time(text), text) for path, text in out["lines"]]

    def read(self, name):
        """New fault lines of host `name` (also kept in self.lines)."""
        h = self.hosts[name]
        pattern = BAD.pattern + r'|"PRIORITY" ?: ?"[0-4]"|^-- cursor: '
        # From the last entry read (systemd 257 refuses --since with a cursor file).
        since = (f"--after-cursor={shlex.quote(self.cursors[name])}" if self.cursors[name]
                 else f"--since @{self.start}")
        raw = h.check_output(
            f"journalctl --no-pager -o json {since} --show-cursor"
            " --output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT"
            f" | grep -iE {shlex.quote(pattern)}"
            " || true")
        new = []
        for text in raw.splitlines():
            if text.startswith("-- cursor: "):
                self.cursors[name] = text[len("-- cursor: "):]
                continue
            priority, line = journal_entry(name, json.loads(text))
            if line.source == "journal sudo" and AUDIT.search(line.text):
                continue          # sudo's record of a command the tests ran, not a fault
            if priority <= 4 or BAD.search(line.text):
                new.append(line)
        self.offsets[name], lines = self._read_files(name)
        new += lines
        self.lines += new
        return new

    def rebuilt(self, name):
        """`name` is a new machine now: its logs start empty."""
        self.offsets[name], self.cursors[name] = {}, None


@dataclass(frozen=True)
class Provoked:
    """A fault line a scenario provokes on purpose: only on `host` ("*": any),
    only while `scenario` (a test's node id or its prefix) ran, give or take
    `before`/`after` seconds, and only a line that `pattern` matches."""
    scenario: str
    host: str
    pattern: str
    after: float = 15
    before: float = 2

    def matches(self, line, windows):
        if self.host not in ("*", line.host) or line.time is None:
            return False
        if not re.search(self.pattern, line.text):
            return False
        return any(start - self.before <= line.time <= end + self.after
                   for nodeid, spans in windows.items() if nodeid.startswith(self.scenario)
                   for start, end in spans)


def unexpected(lines, provoked, windows):
    """(lines no entry allows, {entry: how many lines it allowed})."""
    used, bad = {p: 0 for p in provoked}, []
    for line in lines:
        entry = next((p for p in provoked if p.matches(line, windows)), None)
        if entry:
            used[entry] += 1
        else:
            bad.append(line)
    return bad, used

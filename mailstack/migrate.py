"""mailstack migrate: a client's mailboxes from their old provider into this mail
system, copied on the primary by Dovecot's own dsync over IMAPS (mailstack-migrate,
mailstack/host/migrate.py), as often as needed: each run moves only what is new.

The map file (YAML) says which old login goes into which of the system's mailboxes,
and where the passwords are:

    credentials: initech-passwords.yml   # old login: password; beside this file; chmod 600
    mailboxes:
      - old: peter@initech.test          # the login at the old provider
        new: peter@initech.test          # a mailbox of this mail system
      - old: milton
        new: milton@initech.test

Everything is checked here, before any host is contacted. The passwords travel to the
primary on the standard input of its mailstack-migrate (through the deploy's own
connection), never on a command line.
"""
import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .facts import PYINFRA
from .host.migrate import ADDRESS, HOST, LOGIN, PROGRAM, password_problem

ROOT = Path(__file__).resolve().parent.parent
# The pyinfra deploy that hands the job to the primary (reads ENVIRONMENT).
START_DEPLOY = Path(__file__).resolve().parent / "migrate_start.py"
ENVIRONMENT = "MAILSTACK_MIGRATE"
MAP_KEYS = ("credentials", "mailboxes")
ENTRY_KEYS = ("old", "new")
DONE = ("finished", "failed", "stopped", "none")


class MapError(Exception):
    """A refused source, map or credentials file: says where, never a password."""


@dataclass(frozen=True)
class Source:
    host: str
    port: int = 993

    def __str__(self):
        return f"imaps://{self.host}" + (f":{self.port}" if self.port != 993 else "")


@dataclass(frozen=True)
class Entry:
    old: str
    new: str
    password: str = field(repr=False)


def parse_source(url):
    """imaps://HOST[:PORT]: the old provider's IMAP server over TLS, by the name its
    certificate carries."""
    parts = urlsplit(url)
    if parts.scheme != "imaps":
        raise MapError(f"--from {url!r}: use imaps://HOST[:PORT] (IMAP over TLS: a password "
                       "never crosses the network in clear, and STARTTLS can be stripped)")
    if parts.username or parts.password:
        raise MapError(f"--from {url!r}: no login in the URL: logins and passwords come from "
                       "the map and its credentials file")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MapError(f"--from {url!r}: only imaps://HOST[:PORT]")
    host = parts.hostname or ""
    if not HOST.match(host) or parts.netloc.split(":")[0] != host:
        raise MapError(f"--from {url!r}: {host!r} is not a host name (lower case, the name "
                       "the server's certificate carries)")
    try:
        port = parts.port or 993
    except ValueError:
        raise MapError(f"--from {url!r}: not a port") from None
    return Source(host, port)


def private_file(path, what):
    """Refuse a secrets file anyone but its owner, the operator, may read."""
    try:
        st = path.stat()
    except OSError as e:
        raise MapError(f"{what} {path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise MapError(f"{what} {path}: not a file")
    if st.st_mode & 0o077:
        raise MapError(f"{what} {path}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                       f"it holds passwords: chmod 600 {path}")
    if st.st_uid != os.getuid():
        raise MapError(f"{what} {path}: owned by uid {st.st_uid}, not by you (uid {os.getuid()})")


def read_credentials(path):
    """{old login: password} from a YAML mapping only the operator can read."""
    private_file(path, "credentials")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        # Never the parser's message: it may quote a line, and the line a password.
        raise MapError(f"credentials {path}: not a YAML mapping of login: password "
                       f"({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise MapError(f"credentials {path}: not a YAML mapping of login: password")
    return data


def load_map(path, system):
    """The entries of a map file, each checked against the mail system's model."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise MapError(f"map {path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(raw, dict):
        raise MapError(f"map {path}: not a mapping with {' and '.join(MAP_KEYS)}")
    unknown = sorted(set(raw) - set(MAP_KEYS))
    if unknown:
        raise MapError(f"map {path}: unknown key {unknown[0]!r} (known: {', '.join(MAP_KEYS)})")
    if not isinstance(raw.get("credentials"), str):
        raise MapError(f"map {path}: credentials: the file of passwords (old login: password)")
    boxes = raw.get("mailboxes")
    if not isinstance(boxes, list) or not boxes:
        raise MapError(f"map {path}: mailboxes: a list of {{old: LOGIN, new: ADDRESS}}")
    credentials_path = path.parent / raw["credentials"]   # an absolute path stays absolute
    mailboxes = {m.address for m in system.mailboxes}
    entries, olds, news = [], set(), set()
    for i, box in enumerate(boxes):
        where = f"map {path}: mailboxes[{i}]"
        if not isinstance(box, dict) or sorted(box) != sorted(ENTRY_KEYS):
            raise MapError(f"{where}: needs exactly old (the login there) and new (the address here)")
        old, new = box["old"], box["new"]
        if not isinstance(old, str) or not LOGIN.match(old):
            raise MapError(f"{where}.old: {old!r} is not a login mailstack accepts "
                           "(letters, digits and . _ @ + = -)")
        if not isinstance(new, str) or not ADDRESS.match(new):
            raise MapError(f"{where}.new: {new!r} is not an address")
        if new not in mailboxes:
            raise MapError(f"{where}.new: {new} is not a mailbox of {system.name}: add it to the "
                           "data (mailstack mailbox add) and deploy first")
        for seen, value, key in ((olds, old, "old"), (news, new, "new")):
            if value in seen:
                raise MapError(f"{where}.{key}: {value} is named twice")
            seen.add(value)
        entries.append((old, new))
    passwords = read_credentials(credentials_path)
    result = []
    for old, new in entries:
        password = passwords.get(old)
        if password is None:
            raise MapError(f"credentials {credentials_path}: no password for {old!r}")
        if not isinstance(password, str):
            raise MapError(f"credentials {credentials_path}: {old!r}: the password is not text "
                           "(quote it)")
        problem = password_problem(password)
        if problem:
            raise MapError(f"credentials {credentials_path}: {old!r}: the password {problem}")
        result.append(Entry(old, new, password))
    return result


def job(source, entries, run_id):
    """What the primary's mailstack-migrate takes on stdin (passwords included)."""
    return {"id": run_id, "host": source.host, "port": source.port,
            "mailboxes": [{"old": e.old, "new": e.new, "password": e.password} for e in entries]}


def job_text_from_environment(system):
    """The job for the deploy file (migrate_start.py), made again from the map the
    command line named: the passwords are read from their file, never passed on."""
    request = json.loads(os.environ[ENVIRONMENT])
    entries = load_map(request["map"], system)
    return json.dumps(job(parse_source(request["from"]), entries, request["id"]))


# --- following the run ----------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def statuses(lines, fqdn):
    """The status objects mailstack-migrate follow printed, out of pyinfra exec's
    output ("[host] line")."""
    prefix = f"[{fqdn}]"
    for line in lines:
        line = ANSI.sub("", line).strip()
        if line.startswith(prefix):
            text = line[len(prefix):].strip()
            if text.startswith("{"):
                try:
                    yield json.loads(text)
                except ValueError:
                    continue


def rate(copied, seconds):
    return round(copied / seconds, 1) if seconds else 0.0


class Progress:
    """A line as each mailbox starts and ends; between, a bar (a terminal) or a line
    at each quarter (a log)."""

    def __init__(self, out=sys.stderr, tty=None, width=30):
        self.out, self.width = out, width
        self.tty = out.isatty() if tty is None else tty
        self.seen = {}
        self.begun = set()

    def say(self, text):
        print(("\r\x1b[K" if self.tty else "") + text, file=self.out, flush=True)

    def update(self, status):
        for box in status.get("mailboxes", []):
            state, name = box.get("state"), box["new"]
            last = self.seen.get(name, {})
            if "total" in box and name not in self.begun:
                self.begun.add(name)
                self.say(f"{name}: {box['total']:,} message(s) at the old server ({box['old']}), "
                         f"{box['before']:,} here already")
            if state == "copying":
                self.bar(name, box, last)
            if state in ("done", "differs", "failed") and last.get("state") != state:
                self.say(self.ending(box))
            self.seen[name] = {"state": state, "quarter": self.quarter(box)}

    @staticmethod
    def quarter(box):
        total = box.get("total") or 0
        return min(4, 4 * box.get("now", 0) // total) if total else 4

    def bar(self, name, box, last):
        total, done = box.get("total") or 0, box.get("now", 0)
        if self.tty:
            filled = self.width * min(done, total) // total if total else self.width
            print(f"\r\x1b[K  {name} [{'#' * filled}{'.' * (self.width - filled)}] "
                  f"{min(done, total):,}/{total:,}", end="", file=self.out, flush=True)
        elif self.quarter(box) != last.get("quarter") and 0 < self.quarter(box) < 4:
            self.say(f"{name}: {min(done, total):,}/{total:,}")

    @staticmethod
    def ending(box):
        name = box["new"]
        if box["state"] == "failed" and "copied" not in box:
            return f"{name}: failed: {box.get('error', '?')}"
        copied, seconds = box.get("copied", 0), box.get("seconds", 0)
        text = (f"{name}: {copied:,} message(s) copied in {seconds:.1f} s "
                f"({rate(copied, seconds)} messages/s); {box.get('total', 0):,} at the old server, "
                f"{box.get('now', 0):,} here")
        if box["state"] == "failed":
            return f"{text}; failed: {box.get('error', '?')}"
        return text + ("" if box["state"] == "done" else "; the folders differ (below)")


def verdict(row):
    parts = [f"{row[k]} {label}" for k, label in (("missing", "missing"), ("duplicated", "duplicated"),
                                                  ("new_here", "new here"))
             if row[k]]
    if row["missing"] or row["duplicated"]:
        return "DIFFERS: " + ", ".join(parts)
    return ", ".join(["ok", *parts])


def table(status):
    """Per mailbox and folder: messages at the old server and here, and what differs."""
    rows = [("mailbox", "folder", "old", "new", "")]
    for box in status.get("mailboxes", []):
        folders = box.get("folders") or []
        if box.get("state") == "failed":
            rows.append((box["new"], "-", "", "", f"FAILED: {box.get('error', '?')}"))
        for i, r in enumerate(folders):
            rows.append((box["new"] if i == 0 and box.get("state") != "failed" else "", r["folder"],
                         f"{r['old']:,}", f"{r['new']:,}", verdict(r)))
        if not folders and box.get("state") != "failed":
            rows.append((box["new"], "-", "0", "0", "ok (empty)"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(f"{r[0]:{widths[0]}}  {r[1]:{widths[1]}}  {r[2]:>{widths[2]}}  "
                     f"{r[3]:>{widths[3]}}  {r[4]}".rstrip() for r in rows)


def result(status):
    """The run's outcome: all well, totals and messages/s (what --json prints)."""
    boxes = status.get("mailboxes", [])
    copied = sum(b.get("copied", 0) for b in boxes)
    seconds = round(sum(b.get("seconds", 0) for b in boxes), 1)
    ok = status.get("state") == "finished" and all(b.get("state") == "done" for b in boxes)
    return {"ok": ok, "server": status.get("server"), "run": status.get("run"),
            "state": status.get("state"), "copied": copied, "seconds": seconds,
            "messages_per_second": rate(copied, seconds), "mailboxes": boxes}


def report(status):
    outcome = result(status)
    lines = [table(status), ""]
    if status.get("error"):
        lines.append(f"the run failed: {status['error']}")
    lines.append(f"{len(outcome['mailboxes'])} mailbox(es) from {outcome['server']}: "
                 f"{outcome['copied']:,} message(s) copied in {outcome['seconds']:.1f} s, "
                 f"{outcome['messages_per_second']} messages/s")
    lines.append("every folder matches" if outcome["ok"] else
                 "NOT everything matches: see the rows above (run again to retry)")
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------

def start(inventory, fqdn, request, run=subprocess.run):
    """Hand the job to the primary (the deploy file reads the map again there)."""
    result_ = run([str(PYINFRA), "-y", "--limit", fqdn, str(Path(inventory).resolve()),
                   str(START_DEPLOY)], cwd=ROOT, capture_output=True, text=True,
                  env={**os.environ, ENVIRONMENT: json.dumps(request)})
    if result_.returncode != 0:
        said = "\n".join(f"  pyinfra: {line}" for line in
                         (result_.stderr.strip() or result_.stdout.strip()).splitlines()[-5:])
        raise MapError(f"the primary did not start the migration (is this version of mailstack "
                       f"deployed there?)\n{said}")


def follow(inventory, fqdn, progress, popen=subprocess.Popen, attempts=3):
    """The run's statuses as the primary reports them, until it ends; the last one."""
    last = None
    for _ in range(attempts):
        proc = popen([str(PYINFRA), "-y", "--limit", fqdn, str(Path(inventory).resolve()),
                      "exec", "--", f"{PROGRAM} follow"], cwd=ROOT, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True)
        for status in statuses(proc.stdout, fqdn):
            last = status
            progress.update(status)
        proc.wait()
        if last and last.get("state") in DONE:
            return last
        time.sleep(2)
    return last


def migrate(inventory, system, source_url, map_file, as_json=False, out=sys.stdout,
            start_=start, follow_=follow, progress=None):
    """Exit status: 0 when every folder of every mailbox matches, else 1."""
    try:
        source = parse_source(source_url)
        entries = load_map(map_file, system)
    except MapError as e:
        sys.exit(f"mailstack: {e}")
    fqdn = system.primary_mx.fqdn
    run_id = uuid.uuid4().hex
    progress = progress or Progress()
    progress.say(f"mailstack: migrating {len(entries)} mailbox(es) from {source} on {fqdn}")
    try:
        start_(inventory, fqdn, {"map": str(Path(map_file).resolve()), "from": str(source),
                                 "id": run_id})
    except MapError as e:
        sys.exit(f"mailstack: {e}")
    status = follow_(inventory, fqdn, progress)
    if status is None or status.get("state") not in DONE or status.get("state") == "none":
        sys.exit(f"mailstack: lost sight of the migration on {fqdn}; it goes on there: run the "
                 "same command again to follow it (what is copied stays copied)")
    if status.get("id") != run_id:
        progress.say(f"mailstack: {fqdn} was still busy with a migration begun at "
                     f"{status.get('run')}: that is the one shown; run again for this map")
    print(json.dumps(result(status), indent=2) if as_json else report(status), file=out)
    return 0 if result(status)["ok"] and status.get("id") == run_id else 1

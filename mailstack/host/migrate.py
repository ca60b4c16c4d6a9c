"""mailstack-migrate: bring mailboxes over from another provider's IMAP server into
this primary's Dovecot, with Dovecot's own tools (dsync over imapc), and compare
them folder by folder.

    mailstack-migrate start     the job (JSON on stdin) runs in the background
    mailstack-migrate status    where it is (JSON; never a password)
    mailstack-migrate follow    the status every POLL seconds, one JSON line each,
                                until the run ends
    mailstack-migrate run       the run itself, as the unit UNIT (start makes it)

The job: {"host": FQDN, "port": 993, "mailboxes": [{"old": LOGIN, "new": ADDRESS,
"password": ...}]}. `mailstack migrate` on the operator's machine sends it on stdin
through the deploy's connection: a password is never on a command line (sudo logs
those, ps shows them). Here it lives in RUN_DIR (tmpfs, root only) while the run
reads it, and in one small Dovecot configuration per mailbox (doveadm -c) while
that mailbox is copied; both are removed as soon as they have served.

doveadm runs as root and reaches the mail as the mailbox's own user (vmail) from the
userdb. TLS to the old server is verified against the system's trust store, host
name included; nothing here can turn that off.
"""
import argparse
import collections
import datetime
import json
import os
import re
import subprocess
import sys
import time

UNIT = "mailstack-migrate"
PROGRAM = "/usr/local/sbin/mailstack-migrate"
RUN_DIR = "/run/mailstack-migrate"            # secrets: tmpfs, never on a disk
JOB = f"{RUN_DIR}/job.json"
STATE_DIR = "/var/lib/mailstack/migrate"
STATUS = f"{STATE_DIR}/status.json"           # progress and results: no secrets
DOVECOT_CONF = "/etc/dovecot/dovecot.conf"
CA_DIR = "/etc/ssl/certs"
POLL = 2
# The folders mailstack's dovecot.conf creates for every mailbox (auto = subscribe).
# While a mailbox is copied they are not made on the old server by merely looking
# (tests/unit/test_host_migrate.py checks this list against the template).
AUTO_MAILBOXES = ("Drafts", "Sent", "Junk", "Trash", "Archive")
# mailstack's hidden namespace of expunged mail (mailstack-undelete): never compared.
EXPUNGED = ".EXPUNGED/"
# What identifies a message on both sides without reading it: when it arrived (the
# IMAP INTERNALDATE, which the copy keeps) and its size in IMAP terms (CRLF).
FETCH_FIELDS = "mailbox date.received.unixtime size.virtual"

HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
# An old login reaches a Dovecot setting that expands %variables: no % (nor quotes,
# spaces or shell characters).
LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,254}$")
ADDRESS = re.compile(r"^[a-z0-9_+][a-z0-9._+-]{0,63}@[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


class JobError(ValueError):
    pass


def password_problem(password):
    """Why a password cannot be handed to Dovecot, or None."""
    if not isinstance(password, str) or not password:
        return "is empty or not text"
    if len(password) > 1024:
        return "is longer than 1024 characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return "holds a control character (a line break?)"
    return None


def check_job(job):
    """The job as the operator's side sent it; JobError names the field (never a
    password)."""
    if not isinstance(job, dict):
        raise JobError("the job is not a JSON object")
    unknown = set(job) - {"id", "host", "port", "mailboxes"}
    if unknown:
        raise JobError(f"unknown field {sorted(unknown)[0]!r}")
    if not re.match(r"^[0-9a-f]{1,64}$", str(job.get("id", "0"))):
        raise JobError(f"id: {job.get('id')!r} is not a run id")
    if not isinstance(job.get("host"), str) or not HOST.match(job["host"]):
        raise JobError(f"host: {job.get('host')!r} is not a host name")
    if not isinstance(job.get("port"), int) or not 0 < job["port"] < 65536:
        raise JobError(f"port: {job.get('port')!r} is not a port")
    boxes = job.get("mailboxes")
    if not isinstance(boxes, list) or not boxes:
        raise JobError("mailboxes: none given")
    seen = set()
    for i, box in enumerate(boxes):
        if not isinstance(box, dict) or set(box) != {"old", "new", "password"}:
            raise JobError(f"mailboxes[{i}]: needs exactly old, new and password")
        if not isinstance(box["old"], str) or not LOGIN.match(box["old"]):
            raise JobError(f"mailboxes[{i}].old: {box['old']!r} is not a login mailstack accepts")
        if not isinstance(box["new"], str) or not ADDRESS.match(box["new"]):
            raise JobError(f"mailboxes[{i}].new: {box['new']!r} is not an address")
        if box["new"] in seen:
            raise JobError(f"mailboxes[{i}].new: {box['new']} is named twice")
        seen.add(box["new"])
        problem = password_problem(box["password"])
        if problem:
            raise JobError(f"mailboxes[{i}].password (of {box['old']}) {problem}")
    return job


# --- Dovecot ------------------------------------------------------------------

def dovecot_version(run=subprocess.run):
    """"2.3" or "2.4": the installed Dovecot (Debian 12 or 13)."""
    out = run(["dovecot", "--version"], capture_output=True, text=True, check=True).stdout
    return "2.3" if out.startswith("2.3.") else "2.4"


def config_string(value, dovecot):
    """`value` as a quoted Dovecot setting value that reads back exactly as `value`.
    Both releases unescape \\ and \" inside double quotes (and keep # and $ there);
    2.4 then expands %{...} in every string setting, and reads %%{ as a literal %{."""
    if dovecot != "2.3":
        value = value.replace("%{", "%%{")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_version(text):
    """dovecot_config_version of a 2.4 configuration (its first setting)."""
    found = re.search(r"^\s*dovecot_config_version\s*=\s*(\S+)", text, re.M)
    if not found:
        raise ValueError(f"{DOVECOT_CONF} names no dovecot_config_version")
    return found.group(1)


def imapc_config(host, port, login, password, dovecot, version=None):
    """The configuration doveadm reads with -c for one mailbox: the host's own, and
    the old server's IMAPS with this mailbox's login (0600, root only). 2.4 wants
    its dovecot_config_version (`version`, the host's) before anything else."""
    lines = [f"# mailstack-migrate: {login} at {host}; removed when the mailbox is done"]
    if dovecot != "2.3":
        lines.append(f"dovecot_config_version = {version}")
    lines += [f"!include {DOVECOT_CONF}",
             f"imapc_host = {host}",
             f"imapc_port = {port}",
             "imapc_ssl = imaps",
             f"imapc_user = {config_string(login, dovecot)}",
             f"imapc_password = {config_string(password, dovecot)}",
             # Verified against the system's trust store (update-ca-certificates).
             f"ssl_client_ca_dir = {CA_DIR}",
             # Fetch a few messages ahead: the copy waits on the network, not on disk.
             "mail_prefetch_count = 20"]
    if dovecot == "2.3":
        # 2.3 names its verification and asks for the sizes and headers dsync
        # compares (2.4 does both by default, and calls the first
        # ssl_client_require_valid_cert).
        lines += ["imapc_ssl_verify = yes", "imapc_features = rfc822.size fetch-headers"]
    else:
        lines += ["ssl_client_require_valid_cert = yes"]
    lines.append("namespace inbox {")
    for name in AUTO_MAILBOXES:
        lines += [f"  mailbox {name} {{", "    auto = no", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def old_side(dovecot):
    """doveadm options that put a command on the old server (over imapc) instead of
    this host's Maildir."""
    if dovecot == "2.3":
        return ["-o", "mail_location=imapc:"]
    return ["-o", "mail_driver=imapc", "-o", "mail_path="]


def sync_command(conf, address):
    # One-way, from the old server into this one, never deleting here:
    #   doveadm backup -R makes this side an exact copy of the old one: mail that
    #     exists only here (delivered here after the MX switch, filed by the user
    #     meanwhile) is deleted, and changes made here are undone.
    #   doveadm sync -1 -R copies what is new or changed on the old side and keeps
    #     what exists only here; the old side is never written to. Where both sides
    #     gave one UID to different messages it keeps both, under new UIDs (it may
    #     renumber, never lose). Run before the switch and again after it, it moves
    #     only what arrived at the old server in between.
    return ["doveadm", "-c", conf, "sync", "-1", "-R", "-u", address, "imapc:"]


def status_command(address, conf=None, dovecot=None):
    """Messages per folder: here, or with conf and dovecot, at the old server."""
    where = ["-c", conf, *old_side(dovecot)] if conf else []
    return ["doveadm", *where, "-f", "tab", "mailbox", "status", "-u", address, "messages", "*"]


def fetch_command(address, conf=None, dovecot=None):
    """(folder, received, size) of every message: here, or at the old server."""
    where = ["-c", conf, *old_side(dovecot)] if conf else []
    return ["doveadm", *where, "-f", "tab", "fetch", "-u", address, FETCH_FIELDS, "ALL"]


def tab_rows(text, header):
    """Rows of doveadm's tab output, the header line checked and dropped."""
    lines = [line for line in text.splitlines() if line]
    if not lines:
        return []
    if lines[0].split("\t") != header.split():
        raise ValueError(f"unexpected doveadm output: {lines[0][:80]!r}")
    return [line.split("\t") for line in lines[1:]]


def parse_status(text):
    """{folder: messages} from `doveadm -f tab mailbox status ... messages`."""
    return {folder: int(n) for folder, n in tab_rows(text, "mailbox messages")
            if not folder.startswith(EXPUNGED)}


def parse_fetch(text):
    """{folder: Counter of (received, size)} from `doveadm -f tab fetch`."""
    folders = collections.defaultdict(collections.Counter)
    for folder, received, size in tab_rows(text, FETCH_FIELDS):
        if not folder.startswith(EXPUNGED):
            folders[folder][(int(received), int(size))] += 1
    return dict(folders)


def compare(old, new, old_counts=None, new_counts=None):
    """One row per folder: messages at the old server and here; `missing` (old
    messages not here), `duplicated` (old messages here more often than there) and
    `new_here` (messages the old server never had: delivered here since the MX
    switch). A folder that is empty on both sides is no row."""
    old_counts = old_counts or {f: sum(c.values()) for f, c in old.items()}
    new_counts = new_counts or {f: sum(c.values()) for f, c in new.items()}
    rows = []
    for folder in sorted(set(old_counts) | set(new_counts), key=lambda f: (f != "INBOX", f)):
        o, n = old.get(folder, collections.Counter()), new.get(folder, collections.Counter())
        if not old_counts.get(folder) and not new_counts.get(folder):
            continue
        extra = n - o
        rows.append({"folder": folder, "old": old_counts.get(folder, 0),
                     "new": new_counts.get(folder, 0),
                     "missing": sum((o - n).values()),
                     "duplicated": sum(c for k, c in extra.items() if k in o),
                     "new_here": sum(c for k, c in extra.items() if k not in o)})
    return rows


def rows_ok(rows):
    return all(r["missing"] == 0 and r["duplicated"] == 0 for r in rows)


# --- status -------------------------------------------------------------------

def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_json(path, data, mode=0o600):
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_status(path=None):
    try:
        with open(path or STATUS) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def active(run=subprocess.run):
    return run(["systemctl", "is-active", "--quiet", f"{UNIT}.service"]).returncode == 0


def hide(text, secrets):
    """Defence in depth: no password in what is kept or shown, whatever a tool said."""
    for secret in secrets:
        text = text.replace(secret, "********")
    return text


class Run:
    """One run of a job; writes STATUS as it goes."""

    def __init__(self, job, dovecot, version=None, run=subprocess.run, popen=subprocess.Popen,
                 clock=time.monotonic, sleep=time.sleep, status_path=STATUS, run_dir=RUN_DIR):
        self.job, self.dovecot, self.version = job, dovecot, version
        self.run_, self.popen, self.clock, self.sleep = run, popen, clock, sleep
        self.status_path, self.run_dir = status_path, run_dir
        self.status = read_status(status_path) or new_status(job)
        self.secrets = [b["password"] for b in job["mailboxes"]]

    def save(self):
        write_json(self.status_path, self.status)

    def doveadm(self, command):
        result = self.run_(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(self.said(result.stderr) or f"{command[0]} exited {result.returncode}")
        return result.stdout

    def said(self, stderr):
        lines = [line for line in hide(stderr, self.secrets).splitlines() if line.strip()]
        return " / ".join(lines[-3:])

    def mailbox(self, i):
        box, entry = self.job["mailboxes"][i], self.status["mailboxes"][i]
        address = box["new"]
        conf = os.path.join(self.run_dir, f"{i}.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(imapc_config(self.job["host"], self.job["port"], box["old"], box["password"],
                                 self.dovecot, self.version))
        try:
            entry.update(state="counting", started=now())
            self.save()
            if self.run_(["doveadm", "user", address], capture_output=True).returncode != 0:
                raise RuntimeError(f"{address} is no user of this host yet: deploy the data first")
            old_counts = parse_status(self.doveadm(status_command(address, conf, self.dovecot)))
            before = parse_status(self.doveadm(status_command(address)))
            entry.update(state="copying", total=sum(old_counts.values()),
                         before=sum(before.values()), now=sum(before.values()))
            self.save()
            t0 = self.clock()
            rc, stderr = self.copy(conf, address, entry)
            if rc == 2:
                # "Done, but some changes could not be made; running again usually
                # fixes this" (doveadm-sync(1)): the old side changed meanwhile.
                rc, stderr = self.copy(conf, address, entry)
            entry["seconds"] = round(self.clock() - t0, 1)
            entry.update(state="verifying")
            self.save()
            new_counts = parse_status(self.doveadm(status_command(address)))
            old_counts = parse_status(self.doveadm(status_command(address, conf, self.dovecot)))
            rows = compare(parse_fetch(self.doveadm(fetch_command(address, conf, self.dovecot))),
                           parse_fetch(self.doveadm(fetch_command(address))),
                           old_counts, new_counts)
            entry.update(now=sum(new_counts.values()), total=sum(old_counts.values()),
                         copied=sum(new_counts.values()) - entry["before"], folders=rows)
            if rc != 0:
                entry.update(state="failed", error=self.said(stderr) or f"doveadm sync exited {rc}")
            else:
                entry.update(state="done" if rows_ok(rows) else "differs")
        except (RuntimeError, ValueError, OSError) as e:
            entry.update(state="failed", error=hide(str(e), self.secrets))
        finally:
            os.unlink(conf)
            entry["finished"] = now()
            self.save()

    def copy(self, conf, address, entry):
        """doveadm sync, with the progress read from this side's counts meanwhile
        (dsync commits every 100 messages)."""
        err_path = os.path.join(self.run_dir, "sync.err")
        with open(err_path, "w+") as err:
            proc = self.popen(sync_command(conf, address), stdout=subprocess.DEVNULL, stderr=err)
            counted = self.clock()
            while proc.poll() is None:
                self.sleep(0.2)                # its end is seen at once (messages/s)
                if self.clock() - counted < POLL:
                    continue
                counted = self.clock()
                try:
                    entry["now"] = sum(parse_status(self.doveadm(status_command(address))).values())
                    self.save()
                except (RuntimeError, ValueError):
                    pass                       # a count between two commits: next time
            err.seek(0)
            stderr = err.read()
        os.unlink(err_path)
        return proc.returncode, stderr

    def all(self):
        for i in range(len(self.job["mailboxes"])):
            self.mailbox(i)
        self.status.update(state="finished", finished=now())
        self.save()


def new_status(job):
    return {"run": now(), "id": job.get("id"), "state": "running",
            "server": f"{job['host']}:{job['port']}",
            "mailboxes": [{"old": b["old"], "new": b["new"], "state": "waiting"}
                          for b in job["mailboxes"]]}


# --- commands -----------------------------------------------------------------

def start(stdin=sys.stdin, run=subprocess.run):
    """Take the job from stdin and run it in the background (the unit UNIT), unless
    a run is under way: then that one goes on (its status says which it is)."""
    try:
        job = check_job(json.loads(stdin.read()))
    except (ValueError, JobError) as e:
        print(f"mailstack-migrate: {e}", file=sys.stderr)
        return 2
    if active(run):
        print(json.dumps({"running": (read_status() or {}).get("run")}))
        return 0
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    os.chmod(RUN_DIR, 0o700)
    for name in os.listdir(RUN_DIR):          # what a run that died left behind
        os.unlink(os.path.join(RUN_DIR, name))
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    write_json(JOB, job)
    status = new_status(job)
    write_json(STATUS, status)
    run(["systemd-run", f"--unit={UNIT}", "--collect", "--quiet",
         "--property=Type=exec", PROGRAM, "run"], check=True)
    print(json.dumps({"started": status["run"]}))
    return 0


def run_job():
    with open(JOB) as f:
        job = check_job(json.load(f))
    os.unlink(JOB)                             # the passwords now live in this process only
    dovecot = dovecot_version()
    with open(DOVECOT_CONF) as f:
        version = config_version(f.read()) if dovecot != "2.3" else None
    migration = Run(job, dovecot, version)
    try:
        migration.all()
    except Exception as e:                     # recorded for the operator, who reads STATUS
        migration.status.update(state="failed", error=hide(repr(e), migration.secrets))
        migration.save()
    return 0


def follow(out=sys.stdout, sleep=time.sleep, run=subprocess.run, heartbeat=30):
    """The status as it changes (and every `heartbeat` seconds), one JSON line each,
    ending with the run's last; a run that is gone unfinished ends as "stopped"."""
    last, quiet = None, 0
    while True:
        running = active(run)                  # first: a run that ended has written its last
        status = read_status() or {"state": "none"}
        if not running and status.get("state") == "running":
            status = {**status, "state": "stopped"}
        if status != last or quiet >= heartbeat:
            print(json.dumps(status), file=out, flush=True)
            last, quiet = status, 0
        if not running:
            return 0
        sleep(POLL)
        quiet += POLL


def main(argv=None):
    p = argparse.ArgumentParser(prog="mailstack-migrate", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["start", "run", "status", "follow"])
    args = p.parse_args(argv)
    if args.command == "start":
        return start()
    if args.command == "run":
        return run_job()
    if args.command == "status":
        print(json.dumps(read_status() or {"state": "none"}))
        return 0
    return follow()

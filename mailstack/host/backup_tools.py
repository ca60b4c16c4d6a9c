"""The backup tools mailstack drives: one adapter per tool (restic, Borg).

Everything that differs between the tools is here: the Debian packages, the
append-only command a backup host forces on a client's SSH key, the repository
URLs an operator may give, and every command line. The hosts' programs
(mailstack-backup, mailstack-backup-server) and the deploy (roles/backup_*.py)
choose a tool once, with TOOLS[name], and use only this interface.
"""
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from .mail import auto_message

REPOSITORIES = "/srv/mailstack-backup"   # on a backup host: <client fqdn>/<tool>
CLIENT_CONFIG = "/etc/mailstack/backup"  # on a backed-up host: passphrase, SSH key, settings
SERVER_CONFIG = "/etc/mailstack-backup"  # on a backup host: clients' passphrases, clients.json
DUMPS = "/var/backups/mailstack"         # consistent copies of databases, made before each run
STATE = "/var/lib/mailstack-backup"      # on a backed-up host: status, Borg's own files
CACHE = "/var/cache/mailstack-backup"
# Dovecot's lock files (dovecot-uidlist.lock, dovecot-vsize.lock<random>, ...) come
# and go while a backup reads the mailboxes and hold nothing to restore: restic fails
# a run on a file that vanished between listing and reading.
LOCK_FILES = "dovecot*.lock*"
# An offboarded mailbox's archive (mailstack-backup archive-mailbox): a snapshot of
# its home alone, named for the address. Restores of a host or a mailbox never take
# one for "the newest", and the retention keeps each (mailstack-backup-server forget
# removes one).
ARCHIVE_TAG = "mailstack-offboarded"     # restic: with the address as a second tag
ARCHIVE_PREFIX = "offboarded-"           # Borg: offboarded-<address>_<time> (no _ in a domain)


class Failure(Exception):
    """A tool failed; the message is one line for the operator."""


@dataclass
class Repository:
    """A repository as one host reaches it: a local path (the backup host's own
    view), a backup host over SSH (`login` + `path`), or an operator's URL."""
    name: str                          # for messages: the backup host or repository name
    path: str | None = None            # on this host, or on `login`'s host
    login: str | None = None           # user@address of a backup host
    url: str | None = None             # an operator's repository
    ssh: list = field(default_factory=list)      # ssh command with this host's backup key
    environment: dict = field(default_factory=dict)  # credentials for `url`
    cache: bool = True
    # The operator reaching a backup host with full access (backup.prune_from:
    # operator): the repository server runs there behind this command (e.g. "sudo -u
    # bk-mx1"), as the client's account, and not append-only.
    remote_as: str | None = None


def run_tool(argv, env, cwd=None):
    return subprocess.run(argv, env={**os.environ, **env}, cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def explain(name, stderr):
    """One clear line for the operator from a tool's error output."""
    text = stderr.strip()
    if any(s in text for s in ("wrong password", "passphrase supplied", "passphrase is incorrect")):
        return f"the passphrase does not open the repository on {name} (wrong passphrase)"
    lines = [line for line in text.splitlines() if line.strip()]
    return f"{name}: {' / '.join(lines[-3:]) or 'failed'}"


def parse_time(text, local=False):
    """A tool's time stamp as an aware UTC datetime (Borg's are local, naive)."""
    text = text.replace("Z", "+00:00")
    if "." in text:
        # Nanoseconds (restic): keep microseconds, then the zone.
        m = re.fullmatch(r"([^.]+)\.(\d+)(.*)", text)
        text = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    t = datetime.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.astimezone() if local else t.replace(tzinfo=datetime.timezone.utc)
    return t.astimezone(datetime.timezone.utc)


def alert_mail(host, postmaster, subject, body):
    """An alert for the postmaster from this host's backup program."""
    return auto_message(f"mailstack-backup <root@{host}>", postmaster, subject, body, host)


def journal(unit, lines=20):
    return subprocess.run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager",
                           "-o", "short-iso"], capture_output=True, text=True).stdout


def main_with_settings(prog, parser, argv, settings_file):
    """A backup program's main: parse argv, load its settings (JSON, from the
    deploy), run the subcommand; a Failure ends it with one line."""
    args = parser.parse_args(argv)
    with open(settings_file) as f:
        settings = json.load(f)
    try:
        args.func(settings, args)
    except Failure as e:
        sys.exit(f"{prog}: {e}")


def repository_path(fqdn, tool):
    """A client's repository on a backup host."""
    return f"{REPOSITORIES}/{fqdn}/{tool}"


class Tool:
    name = ""
    packages = ()         # Debian packages a backed-up host needs
    server_packages = ()  # Debian packages a backup host needs
    url = ""              # regular expression of the repository URLs it takes

    def __init__(self, repository: Repository, passphrase_file: str, run=run_tool):
        self.repo, self.passphrase, self.run = repository, passphrase_file, run

    def call(self, *args, cwd=None, check=True):
        result = self.run(self.argv(*args), self.env(), cwd)
        if check and result.returncode != 0:
            raise Failure(explain(self.repo.name, result.stderr))
        return result

    @staticmethod
    def serve(path):
        """The only command a client's SSH key may run on a backup host."""
        raise NotImplementedError

    def rollback(self, to):
        raise Failure(f"rollback is for Borg ({self.name} refuses deletions outright)")


class Restic(Tool):
    """restic; a backup host is reached as REST over SSH (rclone, append-only)."""
    name = "restic"
    packages = ("restic",)
    server_packages = ("restic", "rclone")
    url = r"(s3:|sftp:|rest:|b2:|azure:|gs:|swift:|rclone:|/)\S+"

    @staticmethod
    def serve(path):
        return f"rclone serve restic --stdio --append-only --config '' {path}"

    def env(self):
        env = {"RESTIC_PASSWORD_FILE": self.passphrase, **self.repo.environment}
        if self.repo.cache:
            env["RESTIC_CACHE_DIR"] = f"{CACHE}/restic"
        return env

    def argv(self, *args):
        r = self.repo
        if r.login and r.remote_as:
            # restic appends the path to rclone.args; the remote shell loses empty
            # arguments, hence /dev/null for "no rclone configuration".
            where = ["-r", f"rclone:{r.path}",
                     "-o", "rclone.program=" + " ".join(r.ssh + [r.login]),
                     "-o", f"rclone.args={r.remote_as} rclone serve restic --stdio --config /dev/null"]
        elif r.login:
            where = ["-r", "rclone:mailstack",
                     "-o", "rclone.program=" + " ".join(r.ssh + [r.login])]
        elif r.url:
            m = re.fullmatch(r"sftp:([^/:]+):(.*)", r.url)
            # SFTP with this host's backup key (sftp:user@host:/path).
            sftp = ["-o", "sftp.command=" + " ".join(r.ssh + [m.group(1), "-s", "sftp"])] \
                if m and r.ssh else []
            where = ["-r", r.url, *sftp]
        else:
            where = ["-r", r.path]
        return ["restic", *where, *([] if r.cache else ["--no-cache"]), *args]

    def ensure(self):
        result = self.call("cat", "config", check=False)
        if result.returncode != 0:
            if "Is there a repository" not in result.stderr and "config: " not in result.stderr:
                raise Failure(explain(self.repo.name, result.stderr))
            self.call("init")

    def backup(self, host, paths):
        self.call("backup", "--host", host, "--tag", "mailstack", "--exclude", LOCK_FILES, *paths)

    def archive(self, host, address, paths):
        self.call("backup", "--host", host, "--tag", ARCHIVE_TAG, "--tag", address,
                  "--exclude", LOCK_FILES, *paths)

    def snapshots(self):
        found = json.loads(self.call("snapshots", "--json").stdout or "[]")
        return [{"id": s["short_id"], "time": parse_time(s["time"]), "raw_time": s["time"],
                 "arrived": self.arrival(s["id"]), "archive": self.archived(s.get("tags") or [])}
                for s in found]

    @staticmethod
    def archived(tags):
        """The address an offboarding archive holds, else None."""
        if ARCHIVE_TAG in tags:
            return next((t for t in tags if t != ARCHIVE_TAG), "")
        return None

    def arrival(self, full_id):
        """When the snapshot reached this (the backup) host: its file's time, which
        the backup host's own REST server sets, not the client. None elsewhere."""
        if self.repo.login or self.repo.url:
            return None
        try:
            stamp = os.stat(os.path.join(self.repo.path, "snapshots", full_id)).st_mtime
        except (OSError, TypeError):
            return None
        return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)

    def forget(self, ids):
        """Remove these snapshots and the data only they use."""
        self.call("forget", "--prune", *ids)

    def restore(self, snapshot, into, paths=()):
        self.call("restore", snapshot, "--target", into,
                  *[a for p in paths for a in ("--include", p)])

    def prune(self, keep, host=None):
        self.call("forget", "--prune", *(["--host", host] if host else []),
                  *[f"--keep-{k}={v}" for k, v in keep.items()], "--keep-tag", ARCHIVE_TAG)

    def check(self):
        self.call("check", "--read-data-subset=10%")

    def files(self):
        """The paths in the newest snapshot of the host (not an archive)."""
        return self.call("ls", "latest", "--tag", "mailstack").stdout.splitlines()[1:]


class Borg(Tool):
    """Borg; a backup host is reached over SSH (`borg serve --append-only`)."""
    name = "borg"
    packages = ("borgbackup",)
    server_packages = ("borgbackup",)
    url = r"ssh://\S+"

    @staticmethod
    def serve(path):
        return f"borg serve --append-only --restrict-to-repository {path}"

    def env(self):
        env = {"BORG_PASSCOMMAND": f"cat {self.passphrase}", "BORG_BASE_DIR": f"{STATE}/borg",
               **self.repo.environment}
        if self.repo.ssh:
            env["BORG_RSH"] = " ".join(self.repo.ssh)
        if self.repo.cache:
            env["BORG_CACHE_DIR"] = f"{CACHE}/borg"
        return env

    @property
    def location(self):
        r = self.repo
        return r.url or (f"ssh://{r.login}{r.path}" if r.login else r.path)

    def argv(self, *args):
        if self.repo.remote_as:
            return ["borg", "--remote-path", f"{self.repo.remote_as} borg", *args]
        return ["borg", *args]

    def ensure(self):
        result = self.call("info", self.location, check=False)
        if result.returncode != 0:
            # The backup host makes the directory; borg init refuses one that is not empty.
            if "does not exist" not in result.stderr and "is not a valid repository" not in result.stderr:
                raise Failure(explain(self.repo.name, result.stderr))
            self.call("init", "--encryption", "repokey-blake2", self.location)

    def backup(self, host, paths):
        result = self.call("create", "--compression", "zstd,3", "--one-file-system",
                           "--exclude", f"*/{LOCK_FILES}",
                           f"{self.location}::{host}-{{utcnow:%Y-%m-%dT%H:%M:%S.%f}}", *paths,
                           check=False)
        # Exit 1: the archive is written, with remarks (most often a file that changed
        # while it was read, like rspamd's statistics); said, not a failed backup.
        if result.returncode == 1:
            for line in result.stderr.strip().splitlines():
                print(f"mailstack-backup: {self.repo.name}: archive written; borg: {line}",
                      file=sys.stderr)
        elif result.returncode != 0:
            raise Failure(explain(self.repo.name, result.stderr))

    def archive(self, host, address, paths):
        self.call("create", "--compression", "zstd,3", "--one-file-system",
                  "--exclude", f"*/{LOCK_FILES}",
                  f"{self.location}::{ARCHIVE_PREFIX}{address}_{{utcnow:%Y-%m-%dT%H:%M:%S.%f}}", *paths)

    @staticmethod
    def archived(name):
        if name.startswith(ARCHIVE_PREFIX):
            return name[len(ARCHIVE_PREFIX):].rpartition("_")[0]
        return None

    def archives(self):
        return json.loads(self.call("list", "--json", self.location).stdout)["archives"]

    def snapshots(self):
        # Borg keeps no server-side time per archive: the backup host dates an archive
        # when it first sees it (backup_server.py).
        return [{"id": a["name"], "time": parse_time(a["start"], local=True), "raw_time": a["start"],
                 "arrived": None, "archive": self.archived(a["name"])} for a in self.archives()]

    def forget(self, ids):
        """Remove these archives, then free their space."""
        self.call("delete", self.location, *ids)
        self.call("compact", self.location)
        if self.repo.path and not (self.repo.login or self.repo.url):
            self.log_commit()

    def log_commit(self):
        """Borg logs its transactions only in append-only mode (the clients' writes):
        note this host's own commit there too, in Borg's format, so that a rollback
        keeps what the prune left (compaction moves live data to new segments)."""
        repo = self.repo.path
        segments = [int(os.path.basename(p)) for p in glob.glob(os.path.join(repo, "data", "*", "*"))
                    if os.path.basename(p).isdigit()]
        if not segments:
            return
        log = os.path.join(repo, "transactions")
        owner = os.stat(os.path.join(repo, "config"))
        stamp = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat()
        with open(log, "a") as f:
            f.write(f"transaction {max(segments)}, UTC time {stamp}\n")
        os.chown(log, owner.st_uid, owner.st_gid)

    def restore(self, snapshot, into, paths=()):
        self.call("extract", f"{self.location}::{snapshot}", *[p.lstrip("/") for p in paths],
                  cwd=into)

    def prune(self, keep, host=None):
        # The host's own archives only: an offboarding archive stays.
        self.call("prune", *[f"--keep-{k}={v}" for k, v in keep.items()],
                  *(["--glob-archives", f"{host}-*"] if host else []), self.location)
        self.call("compact", self.location)

    def check(self):
        self.call("check", self.location)

    def files(self):
        newest = [a["name"] for a in self.archives() if self.archived(a["name"]) is None][-1]
        listing = self.call("list", "--format", "{path}{NL}", f"{self.location}::{newest}").stdout
        return ["/" + p for p in listing.splitlines()]

    def rollback(self, to):
        """Borg's documented recovery for append-only repositories: drop every
        transaction after the last one committed at or before `to` (naive UTC).
        Works on the repository's own directory (the backup host)."""
        good = None
        with open(os.path.join(self.repo.path, "transactions")) as f:
            for line in f:
                m = re.match(r"transaction (\d+), UTC time (\S+)", line)
                if m and datetime.datetime.fromisoformat(m.group(2)) <= to:
                    good = int(m.group(1))
        if good is None:
            raise Failure(f"no transaction of {self.repo.name} at or before {to.isoformat()}")
        dropped = 0
        for path in glob.glob(os.path.join(self.repo.path, "data", "*", "*")) + \
                glob.glob(os.path.join(self.repo.path, "*.[0-9]*")):
            number = os.path.basename(path).rsplit(".", 1)[-1]
            if number.isdigit() and int(number) > good:
                os.remove(path)
                dropped += 1
        # This host's own Borg remembers the newer manifest it saw (verifying) and
        # would take the rolled-back repository for an attack: it forgets it.
        with open(os.path.join(self.repo.path, "config")) as f:
            repo_id = re.search(r"^id = (\w+)", f.read(), re.M).group(1)
        base = self.env()["BORG_BASE_DIR"]
        for kept in (os.path.join(base, ".config", "borg", "security", repo_id),
                     os.path.join(base, ".cache", "borg", repo_id)):
            shutil.rmtree(kept, ignore_errors=True)
        return good, dropped


TOOLS = {tool.name: tool for tool in (Restic, Borg)}

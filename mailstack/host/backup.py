"""mailstack-backup: this host's encrypted backups (restic or Borg) to the backup hosts.

    mailstack-backup run                      dump databases, back up to every target
    mailstack-backup status                   last success and failure (JSON)
    mailstack-backup snapshots                snapshots on a target (JSON)
    mailstack-backup archive-mailbox ADDRESS  back up this mailbox alone, named for its address,
                                              to every target (offboarding); kept by the
                                              retention until the operator forgets it
    mailstack-backup restore-mailbox ADDRESS [--as-of TIME]
                                              bring back a mailbox's mail and folders as of
                                              TIME (ISO 8601), keeping what arrived since
    mailstack-backup restore-host [--snapshot ID]
                                              put this host's saved state back (after a
                                              normal deploy on a replacement machine)
    mailstack-backup extract --into DIR [--snapshot ID] [PATH...]
                                              copy saved files into DIR, touching nothing else
    mailstack-backup notify-failure           mail the postmaster (systemd OnFailure)
Restores take --target HOST and --passphrase-file FILE.

This host may add snapshots, never remove one: the backup hosts serve its
repository append-only and prune it themselves. Settings: CLIENT_CONFIG/settings.json,
written by the deploy (mailstack/backup.py).
"""
import argparse
import datetime
import glob
import grp
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from .backup_tools import (CLIENT_CONFIG, DUMPS, STATE, TOOLS, Failure, Repository, alert_mail,
                           journal, main_with_settings, parse_time)
from .mail import send
from .upgrade import SIEVE_BINARIES, release

SETTINGS = f"{CLIENT_CONFIG}/settings.json"
PASSPHRASE = f"{CLIENT_CONFIG}/passphrase"
KEY = f"{CLIENT_CONFIG}/id_ed25519"
KNOWN_HOSTS = f"{CLIENT_CONFIG}/known_hosts"
STATUS = f"{STATE}/status.json"
# Where the node exporter reads metrics written by programs (its textfile collector).
METRICS = "/var/lib/prometheus/node-exporter/mailstack_backup.prom"
ROUNDCUBE_SQLITE = "/var/lib/dbconfig-common/sqlite3/roundcube/roundcube"
REDIS_RDB = "/var/lib/redis/dump.rdb"
# Stopped while a host's state is put back, started again in this order (settings
# written before Debian 13 support name no services: these were Debian 12's).
SERVICES = ["redis-server", "rspamd", "dovecot", "postfix", "php8.2-fpm", "nginx", "knot"]


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def ssh(host):
    # The backup host's key is learnt on first contact and pinned from then on.
    return ["ssh", "-i", KEY, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"HostKeyAlias={host}", "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]


def environment(path):
    """KEY=VALUE lines of a repository's credentials file (e.g. for S3)."""
    if not path:
        return {}
    with open(path) as f:
        pairs = [line.strip().split("=", 1) for line in f]
    return {k.removeprefix("export ").strip(): v.strip().strip("'\"") for k, v in
            (p for p in pairs if len(p) == 2 and not p[0].startswith("#"))}


def repository(target):
    """How this host reaches one target of settings.json."""
    if target.get("url"):
        return Repository(target["host"], url=target["url"], ssh=ssh(target["host"]),
                          environment=environment(target.get("environment")))
    return Repository(target["host"], path=target["repository"], ssh=ssh(target["host"]),
                      login=f"{target['user']}@{target['address']}")


def tool_for(settings, target, passphrase=PASSPHRASE):
    return TOOLS[settings["tool"]](repository(target), passphrase)


def chosen_tool(settings, args):
    """The tool for the target a restore names (default: the first backup host)."""
    targets = {t["host"]: t for t in settings["targets"]}
    name = getattr(args, "target", None) or settings["targets"][0]["host"]
    if name not in targets:
        raise Failure(f"no target {name} (targets: {', '.join(targets)})")
    return tool_for(settings, targets[name], getattr(args, "passphrase_file", None) or PASSPHRASE)


# --- backup ---------------------------------------------------------------------------

def dump(settings):
    """Consistent copies of the databases, saved with the files."""
    os.makedirs(DUMPS, mode=0o700, exist_ok=True)
    database = settings.get("roundcube_database")
    if database == "sqlite" and os.path.exists(ROUNDCUBE_SQLITE):
        with sqlite3.connect(ROUNDCUBE_SQLITE) as src, \
                sqlite3.connect(f"{DUMPS}/roundcube.sqlite.new") as dst:
            src.backup(dst)
        os.replace(f"{DUMPS}/roundcube.sqlite.new", f"{DUMPS}/roundcube.sqlite")
    elif database == "postgresql":
        with open(f"{DUMPS}/roundcube.pgdump.new", "wb") as out:
            subprocess.run(["runuser", "-u", "postgres", "--", "pg_dump", "-Fc", "roundcube"],
                           stdout=out, check=True)
        os.replace(f"{DUMPS}/roundcube.pgdump.new", f"{DUMPS}/roundcube.pgdump")
    # Owners by name: a replacement machine may number its system users otherwise.
    accounts = {"users": {p.pw_uid: p.pw_name for p in pwd.getpwall()},
                "groups": {g.gr_gid: g.gr_name for g in grp.getgrall()}}
    with open(f"{DUMPS}/accounts.json", "w") as f:
        json.dump(accounts, f)
    # The release the state was saved on: a restore onto another one keeps the
    # configuration the deploy rendered for it.
    shutil.copyfile("/etc/os-release", f"{DUMPS}/os-release")
    if shutil.which("redis-cli"):
        # rspamd's Bayes data and greylisting state: a fresh snapshot by redis itself
        # (also on a new host whose redis has never written one).
        subprocess.run(["redis-cli", "BGSAVE"], check=True, capture_output=True)
        for _ in range(600):
            info = subprocess.run(["redis-cli", "INFO", "persistence"], check=True,
                                  capture_output=True, text=True).stdout
            if "rdb_bgsave_in_progress:0" in info:
                break
            time.sleep(0.1)
        if "rdb_last_bgsave_status:ok" not in info:
            raise OSError("redis could not save its data")
        shutil.copyfile(REDIS_RDB, f"{DUMPS}/redis.rdb")


def read_status():
    try:
        with open(STATUS) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"targets": {}}


def write_status(status):
    os.makedirs(STATE, exist_ok=True)
    with open(f"{STATUS}.new", "w") as f:
        json.dump(status, f, indent=1, sort_keys=True)
    os.replace(f"{STATUS}.new", STATUS)
    write_metrics(status)


def write_metrics(status):
    """The last success and failure as metrics for Prometheus, where the host runs
    its node exporter (roles/metrics.py reads METRICS' directory)."""
    if not os.path.isdir(os.path.dirname(METRICS)):
        return
    lines = []
    for name in ("last_success", "last_failure"):
        if status.get(name):
            stamp = datetime.datetime.fromisoformat(status[name]).timestamp()
            lines += [f"# TYPE mailstack_backup_{name}_timestamp_seconds gauge",
                      f"mailstack_backup_{name}_timestamp_seconds {stamp:.0f}"]
    with open(f"{METRICS}.new", "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.chmod(f"{METRICS}.new", 0o644)
    os.replace(f"{METRICS}.new", METRICS)


def run(settings, args):
    status = read_status()
    started = now().isoformat(timespec="seconds")
    errors = []
    try:
        dump(settings)
    except (OSError, subprocess.CalledProcessError, sqlite3.Error) as e:
        errors.append(f"database dump: {e}")
    paths = [p for p in settings["paths"] if os.path.exists(p)]
    for target in settings["targets"] if not errors else []:
        t = status["targets"].setdefault(target["host"], {})
        t["last_attempt"] = started
        try:
            backup = tool_for(settings, target)
            backup.ensure()
            backup.backup(settings["host"], paths)
            if target.get("keep"):
                # The operator's repository: ours to prune.
                backup.prune(target["keep"], host=settings["host"])
            t["last_success"] = now().isoformat(timespec="seconds")
            t.pop("last_error", None)
        except Failure as e:
            t["last_error"] = str(e)
            errors.append(str(e))
    status.update(tool=settings["tool"], last_attempt=started)
    if errors:
        status.update(last_failure=started, last_error="; ".join(errors))
    else:
        status.update(last_success=now().isoformat(timespec="seconds"))
        status.pop("last_error", None)
    write_status(status)
    if errors:
        sys.exit("mailstack-backup: backup failed: " + "; ".join(errors))
    print(f"mailstack-backup: {len(paths)} paths saved to {len(settings['targets'])} target(s)")


def archive_mailbox(settings, args):
    """An offboarded person's mail, saved on its own to every target before the
    mailbox goes: a snapshot of the mailbox's home named for its address."""
    home = mailbox_home(args.address)
    saved = []
    for target in settings["targets"]:
        backup = tool_for(settings, target)
        backup.ensure()
        backup.archive(settings["host"], args.address, [home])
        archive = [s for s in backup.snapshots() if s.get("archive") == args.address]
        if not archive:
            raise Failure(f"{target['host']}: no archive of {args.address} after the backup")
        newest = max(archive, key=lambda s: s["time"])
        saved.append({"target": target["host"], "snapshot": newest["id"],
                      "time": newest["time"].isoformat()})
    print(json.dumps({"mailbox": args.address, "home": home, "archives": saved}))


def failure_mail(settings, status, log):
    host = settings["host"]
    return alert_mail(
        host, settings["postmaster"], f"Backup of {host} failed",
        f"The backup of {host} failed at {status.get('last_failure', '?')}:\n\n"
        f"  {status.get('last_error', 'see the log below')}\n\n"
        f"Last successful backup: {status.get('last_success', 'never')}\n\n{log}")


def notify_failure(settings, args):
    send(failure_mail(settings, read_status(), journal("mailstack-backup.service")))


def print_status(settings, args):
    print(json.dumps(read_status(), indent=1, sort_keys=True))


def snapshots(settings, args):
    found = chosen_tool(settings, args).snapshots()
    print(json.dumps([{"id": s["id"], "time": s["time"].isoformat(),
                       **({"archive": s["archive"]} if s.get("archive") is not None else {})}
                      for s in found], indent=1))


def pick(found, name, as_of=None, snapshot=None):
    """The snapshot a restore uses: by id, the newest at or before `as_of`, or the
    newest. An offboarding archive holds one mailbox alone: only by its id."""
    found = sorted(found, key=lambda s: s["time"])
    if snapshot:
        found = [s for s in found if s["id"] == snapshot]
    else:
        limit = parse_time(as_of) if as_of else None
        found = [s for s in found if s.get("archive") is None and (not limit or s["time"] <= limit)]
    if not found:
        which = f"as of {as_of}" if as_of else snapshot if snapshot else "at all"
        raise Failure(f"no snapshot {which} on {name}")
    return found[-1]


# --- restore --------------------------------------------------------------------------

def mailbox_home(address):
    result = subprocess.run(["doveadm", "user", "-f", "home", address], capture_output=True,
                            text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise Failure(f"no mailbox {address} on this host")
    return result.stdout.strip()


def merge_maildir(saved, live, uid, gid):
    """Copy into `live` every message and folder of `saved` it lacks; nothing in
    `live` is removed or changed. Messages are matched by their Maildir base name."""
    restored, folders = 0, []
    # INBOX is the Maildir itself; other folders are its ".Name" directories (Maildir++).
    pairs = [(saved, live)] + [(os.path.join(saved, f), os.path.join(live, f))
                               for f in sorted(os.listdir(saved))
                               if f.startswith(".") and os.path.isdir(os.path.join(saved, f, "cur"))]
    for src, dst in pairs:
        if not os.path.isdir(dst):
            folders.append("INBOX" if dst == live else os.path.basename(dst).lstrip("."))
        have = set()
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dst, sub), exist_ok=True)
            os.chown(os.path.join(dst, sub), uid, gid)
            have |= {name.split(":")[0] for name in os.listdir(os.path.join(dst, sub))}
        os.chown(dst, uid, gid)
        if os.path.exists(os.path.join(src, "maildirfolder")) and \
                not os.path.exists(os.path.join(dst, "maildirfolder")):
            shutil.copy2(os.path.join(src, "maildirfolder"), os.path.join(dst, "maildirfolder"))
            os.chown(os.path.join(dst, "maildirfolder"), uid, gid)
        for sub in ("cur", "new"):
            for name in os.listdir(os.path.join(src, sub)) if os.path.isdir(os.path.join(src, sub)) else []:
                if name.split(":")[0] not in have:
                    target = os.path.join(dst, "cur", name if ":" in name else name + ":2,")
                    shutil.copy2(os.path.join(src, sub, name), target)
                    os.chown(target, uid, gid)
                    restored += 1
    # Restored folders are subscribed again.
    subscriptions = [os.path.join(d, "subscriptions") for d in (saved, live)]
    if os.path.exists(subscriptions[0]):
        lines = []
        for path in reversed(subscriptions):
            if os.path.exists(path):
                with open(path) as f:
                    lines += [line for line in f.read().splitlines() if line not in lines]
        with open(subscriptions[1], "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chown(subscriptions[1], uid, gid)
    return restored, folders


def restore_mailbox(settings, args):
    backup = chosen_tool(settings, args)
    home = mailbox_home(args.address)
    snapshot = pick(backup.snapshots(), backup.repo.name, as_of=args.as_of)
    owner = pwd.getpwnam("vmail")
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="mailstack-restore-") as tmp:
        backup.restore(snapshot["id"], tmp, [f"{home}/Maildir"])
        saved = os.path.join(tmp, home.lstrip("/"), "Maildir")
        if not os.path.isdir(saved):
            raise Failure(f"snapshot {snapshot['id']} holds no mail for {args.address}")
        os.makedirs(f"{home}/Maildir", exist_ok=True)
        restored, folders = merge_maildir(saved, f"{home}/Maildir", owner.pw_uid, owner.pw_gid)
    subprocess.run(["doveadm", "force-resync", "-u", args.address, "*"], check=True)
    subprocess.run(["doveadm", "quota", "recalc", "-u", args.address], check=True)
    print(json.dumps({"mailbox": args.address, "snapshot": snapshot["id"],
                      "snapshot_time": snapshot["time"].isoformat(),
                      "messages_restored": restored, "folders_restored": folders}))


def extract(settings, args):
    backup = chosen_tool(settings, args)
    snapshot = pick(backup.snapshots(), backup.repo.name, snapshot=args.snapshot)
    os.makedirs(args.into, exist_ok=True)
    backup.restore(snapshot["id"], args.into, args.paths)
    print(json.dumps({"snapshot": snapshot["id"], "into": args.into}))


def systemctl(action, units):
    present = [u for u in units if subprocess.run(
        ["systemctl", "cat", f"{u}.service"], capture_output=True).returncode == 0]
    if present:
        subprocess.run(["systemctl", action, *present], check=True)


def rendered_by_deploy(path):
    """Configuration the deploy writes for the Debian release it finds (certificates
    under /etc/letsencrypt are state, not configuration)."""
    return path.startswith("/etc/") and path != "/etc/letsencrypt"


def restore_host(settings, args):
    backup = chosen_tool(settings, args)
    snapshot = pick(backup.snapshots(), backup.repo.name, snapshot=args.snapshot)
    paths = settings["paths"]
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="mailstack-restore-") as tmp:
        backup.restore(snapshot["id"], tmp, paths)
        # Saved on another release (Debian 12's state onto a new Debian 13 machine):
        # its configuration would not run here (Dovecot 2.3's syntax, rspamd 3.4's
        # stock files); the deploy already rendered this release's.
        saved_file = os.path.join(tmp, DUMPS.lstrip("/"), "os-release")
        saved = release(saved_file) if os.path.exists(saved_file) else None
        saved_on_other = bool(saved) and saved != release()
        if saved_on_other:
            kept = [p for p in paths if rendered_by_deploy(p)]
            paths = [p for p in paths if p not in kept]
            print(f"mailstack-backup: saved on {saved}, restored onto {release()}: "
                  f"this host's configuration kept ({', '.join(kept)})", file=sys.stderr)
        services = settings.get("services", SERVICES)
        systemctl("stop", list(reversed(services)))
        try:
            # Each saved directory replaces the live one whole: state the replacement
            # machine's deploy made afresh (DKIM keys, certificates) gives way.
            renumber(tmp)
            for path in paths:
                saved = os.path.join(tmp, path.lstrip("/"))
                if os.path.exists(saved):
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    shutil.move(saved, path)
            if saved_on_other:
                # Sieve binaries compiled by the other release's Pigeonhole: Dovecot
                # compiles the scripts again on first use (as the upgrade has it).
                # rspamd's compiled hyperscan caches likewise: its version refuses them.
                for pattern in [*SIEVE_BINARIES, "/var/lib/rspamd/*.hs*"]:
                    for binary in glob.glob(pattern):
                        os.remove(binary)
            load_dumps(settings)
        finally:
            systemctl("start", services)
    print(json.dumps({"host": settings["host"], "snapshot": snapshot["id"],
                      "snapshot_time": snapshot["time"].isoformat(), "paths": paths}))


def renumber(tree):
    """Give restored files the owners they had by name on the saved host."""
    try:
        with open(os.path.join(tree, DUMPS.lstrip("/"), "accounts.json")) as f:
            saved = json.load(f)
    except OSError:
        return
    uids = {int(n): pwd.getpwnam(name).pw_uid for n, name in saved["users"].items()
            if name in {p.pw_name for p in pwd.getpwall()}}
    gids = {int(n): grp.getgrnam(name).gr_gid for n, name in saved["groups"].items()
            if name in {g.gr_name for g in grp.getgrall()}}
    if all(k == v for k, v in uids.items()) and all(k == v for k, v in gids.items()):
        return
    for root, dirs, names in os.walk(tree):
        for name in dirs + names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            os.lchown(path, uids.get(st.st_uid, st.st_uid), gids.get(st.st_gid, st.st_gid))


def load_dumps(settings):
    database = settings.get("roundcube_database")
    if database == "sqlite" and os.path.exists(f"{DUMPS}/roundcube.sqlite"):
        st = os.stat(ROUNDCUBE_SQLITE)
        shutil.copyfile(f"{DUMPS}/roundcube.sqlite", ROUNDCUBE_SQLITE)
        os.chown(ROUNDCUBE_SQLITE, st.st_uid, st.st_gid)
    elif database == "postgresql" and os.path.exists(f"{DUMPS}/roundcube.pgdump"):
        subprocess.run(["systemctl", "start", "postgresql"], check=True)
        subprocess.run(["runuser", "-u", "postgres", "--", "pg_restore", "--clean", "--if-exists",
                        "--no-owner", "--role=roundcube", "-d", "roundcube",
                        f"{DUMPS}/roundcube.pgdump"], check=True)
    if os.path.exists(f"{DUMPS}/redis.rdb") and os.path.isdir(os.path.dirname(REDIS_RDB)):
        # Owned like redis's directory: a new host's redis may not have a dump yet.
        st = os.stat(os.path.dirname(REDIS_RDB))
        shutil.copyfile(f"{DUMPS}/redis.rdb", REDIS_RDB)
        os.chown(REDIS_RDB, st.st_uid, st.st_gid)


def parser():
    p = argparse.ArgumentParser(prog="mailstack-backup")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run").set_defaults(func=run)
    sub.add_parser("status").set_defaults(func=print_status)
    sub.add_parser("notify-failure").set_defaults(func=notify_failure)
    s = sub.add_parser("archive-mailbox")
    s.set_defaults(func=archive_mailbox)
    s.add_argument("address")
    for name, func in (("snapshots", snapshots), ("restore-mailbox", restore_mailbox),
                       ("restore-host", restore_host), ("extract", extract)):
        s = sub.add_parser(name)
        s.set_defaults(func=func)
        s.add_argument("--target", help="backup host (default: the first)")
        s.add_argument("--passphrase-file", help="the repository passphrase (default: this host's)")
        if name == "restore-mailbox":
            s.add_argument("address")
            s.add_argument("--as-of", help="newest snapshot at or before this time (ISO 8601)")
        if name in ("restore-host", "extract"):
            s.add_argument("--snapshot", help="snapshot id (default: the newest)")
        if name == "extract":
            s.add_argument("--into", required=True)
            s.add_argument("paths", nargs="*")
    return p


def main(argv=None, settings_file=SETTINGS):
    main_with_settings("mailstack-backup", parser(), argv, settings_file)

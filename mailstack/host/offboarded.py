"""mailstack-offboarded: the mail of offboarded people on the primary (mailstack
mailbox offboard / restore, see README "Offboarding a person").

    mailstack-offboarded apply            move each offboarded mailbox's home aside, and
                                          each restored one's back (the deploy runs it)
    mailstack-offboarded expire           delete what was kept aside past its keep_until
                                          (mailstack-offboarded.timer, daily)
    mailstack-offboarded export ADDRESS   the mailbox's Maildir as a 7z archive (AES-256,
                                          file names encrypted too) on stdout; the
                                          passphrase is the first line of stdin

An offboarded mailbox's home moves whole from /var/vmail/<domain>/<local part> to
ASIDE/<domain>/<local part>: Dovecot no longer knows the user (no login, no quota,
no retention run), a new mailbox or alias of the address starts afresh, the nightly
backup still holds it (ASIDE is under /var/vmail), and a restore is a rename back
that keeps Dovecot's indexes, UIDs (POP3 clients download nothing twice) and the
person's Sieve filters. The timer deletes only under ASIDE, only records whose
keep_until has passed. Settings: SETTINGS, written by the deploy (mailstack/dovecot.py).
"""
import argparse
import datetime
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

from .backup import mailbox_home, merge_maildir
from .backup_tools import Failure, main_with_settings

SETTINGS = "/etc/mailstack/offboarded.json"
VMAIL = "/var/vmail"
ASIDE = f"{VMAIL}/.offboarded"     # no domain starts with a dot: never a live mailbox
# Not for the person: Dovecot's index and list files, and mail they deleted
# (lazy_expunge's folders), which they would not expect back.
EXPORT_EXCLUDES = ("dovecot*", ".EXPUNGED*")


def home_of(address):
    local, _, domain = address.partition("@")
    return f"{VMAIL}/{domain}/{local}"


def aside_of(address):
    local, _, domain = address.partition("@")
    return f"{ASIDE}/{domain}/{local}"


def under_aside(path):
    """Deletion stays under ASIDE, whatever the settings say."""
    real = os.path.realpath(path)
    return real.startswith(ASIDE + "/") and real.count("/") == ASIDE.count("/") + 2


def move_home(src, dst, owner):
    """src's mail to dst: renamed whole when dst is not there; else (mail arrived
    for a restored address before its home came back) src's messages and folders
    merged into dst's Maildir, then src removed. Returns what was done, or None."""
    if not os.path.isdir(src):
        return None
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700)
        if not parent.startswith(ASIDE):
            os.chown(parent, owner.pw_uid, owner.pw_gid)
    if not os.path.exists(dst):
        os.rename(src, dst)
        return "moved"
    merge_maildir(os.path.join(src, "Maildir"), os.path.join(dst, "Maildir"), owner.pw_uid, owner.pw_gid)
    shutil.rmtree(src)
    return "merged"


def doveadm(*args):
    return subprocess.run(["doveadm", *args], capture_output=True, text=True)


def apply(settings, args, owner=None):
    owner = owner or pwd.getpwnam("vmail")
    os.makedirs(ASIDE, mode=0o700, exist_ok=True)
    for o in settings["offboarded"]:
        if os.path.isdir(o["home"]):
            doveadm("kick", o["address"])    # sessions still open end (no user to log in again)
            done = move_home(o["home"], o["aside"], owner)
            print(json.dumps({"address": o["address"], done: o["aside"]}))
    for m in settings["mailboxes"]:
        done = move_home(m["aside"], m["home"], owner)
        if done:
            for command in (["force-resync", "-u", m["address"], "*"], ["quota", "recalc", "-u", m["address"]]):
                result = doveadm(*command)
                if result.returncode != 0:
                    raise Failure(f"{m['address']}: doveadm {command[0]}: {result.stderr.strip()}")
            print(json.dumps({"address": m["address"], done: m["home"]}))
    for domain in os.listdir(ASIDE):
        if not os.listdir(os.path.join(ASIDE, domain)):
            os.rmdir(os.path.join(ASIDE, domain))


def expired(records, today):
    """The offboarded records whose keep_until has passed (the mail is kept through
    that day)."""
    return [o for o in records if datetime.date.fromisoformat(o["keep_until"]) < today]


def expire(settings, args, today=None):
    today = today or datetime.date.today()
    for o in expired(settings["offboarded"], today):
        if os.path.isdir(o["aside"]):
            if not under_aside(o["aside"]):
                raise Failure(f"{o['aside']} is not under {ASIDE}: not deleted")
            shutil.rmtree(o["aside"])
            print(json.dumps({"address": o["address"], "deleted": o["aside"],
                              "keep_until": o["keep_until"]}))


def messages(maildir):
    """Message files of a Maildir's folders, as the export holds them."""
    count = 0
    for root, dirs, names in os.walk(maildir):
        dirs[:] = [d for d in dirs if not d.startswith(".EXPUNGED")]
        if os.path.basename(root) in ("cur", "new"):
            count += len(names)
    return count


def export(settings, args, out=None):
    """7z (AES-256, names encrypted: -mhe=on), the passphrase through 7z's stdin
    (never an argument: `ps` shows arguments to every user of the host)."""
    passphrase = sys.stdin.readline().rstrip("\n")
    if len(passphrase) < 16:
        raise Failure("the passphrase (first line of stdin) is shorter than 16 characters")
    aside = {o["address"]: o["aside"] for o in settings["offboarded"]}
    home = aside[args.address] if args.address in aside else mailbox_home(args.address)
    if not os.path.isdir(os.path.join(home, "Maildir")):
        raise Failure(f"{args.address} has no Maildir in {home}")
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="mailstack-export-") as tmp:
        archive = os.path.join(tmp, "export.7z")
        result = subprocess.run(
            ["7z", "a", "-t7z", "-mhe=on", "-p", "-bd", archive, "Maildir",
             *[f"-xr!{pattern}" for pattern in EXPORT_EXCLUDES]],
            cwd=home, input=passphrase + "\n", capture_output=True, text=True)
        if result.returncode != 0:
            raise Failure(f"7z: {' / '.join(result.stderr.strip().splitlines()[-3:]) or result.returncode}")
        out = out or sys.stdout.buffer
        with open(archive, "rb") as f:
            shutil.copyfileobj(f, out)
        out.flush()
        print(json.dumps({"address": args.address, "messages": messages(os.path.join(home, "Maildir")),
                          "bytes": os.path.getsize(archive)}), file=sys.stderr)


def parser():
    p = argparse.ArgumentParser(prog="mailstack-offboarded")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("apply").set_defaults(func=apply)
    sub.add_parser("expire").set_defaults(func=expire)
    s = sub.add_parser("export")
    s.add_argument("address")
    s.set_defaults(func=export)
    return p


def main(argv=None, settings_file=SETTINGS):
    main_with_settings("mailstack-offboarded", parser(), argv, settings_file)

"""mailstack-shared: shared role mailboxes on the primary (README "Shared mailboxes").

    mailstack-shared apply    make each shared mailbox's folders, subscribe them, and
                              set every folder's rights to what the data says (the
                              deploy runs it when SETTINGS changes)

A shared mailbox is a Dovecot user nobody logs in as (no password in any file). Its
members reach it through the shared namespace (shared/<address>/...). Rights live in
each folder's dovecot-acl file, set here with doveadm, which also writes the sharing
dictionary that lists the mailbox to its members. The folders are subscribed in the
shared mailbox itself: the shared namespace keeps its subscriptions there, so every
member sees them in any client without subscribing one by one. Only this program
grants rights: users cannot change ACLs over IMAP (no imap_acl plugin).

Settings: [{"address": A, "folders": [F, ...], "members": {M: [right, ...]}}],
written by the deploy (mailstack/dovecot.py).
"""
import argparse
import subprocess

from .backup_tools import Failure, main_with_settings

SETTINGS = "/etc/mailstack/shared.json"


def doveadm(*args):
    result = subprocess.run(["doveadm", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"doveadm {' '.join(args[:3])}: "
                      f"{result.stderr.strip() or result.stdout.strip() or result.returncode}")
    return result.stdout


def folders_of(address):
    """The shared mailbox's folders as Dovecot lists them (its own namespace only)."""
    return [f for f in doveadm("mailbox", "list", "-u", address).splitlines()
            if f and not f.startswith(".")]


def member_rights(address, folder):
    """{member: set of rights} from the folder's ACL (doveadm's tab-separated table:
    id, global, rights)."""
    rights = {}
    for line in doveadm("-f", "tab", "acl", "get", "-u", address, folder).splitlines()[1:]:
        identifier, _, granted = (line.split("\t") + ["", ""])[:3]
        if identifier.startswith("user="):
            rights[identifier[len("user="):]] = set(granted.split())
    return rights


def reconcile(shared):
    """One shared mailbox to its settings; returns the changes made, as lines."""
    address, members, changes = shared["address"], shared["members"], []
    existing = folders_of(address)
    for folder in shared["folders"]:
        if folder not in existing:
            doveadm("mailbox", "create", "-u", address, folder)
            changes.append(f"{address}: folder {folder} made")
    # INBOX first: it is what a member's client opens.
    doveadm("mailbox", "subscribe", "-u", address, "INBOX", *shared["folders"])
    for folder in folders_of(address):
        current = member_rights(address, folder)
        for member in sorted(set(current) - set(members)):
            doveadm("acl", "delete", "-u", address, folder, f"user={member}")
            changes.append(f"{address}/{folder}: {member} no longer a member")
        for member, rights in sorted(members.items()):
            if current.get(member) != set(rights):
                doveadm("acl", "set", "-u", address, folder, f"user={member}", *rights)
                changes.append(f"{address}/{folder}: {member} may {' '.join(rights)}")
    return changes


def apply(settings, args):
    for shared in settings:
        for line in reconcile(shared):
            print(line)


def parser():
    p = argparse.ArgumentParser(prog="mailstack-shared")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("apply").set_defaults(func=apply)
    return p


def main(argv=None, settings_file=SETTINGS):
    main_with_settings("mailstack-shared", parser(), argv, settings_file)

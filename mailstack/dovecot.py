"""Dovecot user, password and retention files derived from the model (pure logic)."""
import json

from .host.offboarded import aside_of, home_of
from .host.password import current_hash
from .model import MailSystem

VMAIL_UID = 5000
# Dovecot's quota-status policy service, asked by Postfix at RCPT time.
QUOTA_STATUS_PORT = 12340


def passwd_file(system: MailSystem, service: str, changes=None) -> str:
    """Only mailboxes allowed to use `service` (host.password.SERVICES) can log in
    to it; `changes`: the host's password changes (host.password.parse_changes)."""
    allowed = [m for m in system.mailboxes if service in ("smtp", "sieve") or service in m.protocols]
    return "".join(f"{m.address}:{current_hash(m.address, m.password_hash, changes)}\n"
                   for m in allowed)


def users_file(system: MailSystem, dovecot: str = "2.4") -> str:
    """Each mailbox's home and quota, for the Dovecot version the host runs (2.4
    renamed the quota field)."""
    quota = "userdb_quota_storage_size={}B" if dovecot == "2.4" else "userdb_quota_rule=*:storage={}B"
    return "".join(
        f"{m.address}::{VMAIL_UID}:{VMAIL_UID}::{home_of(m.address)}::"
        + quota.format(m.quota) + "\n"
        for m in system.stores)


def retention_file(system: MailSystem) -> str:
    """One line per mailbox for mailstack-expire: address and seconds to keep
    POP3-deleted, expunged, Trash and Junk mail."""
    return "".join(
        f"{m.address} {r.pop3_deleted} {r.expunged} {r.trash} {r.junk}\n"
        for m in system.stores for r in [m.retention])


# Dovecot's ACL rights (doveadm acl set) for each right of a shared mailbox's member.
# \Seen is each member's own (a private index), so reading marks nothing for others.
SHARED_ACL = {"read": ("lookup", "read", "write-seen")}
SHARED_ACL["write"] = SHARED_ACL["read"] + ("write", "write-deleted", "insert", "post", "expunge")
SHARED_ACL["delete"] = SHARED_ACL["write"] + ("create", "delete")


def shared_settings(system: MailSystem) -> str:
    """mailstack-shared's settings (mailstack/host/shared.py): each shared mailbox's
    folders and each member's ACL rights."""
    return json.dumps([{"address": s.address, "folders": list(s.folders),
                        "members": {m: list(SHARED_ACL[right]) for m, right in s.members}}
                       for s in system.shared_mailboxes], indent=1, sort_keys=True) + "\n"


def offboarded_settings(system: MailSystem) -> str:
    """mailstack-offboarded's settings (mailstack/host/offboarded.py): where each
    offboarded mailbox's mail waits and until when, and where each mailbox's home
    is (a restored one comes back there)."""
    return json.dumps({
        "offboarded": [{"address": o.address, "home": home_of(o.address), "aside": aside_of(o.address),
                        "keep_until": o.keep_until.isoformat()} for o in system.offboarded],
        "mailboxes": [{"address": m.address, "home": home_of(m.address), "aside": aside_of(m.address)}
                      for m in system.mailboxes],
    }, indent=1, sort_keys=True) + "\n"

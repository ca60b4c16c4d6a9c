"""Dovecot user, password and retention files derived from the model (pure logic)."""
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


def users_file(system: MailSystem) -> str:
    return "".join(
        f"{m.address}::{VMAIL_UID}:{VMAIL_UID}::/var/vmail/{m.domain}/{m.localpart}::"
        f"userdb_quota_rule=*:storage={m.quota}B\n"
        for m in system.mailboxes)


def retention_file(system: MailSystem) -> str:
    """One line per mailbox for mailstack-expire: address and seconds to keep
    POP3-deleted, expunged, Trash and Junk mail."""
    return "".join(
        f"{m.address} {r.pop3_deleted} {r.expunged} {r.trash} {r.junk}\n"
        for m in system.mailboxes for r in [m.retention])

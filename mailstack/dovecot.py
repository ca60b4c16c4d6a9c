"""Dovecot user, password and retention files derived from the model (pure logic)."""
import hashlib

from .model import MailSystem

VMAIL_UID = 5000
# Dovecot's quota-status policy service, asked by Postfix at RCPT time.
QUOTA_STATUS_PORT = 12340
# Dovecot's %s: the service asking. "smtp" is Postfix's SASL (submission),
# "sieve" is ManageSieve.
SERVICES = ("imap", "pop3", "smtp", "sieve")
# Passwords users changed themselves (webmail), kept on the host across deploys.
PASSWORD_CHANGES = "/var/lib/mailstack/password-changes"


def password_changes(text: str) -> dict:
    """{address: (sha256 of the data's hash it replaced, new hash)} from the host's
    password-changes file (written by mailstack-password)."""
    return {a: (base, new) for a, base, new in (line.split() for line in text.splitlines() if line.strip())}


def current_hash(mailbox, changes) -> str:
    """A password changed by its user wins until the data's hash changes."""
    base, new = (changes or {}).get(mailbox.address, (None, None))
    if base == hashlib.sha256(mailbox.password_hash.encode()).hexdigest():
        return new
    return mailbox.password_hash


def passwd_file(system: MailSystem, service: str, changes=None) -> str:
    """Only mailboxes allowed to use `service` can log in to it."""
    allowed = [m for m in system.mailboxes if service in ("smtp", "sieve") or service in m.protocols]
    return "".join(f"{m.address}:{current_hash(m, changes)}\n" for m in allowed)


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

"""Dovecot user and password files derived from the model (pure logic, no I/O)."""
from .model import MailSystem

VMAIL_UID = 5000
# Dovecot's %s: the service asking. "smtp" is Postfix's SASL (submission).
SERVICES = ("imap", "pop3", "smtp")


def passwd_file(system: MailSystem, service: str) -> str:
    """Only mailboxes allowed to use `service` can log in to it."""
    allowed = [m for m in system.mailboxes if service == "smtp" or service in m.protocols]
    return "".join(f"{m.address}:{m.password_hash}\n" for m in allowed)


def users_file(system: MailSystem) -> str:
    return "".join(
        f"{m.address}::{VMAIL_UID}:{VMAIL_UID}::/var/vmail/{m.domain}/{m.localpart}::"
        f"quota_rule=*:storage={m.quota}B\n"
        for m in system.mailboxes)

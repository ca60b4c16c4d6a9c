"""mailstack-quota-warning PERCENT USER POSTMASTER: Dovecot runs it (as vmail) when
a mailbox crosses a quota warning level; the warning is delivered straight into
the mailbox with dovecot-lda, outside the quota (the mailbox may be nearly full)."""
import subprocess
import sys

from .mail import auto_message

LDA = "/usr/lib/dovecot/dovecot-lda"


def warning(percent, user, postmaster):
    return auto_message(
        postmaster, user, f"Your mailbox is {percent}% full",
        f"Your mailbox {user} is now {percent}% full. Delete or archive old mail:\n"
        "once it is full, new mail is refused.\n",
        domain=postmaster.rpartition("@")[2])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or not argv[0].isdigit():
        print("usage: mailstack-quota-warning PERCENT USER POSTMASTER", file=sys.stderr)
        return 2
    percent, user, postmaster = argv
    msg = warning(percent, user, postmaster)
    return subprocess.run([LDA, "-d", user, "-o", "plugin/quota=count:User quota:noenforcing"],
                          input=msg.as_bytes()).returncode

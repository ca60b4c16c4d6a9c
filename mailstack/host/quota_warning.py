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
    return subprocess.run([LDA, "-d", user, "-o", outside_quota()], input=msg.as_bytes()).returncode


def outside_quota(version=None):
    """dovecot-lda's setting that delivers without enforcing the quota (Dovecot 2.4,
    Debian 13, renamed the 2.3 one)."""
    if version is None:
        version = subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True,
                                 text=True).stdout
    if version.startswith("2.3."):
        return "plugin/quota=count:User quota:noenforcing"
    return "quota_enforce=no"

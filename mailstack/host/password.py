"""mailstack-password: change a mailbox's password on this host.

Reads "address:new password" on stdin (as chpasswd does; Roundcube's password
plugin runs it through sudo). The new hash goes into Dovecot's password files at
once and into CHANGES, which the next deploy applies (mailstack/dovecot.py), so the
change is not undone, until the operator gives the mailbox a new hash in the data
(then the data wins).

The operator side uses the same hashing and the same CHANGES format.
"""
import fcntl
import hashlib
import os
import re
import subprocess
import sys
import time

# Dovecot's %s: the service asking. "smtp" is Postfix's SASL (submission),
# "sieve" is ManageSieve. One password file per service: a mailbox is in the files
# of the services it may use.
SERVICES = ("imap", "pop3", "smtp", "sieve")
PASSWD = "/etc/dovecot/passwd.{service}"
# Passwords users changed themselves (webmail), kept on the host across deploys.
CHANGES = "/var/lib/mailstack/password-changes"
LOCK = "/run/lock/mailstack-password"


def hash_password(password: str) -> str:
    """A Dovecot SHA512-CRYPT hash (crypt(3) with a random salt, made by openssl)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                         capture_output=True, text=True, check=True).stdout.strip()
    return "{SHA512-CRYPT}" + out


def fingerprint(password_hash: str) -> str:
    """How CHANGES names the data's hash a change replaced."""
    return hashlib.sha256(password_hash.encode()).hexdigest()


def parse_changes(text: str) -> dict:
    """{address: (fingerprint of the data's hash it replaced, new hash)}."""
    return {a: (base, new) for a, base, new in (line.split() for line in text.splitlines()
                                                if line.strip())}


def format_changes(changes: dict) -> str:
    return "".join(f"{a} {base} {new}\n" for a, (base, new) in sorted(changes.items()))


def current_hash(address: str, data_hash: str, changes: dict) -> str:
    """A password changed by its user wins until the data's hash changes."""
    base, new = (changes or {}).get(address, (None, None))
    return new if base == fingerprint(data_hash) else data_hash


def parse_request(line: str):
    """(address, password) from one "address:password" line, or ValueError."""
    address, sep, password = line.rstrip("\n").partition(":")
    if not sep or not re.fullmatch(r"[^\s:@]+@[a-z0-9.-]+", address) or not password:
        raise ValueError("expected 'address:password' on stdin")
    return address, password


def read_hashes(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split(":", 1) for line in f if ":" in line)


def write_atomically(path, text, mode, group):
    # Dovecot notices a changed passwd-file by its mtime (seconds) and size: never
    # replace a file within the second it was last written.
    if os.path.exists(path) and int(os.stat(path).st_mtime) >= int(time.time()):
        time.sleep(1.05 - time.time() % 1)
    tmp = f"{path}.new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.chown(tmp, 0, group)
    os.replace(tmp, path)


def change(address, password, passwd=PASSWD, changes_file=CHANGES):
    """Give `address` a new password in every password file that has it."""
    files = [passwd.format(service=s) for s in SERVICES if os.path.exists(passwd.format(service=s))]
    hashes = {path: read_hashes(path) for path in files}
    live = next((h[address] for h in hashes.values() if address in h), None)
    if live is None:
        raise LookupError(f"no mailbox {address}")
    new = hash_password(password)
    changes = {}
    if os.path.exists(changes_file):
        with open(changes_file) as f:
            changes = parse_changes(f.read())
    # Remember which hash from the data this change replaces: the one an earlier
    # change replaced while that change is still live, else the live one.
    earlier = changes.get(address)
    base = earlier[0] if earlier and earlier[1] == live else fingerprint(live)
    changes[address] = (base, new)
    write_atomically(changes_file, format_changes(changes), 0o600, 0)
    for path, table in hashes.items():
        if address in table:
            table[address] = new
            write_atomically(path, "".join(f"{a}:{h}\n" for a, h in table.items()), 0o640,
                             os.stat(path).st_gid)


def main(stdin=sys.stdin):
    try:
        address, password = parse_request(stdin.readline())
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            change(address, password)
    except (ValueError, LookupError) as e:
        sys.exit(f"mailstack-password: {e.args[0]}")

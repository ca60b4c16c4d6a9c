"""mailstack-password: change a mailbox's password on this host.

    mailstack-password            (root) read "address:new password" on stdin
    mailstack-password poppassd   serve one poppassd session on stdin/stdout: user,
                                  pass (the CURRENT password), newpass; systemd runs
                                  it for each connection to 127.0.0.1:106

Roundcube's password plugin speaks poppassd: it must prove the current password,
which Dovecot's own auth checks, so nothing running as www-data can change a
password it does not know. The new hash goes into Dovecot's password files at once
and into CHANGES, which the next deploy applies (mailstack/dovecot.py), so the
change is not undone, until the operator gives the mailbox a new hash in the data
(then the data wins).

The operator side uses the same hashing and the same CHANGES format.
"""
import base64
import fcntl
import hashlib
import os
import re
import socket
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
# In /run itself (root only): nobody else can make the lock file and hold it.
LOCK = "/run/mailstack-password.lock"
AUTH = "/run/dovecot/auth-client"
# The Dovecot service whose password file lists every mailbox (ManageSieve).
AUTH_SERVICE = "sieve"


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


def authenticates(address, password, peer="127.0.0.1", auth=AUTH):
    """True if Dovecot's auth accepts this password for the address (its own
    checks, failure delay and log)."""
    if "\t" in address or "\n" in address:
        return False
    plain = base64.b64encode(f"\0{address}\0{password}".encode()).decode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(auth)
        s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n"
                  f"AUTH\t1\tPLAIN\tservice={AUTH_SERVICE}\tsecured\trip={peer}\t"
                  f"resp={plain}\n".encode())
        replies = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return False
            replies += chunk
            for line in replies.decode(errors="replace").splitlines():
                reply = line.split("\t")
                if reply[:2] in (["OK", "1"], ["FAIL", "1"]):
                    return reply[0] == "OK"


def locked_change(address, password):
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        change(address, password)


def poppassd(rfile, wfile, peer, check=authenticates, apply=locked_change, log=sys.stderr):
    """One poppassd session (what Roundcube's poppassd driver speaks)."""
    def say(line):
        wfile.write(line + "\r\n")
        wfile.flush()

    address = current = None
    say("200 mailstack-password ready")
    while raw := rfile.readline():
        command, _, arg = raw.rstrip("\r\n").partition(" ")
        command = command.lower()
        if command == "user" and arg:
            address, current = arg, None
            say("200 Your password please.")
        elif command == "pass" and address:
            if not check(address, arg, peer):
                print(f"mailstack-password: refused: wrong current password for {address} "
                      f"from {peer}", file=log)
                say("500 Old password is incorrect.")
                return
            current = arg
            say("200 Your new password please.")
        elif command == "newpass" and current is not None:
            try:
                parse_request(f"{address}:{arg}")
                apply(address, arg)
            except (ValueError, LookupError) as e:
                say(f"500 {e.args[0]}")
                return
            print(f"mailstack-password: password of {address} changed (from {peer})", file=log)
            say("200 Password changed, thank-you.")
        elif command == "quit":
            say("200 Bye.")
            return
        else:
            say("500 Unknown command or out of order.")
            return


def main(argv=None, stdin=sys.stdin):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv == ["poppassd"]:
            # systemd's Accept=yes socket: the connection is stdin/stdout.
            peer = os.environ.get("REMOTE_ADDR", "127.0.0.1")
            poppassd(stdin, sys.stdout, peer)
            return
        if argv:
            raise ValueError("usage: mailstack-password [poppassd] (address:password on stdin)")
        locked_change(*parse_request(stdin.readline()))
    except (ValueError, LookupError) as e:
        sys.exit(f"mailstack-password: {e.args[0]}")

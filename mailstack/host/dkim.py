"""mailstack-dkim: DKIM keys, made and kept on this host (readable by rspamd only).

    mailstack-dkim ensure DOMAIN...   make a key for each domain that has none
    mailstack-dkim missing DOMAIN...  print the domains that have no key yet
    mailstack-dkim list               "domain selector active|standby public-key" per key
    mailstack-dkim rotate DOMAIN      make a standby key, print its selector
    mailstack-dkim activate DOMAIN SELECTOR OVERLAP_SECONDS
                                      sign with SELECTOR; the old key is kept (and
                                      published) OVERLAP_SECONDS more, then retired
    mailstack-dkim retire-due         delete keys whose overlap ended (timer)

In KEYS: <domain>.<selector>.key (the private key), <domain>.active (the selector
rspamd signs with), <domain>.<selector>.retire (when an old key goes), and
selectors.map, which rspamd reads (and reloads live). Settings: SETTINGS (key size).
"""
import argparse
import base64
import datetime
import glob
import json
import os
import pwd
import subprocess
import sys
import time

KEYS = "/var/lib/rspamd/dkim"
SETTINGS = "/etc/mailstack/dkim.json"
OWNER = "_rspamd"


def owner():
    entry = pwd.getpwnam(OWNER)
    return entry.pw_uid, entry.pw_gid


def make_key(path, domain, selector, bits):
    """A new RSA key at `path`, made by rspamd's own tool."""
    subprocess.run(["rspamadm", "dkim_keygen", "-t", "rsa", "-b", str(bits), "-s", selector,
                    "-d", domain, "-k", path], check=True, stdout=subprocess.DEVNULL)


def public_key(path):
    """The key's public half, base64 DER (the p= of the DNS record)."""
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(der).decode()


class Keys:
    def __init__(self, directory=KEYS, bits=2048, keygen=make_key, pubkey=public_key,
                 chown=lambda path: os.chown(path, *owner()), clock=time.time):
        self.dir, self.bits = directory, bits
        self.keygen, self.pubkey, self.chown, self.clock = keygen, pubkey, chown, clock

    def path(self, *parts):
        return os.path.join(self.dir, ".".join(parts))

    def active(self, domain):
        try:
            with open(self.path(domain, "active")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def set_active(self, domain, selector):
        with open(self.path(domain, "active"), "w") as f:
            f.write(selector + "\n")

    def new_key(self, domain):
        # A selector is the time it was made; a second key within one second takes
        # the next free second rather than overwrite the first.
        when = int(self.clock())
        while True:
            stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
            selector = "ms" + stamp.strftime("%Y%m%d%H%M%S")
            key = self.path(domain, selector, "key")
            if not os.path.exists(key):
                break
            when += 1
        self.keygen(key, domain, selector, self.bits)
        self.chown(key)
        os.chmod(key, 0o600)
        return selector

    def rebuild_map(self):
        """selectors.map: the active selector of each domain, replaced whole."""
        lines = [f"{os.path.basename(p)[:-len('.active')]} {open(p).read().strip()}\n"
                 for p in sorted(glob.glob(os.path.join(self.dir, "*.active")))]
        tmp = self.path("selectors", "map", "new")
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path("selectors", "map"))

    def missing(self, domains):
        return [d for d in domains if self.active(d) is None]

    def ensure(self, domains):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o750)
        self.chown(self.dir)
        for domain in self.missing(domains):
            self.set_active(domain, self.new_key(domain))
        self.rebuild_map()

    def list(self):
        """(domain, selector, active|standby, public key) per key."""
        found = []
        for key in sorted(glob.glob(os.path.join(self.dir, "*.key"))):
            domain, selector = os.path.basename(key)[:-len(".key")].rsplit(".", 1)
            state = "active" if self.active(domain) == selector else "standby"
            found.append((domain, selector, state, self.pubkey(key)))
        return found

    def activate(self, domain, selector, overlap):
        if not os.path.exists(self.path(domain, selector, "key")):
            raise LookupError(f"no key {domain}.{selector}")
        old = self.active(domain)
        # Back to a key that was retiring: it stays.
        if os.path.exists(self.path(domain, selector, "retire")):
            os.remove(self.path(domain, selector, "retire"))
        self.set_active(domain, selector)
        self.rebuild_map()
        if old and old != selector:
            with open(self.path(domain, old, "retire"), "w") as f:
                f.write(f"{int(self.clock()) + overlap}\n")

    def retire_due(self):
        retired = []
        for due in sorted(glob.glob(os.path.join(self.dir, "*.retire"))):
            with open(due) as f:
                when = int(f.read().strip())
            if self.clock() >= when:
                name = os.path.basename(due)[:-len(".retire")]
                for path in (self.path(name, "key"), due):
                    if os.path.exists(path):
                        os.remove(path)
                retired.append(name)
        return retired


def parser():
    p = argparse.ArgumentParser(prog="mailstack-dkim")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("ensure", "missing"):
        sub.add_parser(name).add_argument("domains", nargs="*")
    sub.add_parser("list")
    sub.add_parser("rotate").add_argument("domain")
    s = sub.add_parser("activate")
    s.add_argument("domain")
    s.add_argument("selector")
    s.add_argument("overlap", type=int, help="seconds the old key stays")
    sub.add_parser("retire-due")
    return p


def main(argv=None, settings_file=SETTINGS, keys=None):
    args = parser().parse_args(argv)
    if keys is None:
        with open(settings_file) as f:
            keys = Keys(bits=json.load(f)["key_size"])
    try:
        if args.command == "ensure":
            keys.ensure(args.domains)
        elif args.command == "missing":
            for domain in keys.missing(args.domains):
                print(domain)
        elif args.command == "list":
            for entry in keys.list():
                print(" ".join(entry))
        elif args.command == "rotate":
            print(keys.new_key(args.domain))
        elif args.command == "activate":
            keys.activate(args.domain, args.selector, args.overlap)
        else:
            for name in keys.retire_due():
                print(f"retired {name}")
    except LookupError as e:
        sys.exit(f"mailstack-dkim: {e.args[0]}")

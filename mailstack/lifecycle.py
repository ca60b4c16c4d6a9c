"""mailstack mailbox / alias: the people of a mail system, changed in its data file
for the operator.

Each change is spliced into the file's text (mailstack/yaml_text.py: every other line
stays as written), checked by the model exactly as the deploy reads it, and only
then written, atomically; a bad change leaves the file as it was. A new password's
hash goes where the data keeps hashes: its password_hashes_file if it names one,
else the mailbox's own entry. Passwords come from stdin or a prompt, never from
the command line (it shows in `ps` and in shell history).
"""
import base64
import getpass
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .clients import settings_text, welcome_message
from .facts import PYINFRA, run_here
from .host.password import hash_password
from .model import DataError, load_system
from .yaml_text import Text, flow_list, scalar, text_of, value_of

ROOT = Path(__file__).resolve().parent.parent
# A well-formed hash that checks a new mailbox before its password is asked for;
# never written.
STAND_IN = "{SHA512-CRYPT}$6$mailstack$" + "." * 86


def read_password():
    """A new password: typed twice at a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            sys.exit("mailstack: the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.exit("mailstack: empty password")
    return password


def locate(target):
    """(data file, inventory or None) for a data file or an inventory: by the
    convention inventory/<system>.py beside inventory/<system>/mail.yml."""
    path = Path(target)
    if path.suffix == ".py":
        data = path.with_suffix("") / "mail.yml"
        if not data.is_file():
            sys.exit(f"mailstack: no data file for {target} at {data}: give the data file")
        return data, path
    directory = path.parent if path.parent.name else path.resolve().parent
    inventory = directory.with_suffix(".py")
    return path, inventory if inventory.is_file() else None


# What a mailbox or alias changes lives on the mail hosts alone (passwd files, maps,
# Sieve, Roundcube): the other hosts' deploy would only check that nothing changed.
MAIL_ROLES = ("primary_mx", "backup_mx")


def deploy_command(inventory, limit=()):
    return [str(PYINFRA), "-y", *[a for fqdn in limit for a in ("--limit", fqdn)],
            str(Path(inventory).resolve()), "deploy.py"]


def run_deploy(inventory, limit=(), run=subprocess.run):
    print(f"mailstack: deploying {inventory}" + (f" to {', '.join(limit)}" if limit else ""), flush=True)
    if run(deploy_command(inventory, limit), cwd=ROOT).returncode != 0:
        sys.exit(f"mailstack: the data is changed but the deploy failed; run it again: "
                 f"{' '.join(deploy_command(inventory, limit))}")


class Data:
    """A system's data file and its password hashes file, as they are now."""

    def __init__(self, target, deploy=False, inventory=None):
        self.path, self.inventory = locate(target)
        # An inventory that reads its data from elsewhere (the lab's, from
        # MAILSTACK_LAB_DATA) is named by --inventory.
        self.inventory = Path(inventory) if inventory else self.inventory
        if deploy and self.inventory is None:
            sys.exit(f"mailstack: --deploy needs the system's inventory: give inventory/<system>.py "
                     f"(none beside {self.path})")
        try:
            # The data as it is must be valid, except for hashes still to be made.
            self.system = load_system(self.path, placeholders=True)
        except DataError as e:
            sys.exit(f"mailstack: invalid mail data: {e}")
        self.text = self.path.read_text()
        hashes_file = yaml.safe_load(self.text).get("password_hashes_file")
        self.hashes_path = self.path.parent / hashes_file if hashes_file else None
        self.hashes_text = self.hashes_path.read_text() if self.hashes_path else None

    def edit(self):
        """(data Text, hashes Text or None) to make a change in."""
        return Text(self.text), Text(self.hashes_text) if self.hashes_path else None

    def index(self, doc, key, address):
        """Index of the entry with this address in the list `key`, or None."""
        for i, item in enumerate(doc.items(key)):
            if text_of(value_of(item, "address")) == address:
                return i
        return None

    def check(self, doc, hashes):
        """The system the changed texts describe; DataError if the change is bad."""
        text, hashes_text = doc.apply(), hashes.apply() if hashes else None
        return load_system(self.path, text, hashes_text, placeholders=True), text, hashes_text

    def save(self, doc, hashes, hashes_first=False):
        """Check, then write what changed (atomically; the hash before the mailbox
        that needs it, the mailbox's removal before its hash's)."""
        try:
            system, text, hashes_text = self.check(doc, hashes)
        except DataError as e:
            sys.exit(f"mailstack: invalid change, nothing written: {e}")
        writes = [(self.path, self.text, text)]
        if hashes is not None:
            writes.insert(0 if hashes_first else 1, (self.hashes_path, self.hashes_text, hashes_text))
        for path, old, new in writes:
            if new != old:
                write_atomically(path, old, new)
        self.system, self.text, self.hashes_text = system, text, hashes_text
        return system

    def done(self, deploy):
        if deploy:
            run_deploy(self.inventory, [h.fqdn for h in self.system.hosts
                                        if set(h.roles) & set(MAIL_ROLES)])
        elif self.inventory:
            print(f"deploy it: .venv/bin/pyinfra -y {self.inventory} deploy.py")


def write_atomically(path, old, new):
    """Replace the file (a link's target: the lab's hashes file is a link) with
    `new`, keeping its mode; refused if it changed since it was read."""
    real = Path(os.path.realpath(path))
    if real.read_text() != old:
        sys.exit(f"mailstack: {path} changed meanwhile: nothing written, run the command again")
    fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, real.stat().st_mode & 0o7777)
        os.replace(tmp, real)
    except BaseException:
        os.unlink(tmp)
        raise


def refuse(message):
    sys.exit(f"mailstack: {message}")


def same_domain(doc, key, address):
    """Indexes of the entries of list `key` in the domain of `address` (a new entry
    goes after the last of them)."""
    domain = "@" + address.rpartition("@")[2]
    return [i for i, item in enumerate(doc.items(key))
            if (text_of(value_of(item, "address")) or "").endswith(domain)]


# --- mailbox ---

def mailbox_add(target, address, quota=None, protocols=None, name=None, deploy=False,
                inventory=None, welcome=False):
    if welcome and not deploy:
        sys.exit("mailstack: --welcome needs --deploy (the mailbox must exist to receive it)")
    data = Data(target, deploy, inventory)

    def change(password_hash):
        doc, hashes = data.edit()
        pairs = [("address", scalar(address))]
        pairs += [("name", scalar(name))] if name is not None else []
        pairs += [("quota", scalar(quota))] if quota is not None else []
        pairs += [("protocols", flow_list(protocols))] if protocols is not None else []
        if hashes is None:
            pairs.append(("password_hash", scalar_hash(password_hash)))
        else:
            hashes.set_top(address, scalar_hash(password_hash))
        same = same_domain(doc, "mailboxes", address)
        doc.add_item("mailboxes", pairs, after=same[-1] if same else None)
        return doc, hashes

    # The change is checked before a password is asked for.
    try:
        data.check(*change(STAND_IN))
    except DataError as e:
        refuse(f"invalid change, nothing written: {e}")
    system = data.save(*change(hash_password(read_password())), hashes_first=True)
    print(f"{address}: added to {system.name} ({data.path})\n")
    print(settings_text(system, address))
    print()
    data.done(deploy)
    if welcome:
        send_welcome(data.inventory, system, address)


def send_welcome(inventory, system, address):
    """The welcome mail, handed to the primary's Postfix (its sendmail): delivered as
    any local mail is, through the mailbox's Sieve filters."""
    text = base64.b64encode(welcome_message(system, address).as_bytes()).decode()
    command = (f"printf %s {text} | base64 -d | /usr/sbin/sendmail -oi "
               f"-f {shlex.quote(system.postmaster)} -- {shlex.quote(address)}")
    if not run_here(inventory, "primary_mx", command):
        sys.exit(f"mailstack: {address} is deployed, but the welcome mail was not sent")
    print(f"mailstack: welcome mail sent to {address}")


def scalar_hash(password_hash):
    return json.dumps(password_hash)   # quoted, as the example's hashes are


def mailbox_remove(target, address, deploy=False, inventory=None):
    """Aliases that deliver to others too lose this address; an alias that delivers
    only to it must be removed or given another target first (mail to it would
    otherwise have nowhere to go)."""
    data = Data(target, deploy, inventory)
    doc, hashes = data.edit()
    i = data.index(doc, "mailboxes", address)
    if i is None:
        refuse(f"{address} is not a mailbox of {data.system.name} ({data.path})")
    changed = drop_from_aliases(data, doc, address)
    doc.remove_item("mailboxes", i)
    if hashes is not None:
        hashes.remove_top(address)
    system = data.save(doc, hashes)
    local, _, domain = address.partition("@")
    print(f"{address}: removed from {system.name} ({data.path})")
    for alias in changed:
        print(f"  {alias}: no longer delivers to {address}")
    print(f"  its mail stays on {system.primary_mx.fqdn} in /var/vmail/{domain}/{local} "
          "(a new mailbox of this address would find it)")
    data.done(deploy)


def drop_from_aliases(data, doc, address):
    """Take `address` out of the aliases that deliver to others too (their
    addresses are returned); refused where an alias delivers only to it."""
    only = [a.address for a in data.system.aliases if list(a.targets) == [address]]
    if only:
        refuse(f"{address} is the only target of {', '.join(only)}: remove "
               f"{'it' if len(only) == 1 else 'them'} first (mailstack alias remove {data.path} "
               f"{only[0]}) or add another target (mailstack alias add {data.path} {only[0]} OTHER)")
    changed = []
    for item in doc.items("aliases"):
        targets = text_of(value_of(item, "to"))
        targets = [targets] if isinstance(targets, str) else targets
        if address in targets:
            rest = [t for t in targets if t != address]
            doc.set_key(item, "to", scalar(rest[0]) if len(rest) == 1 else flow_list(rest))
            changed.append(text_of(value_of(item, "address")))
    return changed


def mailbox_passwd(target, address, deploy=False, inventory=None):
    """A new hash where the data keeps this mailbox's: its entry, or the hashes file.
    It also undoes a change the user made in webmail (the data's new hash wins)."""
    data = Data(target, deploy, inventory)
    doc, hashes = data.edit()
    i = data.index(doc, "mailboxes", address)
    if i is None:
        refuse(f"{address} is not a mailbox of {data.system.name} ({data.path})")
    new = scalar_hash(hash_password(read_password()))
    item = doc.items("mailboxes")[i]
    if value_of(item, "password_hash") is not None or hashes is None:
        doc.set_key(item, "password_hash", new)
        where = data.path
    else:
        hashes.set_top(address, new)
        where = data.hashes_path
    data.save(doc, hashes, hashes_first=True)
    print(f"{address}: new password ({where})")
    data.done(deploy)


def mailbox_list(target, as_json=False):
    path, _ = locate(target)
    try:
        system = load_system(path, placeholders=True)
    except DataError as e:
        sys.exit(f"mailstack: invalid mail data: {e}")
    rows = [{"address": m.address, "name": m.name, "quota": m.quota,
             "protocols": sorted(m.protocols)} for m in system.mailboxes]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'address':40} {'quota':>6}  {'protocols':10} name")
    for r in rows:
        print(f"{r['address']:40} {size(r['quota']):>6}  {','.join(r['protocols']):10} {r['name'] or ''}")


def size(n):
    """Bytes as the data writes them (5G)."""
    for unit in "TGMK":
        factor = 1024 ** ("KMGT".index(unit) + 1)
        if n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


# --- alias ---

def alias_add(target, source, targets, deploy=False, inventory=None):
    """A new alias, or more targets for an existing one."""
    data = Data(target, deploy, inventory)
    doc, hashes = data.edit()
    i = data.index(doc, "aliases", source)
    if i is None:
        same = same_domain(doc, "aliases", source)
        to = scalar(targets[0]) if len(targets) == 1 else flow_list(targets)
        doc.add_item("aliases", [("address", scalar(source)), ("to", to)],
                     after=same[-1] if same else None)
    else:
        item = doc.items("aliases")[i]
        now = text_of(value_of(item, "to"))
        now = [now] if isinstance(now, str) else now
        doc.set_key(item, "to", flow_list(now + [t for t in dict.fromkeys(targets) if t not in now]))
    system = data.save(doc, hashes)
    alias = next(a for a in system.aliases if a.address == source)
    print(f"{source}: delivers to {', '.join(alias.targets)} ({data.path})")
    data.done(deploy)


def alias_remove(target, source, deploy=False, inventory=None):
    data = Data(target, deploy, inventory)
    doc, hashes = data.edit()
    i = data.index(doc, "aliases", source)
    if i is None:
        refuse(f"{source} is not an alias of {data.system.name} ({data.path})")
    doc.remove_item("aliases", i)
    data.save(doc, hashes)
    print(f"{source}: removed from {data.system.name} ({data.path})")
    data.done(deploy)

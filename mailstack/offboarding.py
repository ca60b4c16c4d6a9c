"""mailstack mailbox offboard / restore: a person leaves, their mail is archived
first, then the address becomes an alias, a forward or nothing; the mail waits on
the primary for offboarding.keep, then a timer deletes it; a restore before then
brings the mailbox back.

Offboarding, in this order (a failed step changes nothing after it):
1. an archive: `mailstack-backup archive-mailbox ADDRESS` on the primary (a snapshot
   of the mailbox alone, named for the address, in every repository the host uses;
   the backup hosts' retention keeps it until the operator forgets it);
2. an export for the client: the Maildir as a 7z archive (AES-256, names encrypted)
   streamed over SSH into secrets/<system>/offboarded/ (or --export-dir), its
   passphrase made here, given to 7z on the host through stdin, kept beside it
   (mode 600) and printed once;
3. the data: the mailbox entry leaves `mailboxes:` for `offboarded:` (its settings
   and, where the entry kept it, its password hash: a restore puts it back as it
   was; a hash in the password_hashes_file stays there), and the address becomes an
   alias (--alias-to, --forward-to) or is gone (--remove); checked by the model
   before anything on a host happens, written only after the export is here.
The deploy then moves the home aside on the primary (mailstack/host/offboarded.py).
"""
import datetime
import json
import os
import runpy
import secrets
import shlex
import subprocess
from pathlib import Path

import yaml

from .lifecycle import Data, drop_from_aliases, refuse, same_domain
from .model import DataError
from .yaml_text import flow, scalar

EXPORT_COMMAND = "/usr/local/sbin/mailstack-offboarded export"
ARCHIVE_COMMAND = "mailstack-backup archive-mailbox"


def today():
    return datetime.date.today()


def keep_until(system, day):
    """The last day an offboarded mailbox's mail is kept (offboarding.keep, whole days)."""
    return day + datetime.timedelta(days=-(-system.offboarding_keep // 86400))


def open_data(target, inventory, deploy):
    """The data, and the inventory that reaches its hosts: --inventory, or the one
    beside the data (inventory/<system>.py)."""
    data = Data(target)
    if inventory is not None:
        data.inventory = Path(inventory)
    if deploy and data.inventory is None:
        refuse(f"--deploy needs the system's inventory: give --inventory (none beside {data.path})")
    return data


def offboard_change(data, address, alias_to=None, forward_to=None, day=None):
    """(data Text, hashes Text) with the mailbox offboarded on `day`; refused
    (exit 1) if the address is no mailbox or the change is bad."""
    doc, hashes = data.edit()
    i = data.index(doc, "mailboxes", address)
    if i is None:
        refuse(f"{address} is not a mailbox of {data.system.name} ({data.path})")
    domains = {d.name for d in data.system.domains}
    target = alias_to or forward_to
    if alias_to and alias_to.rpartition("@")[2] not in domains:
        refuse(f"--alias-to {alias_to}: not an address of {data.system.name} (use --forward-to "
               "for an address elsewhere)")
    if forward_to and forward_to.rpartition("@")[2] in domains:
        refuse(f"--forward-to {forward_to}: an address of {data.system.name} (use --alias-to)")
    if target == address:
        refuse(f"{address} cannot deliver to itself")
    entry = dict(yaml.safe_load(data.text)["mailboxes"][i])
    entry.pop("address")
    day = day or today()
    record = [("address", scalar(address)), ("date", day.isoformat()),
              ("keep_until", keep_until(data.system, day).isoformat())]
    record += [("mailbox", flow(entry))] if entry else []
    if target is None:
        drop_from_aliases(data, doc, address)
    doc.remove_item("mailboxes", i)
    if target is not None:
        same = same_domain(doc, "aliases", address)
        doc.add_item("aliases", [("address", scalar(address)), ("to", scalar(target))],
                     after=same[-1] if same else None)
    doc.add_item("offboarded", record)
    try:
        data.check(doc, hashes)
    except DataError as e:
        refuse(f"invalid change, nothing done: {e}")
    return doc, hashes


def archive(inventory, system, address, run_here=None):
    """The archive snapshot, on the primary; False if it failed."""
    from .facts import run_here as default
    return (run_here or default)(inventory, system.primary_mx.fqdn,
                                 f"{ARCHIVE_COMMAND} {shlex.quote(address)}")


def export_command(data, fqdn, address):
    """The ssh command line that runs the export on `fqdn` as root, as pyinfra
    reaches the host (its inventory data)."""
    from .backup import ssh_to
    argv, login, root = ssh_to(data, fqdn)
    remote = f"{EXPORT_COMMAND} {shlex.quote(address)}"
    return argv + [login, remote if root else f"sudo -n {remote}"]


def connection(inventory, fqdn):
    """A host's inventory data (its ssh_* settings)."""
    from .backup import host_data
    return host_data(runpy.run_path(str(inventory))).get(fqdn, {})


def export(inventory, system, address, path, passphrase, run=None):
    """The 7z export into `path` (a new file, mode 600); its summary from the host."""
    fqdn = system.primary_mx.fqdn
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        result = (run or subprocess.run)(export_command(connection(inventory, fqdn), fqdn, address),
                     input=(passphrase + "\n").encode(), stdout=out, stderr=subprocess.PIPE)
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    if result.returncode != 0 or path.stat().st_size == 0:
        path.unlink()
        refuse(f"the export of {address} failed, nothing changed: {' / '.join(lines[-3:])}")
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {}


def mailbox_offboard(target, address, alias_to=None, forward_to=None, remove=False,
                     inventory=None, export_dir=None, deploy=False):
    from .secrets import offboarded_dir, write_secret
    data = open_data(target, inventory, deploy)
    if data.inventory is None:
        refuse(f"offboarding archives the mail on the hosts: give --inventory (none beside {data.path})")
    system, day = data.system, today()
    doc, hashes = offboard_change(data, address, alias_to, forward_to, day)   # refused before any step
    if system.backup:
        print(f"{address}: archiving its mail on {system.primary_mx.fqdn} "
              f"({', '.join(system.backup.targets + tuple(r.name for r in system.backup.repositories))})",
              flush=True)
        if not archive(data.inventory, system, address):
            refuse(f"the archive of {address} failed, nothing changed")
    else:
        print(f"{address}: no backups in {system.name}: the export is the only archive", flush=True)
    where = Path(export_dir) if export_dir else offboarded_dir(system.name)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{address}-{day.isoformat()}.7z"
    if path.exists():
        refuse(f"{path} exists: move it away first")
    passphrase = secrets.token_urlsafe(24)
    summary = export(data.inventory, system, address, path, passphrase)
    secret = offboarded_dir(system.name) / f"{address}-{day.isoformat()}.passphrase"
    if secret.exists():
        secret.unlink()
    write_secret(secret, passphrase + "\n")
    data.save(doc, hashes)
    record = next(o for o in data.system.offboarded if o.address == address)
    print(f"{address}: exported to {path} ({summary.get('messages', '?')} messages, "
          f"{summary.get('bytes', path.stat().st_size)} bytes; 7z, AES-256)")
    print(f"  passphrase (shown once, kept in {secret}): {passphrase}")
    then = (f"now delivers to {alias_to or forward_to}" if not remove else "no longer receives mail")
    print(f"{address}: offboarded from {system.name} ({data.path}); the address {then}")
    print(f"  its mail stays on {system.primary_mx.fqdn} until {record.keep_until.isoformat()} "
          f"(restore before then: mailstack mailbox restore {data.path} {address})")
    data.done(deploy)


def mailbox_restore(target, address, inventory=None, deploy=False):
    """The mailbox back as it was (its settings and password hash); the alias or
    forward offboarding made goes. Aliases that lost the address on --remove do not
    get it back (mailstack alias add)."""
    data = open_data(target, inventory, deploy)
    doc, hashes = data.edit()
    i = data.index(doc, "offboarded", address)
    if i is None:
        refuse(f"{address} is not an offboarded mailbox of {data.system.name} ({data.path})")
    record = next(o for o in data.system.offboarded if o.address == address)
    if record.keep_until < today():
        refuse(f"{address}: its mail was kept until {record.keep_until.isoformat()} and is deleted; "
               "its archive is in the backups (mailstack-backup snapshots on the primary)")
    j = data.index(doc, "aliases", address)
    alias = next((a for a in data.system.aliases if a.address == address), None)
    if j is not None:
        doc.remove_item("aliases", j)
    if len(doc.items("offboarded")) == 1:
        doc.remove_top("offboarded", blank_above=True)     # the section offboarding made
    else:
        doc.remove_item("offboarded", i)
    same = same_domain(doc, "mailboxes", address)
    doc.add_item("mailboxes", [("address", scalar(address))]
                 + [(k, flow(v)) for k, v in record.mailbox.items()],
                 after=same[-1] if same else None)
    system = data.save(doc, hashes)
    print(f"{address}: restored to {system.name} ({data.path}), with its password as it was")
    if alias:
        print(f"  it no longer delivers to {', '.join(alias.targets)}")
    print(f"  the deploy moves its mail back on {system.primary_mx.fqdn}")
    data.done(deploy)

#!/usr/bin/env python3
"""A big mail system for scale checks: MAILBOXES mailboxes over DOMAINS domains,
with aliases, a few catch-alls, varied quotas and protocols, on the lab's hosts.

    .venv/bin/python bench/generate_system.py OUTDIR [--mailboxes 1000] [--domains 50] [--name scale]

Writes OUTDIR/<name>.py (an inventory, as inventory/example.py), OUTDIR/<name>/mail.yml
and its password-hashes.yml. Every setting but the people is the lab's
(inventory/lab/mail.yml: hosts, backup, DNS, limits...), and the first two domains
are the lab's (its hosts' names are in acme.test), so the lab can run it:
    MAILSTACK_LAB_DATA=OUTDIR/<name>/mail.yml .venv/bin/pyinfra -y inventory/lab.py deploy.py
Every mailbox has the same password, printed at the end: one hash made, not 1,000
(SHA512-crypt is slow on purpose). The same arguments give the same people.
"""
import argparse
import secrets
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mailstack.host.password import hash_password  # noqa: E402
from mailstack.model import SHARED_RIGHTS  # noqa: E402

LAB_DATA = ROOT / "inventory" / "lab" / "mail.yml"
LAB_DOMAINS = ["acme.test", "globex.test"]
FIRST = ["anna", "ben", "carla", "dev", "emma", "farid", "greta", "hugo", "ines", "jonas",
         "kira", "lars", "mona", "nils", "olga", "pavel", "quinn", "rosa", "sven", "tara"]
LAST = ["Okafor", "Berg", "Silva", "Novak", "Haddad", "Lund", "Moreau", "Tanaka"]
# Cycles of different lengths: every mailbox gets a different mix. None: the domain's.
QUOTAS = [None, "2G", None, "512M", "10G"]
PROTOCOLS = [None, None, ["imap"], ["pop3"], ["imap", "pop3"], None, ["imap"]]
INVENTORY = '''"""A generated mail system (bench/generate_system.py): {mailboxes} mailboxes over
{domains} domains on the lab's hosts."""
from pathlib import Path

from mailstack.inventory import inventory

globals().update(inventory(Path(__file__).resolve().parent / "{name}" / "mail.yml"))
'''


def people(mailboxes, domains):
    """(domains, mailboxes, aliases, shared mailboxes) as the data writes them."""
    names = (LAB_DOMAINS + [f"client{k:02d}.test" for k in range(len(LAB_DOMAINS) + 1, domains + 1)])[:domains]
    ds, ms, aliases, shared = [], [], [], []
    for k, d in enumerate(names):
        locals_ = [FIRST[j % len(FIRST)] + (str(j // len(FIRST)) if j >= len(FIRST) else "")
                   for j in range(mailboxes * k // domains, mailboxes * (k + 1) // domains)]
        first = f"{locals_[0]}@{d}"
        domain = {"name": d}
        if k % 5 == 1:
            domain["quota"] = "512M"
        if k % 7 == 3:
            domain["protocols"] = ["imap"]
        if k % 6 == 4:
            domain["greylisting"] = False
        if k % 10 == 7:
            domain["catch_all"] = f"info@{d}"        # a few catch-alls, to an alias
        ds.append(domain)
        for local in locals_:
            n = len(ms)
            m = {"address": f"{local}@{d}"}
            if n % 3 == 0:
                m["name"] = f"{local.rstrip('0123456789').capitalize()} {LAST[n % len(LAST)]}"
            if QUOTAS[n % len(QUOTAS)]:
                m["quota"] = QUOTAS[n % len(QUOTAS)]
            if PROTOCOLS[n % len(PROTOCOLS)]:
                m["protocols"] = list(PROTOCOLS[n % len(PROTOCOLS)])   # no YAML anchors
            if n % 50 == 49:
                m["retention"] = {"trash": "7d", "junk": "7d"}
            ms.append(m)
        aliases += [{"address": f"postmaster@{d}", "to": first},
                    {"address": f"info@{d}", "to": [f"{local}@{d}" for local in locals_[:2]]},
                    # through another alias, and out to the internet
                    {"address": f"team@{d}", "to": [f"info@{d}", "partner@example.test"]}]
        if k % 4 == 2:
            aliases.append({"address": f"sales@{d}", "to": [first, f"{FIRST[0]}@{names[0]}"]})
        # The domain's people share a support mailbox, each with a right.
        shared.append({"address": f"support@{d}", "folders": ["New", "In Progress", "Completed"],
                       "members": {f"{local}@{d}": SHARED_RIGHTS[j % len(SHARED_RIGHTS)]
                                   for j, local in enumerate(locals_[:3])
                                   if "imap" in ms[len(ms) - len(locals_) + j].get("protocols", ["imap"])}})
    return ds, ms, aliases, shared


def generate(outdir, mailboxes=1000, domains=50, name="scale", password_hash=None):
    """Write the system; return its inventory's path."""
    if not 1 <= domains <= mailboxes:
        raise ValueError("need at least one domain and one mailbox per domain")
    data = yaml.safe_load(LAB_DATA.read_text())
    ds, ms, aliases, shared = people(mailboxes, domains)
    data.update(name=name, postmaster=f"postmaster@{ds[0]['name']}",
                password_hashes_file="password-hashes.yml", domains=ds, mailboxes=ms, aliases=aliases,
                shared_mailboxes=shared)
    # The lab's alert alias is not among the generated aliases: alerts to the postmaster.
    data["monitoring"] = {**data.get("monitoring", {}), "alert_to": [data["postmaster"]]}
    directory = Path(outdir) / name
    directory.mkdir(parents=True, exist_ok=True)
    header = (f"# Generated by bench/generate_system.py: {mailboxes} mailboxes over {domains} "
              "domains;\n# every other setting is inventory/lab/mail.yml's.\n")
    (directory / "mail.yml").write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100))
    password_hash = password_hash or hash_password(secrets.token_urlsafe(12))
    (directory / "password-hashes.yml").write_text(
        yaml.safe_dump({m["address"]: password_hash for m in ms}, sort_keys=False, width=200))
    inventory = Path(outdir) / f"{name}.py"
    inventory.write_text(INVENTORY.format(mailboxes=mailboxes, domains=domains, name=name))
    return inventory


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", metavar="OUTDIR")
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--name", default="scale", help="the system's name (default scale)")
    args = ap.parse_args()
    password = secrets.token_urlsafe(12)
    inventory = generate(args.outdir, args.mailboxes, args.domains, args.name, hash_password(password))
    print(f"{inventory} and {inventory.with_suffix('')}/mail.yml: {args.mailboxes} mailboxes over "
          f"{args.domains} domains; every mailbox's password: {password}")


if __name__ == "__main__":
    main()

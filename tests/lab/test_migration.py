"""Migration in from an old provider (README, "Migrating a client in").

initech.test, a client of the lab's agency, is still at its old provider: oldmail,
made for this scenario only (`lab/labctl add oldmail`, dropped at its end), Debian's
Dovecot over IMAPS and Postfix, the domain's MX. Its three people have years of mail
there (tests/lab/old_mail.py: nested folders, flags and a keyword, dates over ten
years, 8-bit and 5-10 MB messages), one of them a password full of what Dovecot's
configuration treats specially. A variant of the lab's data adds the domain and its
mailboxes to mx1 (and mx2, and the dns host, which still serves the old MX); then:

1. `mailstack migrate` copies it all: every message, by a digest of its whole text,
   with its flags, folder and internal date, old against new; the old side unchanged.
2. Mail that reaches the old provider meanwhile (it is still the MX) is all the second
   migration moves: one message, nothing doubled, nothing already there touched.
3. The MX switch (`mailstack publish` once the data hosts the domain): the next mail
   from outside lands on mx1.

The first migration's figures (messages/s) go to .lab/artifacts/migration.txt.
The steps run in this order; each needs the one before.
"""
import datetime
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mailstack.host.password import hash_password
from mailstack.migrate import report

from .conftest import LAB_DATA, LABCTL, ROOT, deploy, lab_variant
from .mailclient import IMAP, digest, message, wait_for_message, wait_until
from .old_mail import fill, from_utf7, messages
from .test_trusted_mail import send_from_outside

SEED = 16
# Per login of lab/hosts.yml's old_provider, in its order: messages, and large ones.
COUNTS = [(1400, (4_000_000, 7_000_000)), (750, (5_500_000,)), (350, ())]
ARTIFACT = ROOT / ".lab" / "artifacts" / "migration.txt"


@dataclass
class World:
    old: dict               # lab.json's old_provider
    passwords: dict         # old login -> password at the old provider
    new_passwords: dict     # new address -> password on mx1
    data: Path              # the lab's data with initech.test
    map_file: Path
    lab_ca: str
    mx1: object
    total: int
    fill_seconds: float
    expected: dict          # old login -> content() of what was put at the old provider
    after_first: dict       # new address -> state() on mx1 after the first migration

    def old_imap(self, login):
        imap = IMAP(self.old["address"], self.old["fqdn"], 993, self.lab_ca)
        # AUTHENTICATE PLAIN carries any UTF-8 password (LOGIN's quoting does not).
        imap.authenticate("PLAIN", lambda _: f"\0{login}\0{self.passwords[login]}".encode())
        return imap

    def new_imap(self, address):
        return self.mx1.imap({"address": address, "password": self.new_passwords[address]})

    def migrate(self):
        """`mailstack migrate ... --json` as an operator runs it: (result, progress)."""
        run = subprocess.run(
            [sys.executable, "-m", "mailstack", "migrate", "inventory/lab.py", "--from",
             f"imaps://{self.old['fqdn']}", "--map", str(self.map_file), "--json"],
            cwd=ROOT, env={**os.environ, "MAILSTACK_LAB_DATA": str(self.data)},
            capture_output=True, text=True)
        assert run.stdout.startswith("{"), run.stdout[-2000:] + run.stderr[-3000:]
        result = json.loads(run.stdout)
        assert run.returncode == (0 if result["ok"] else 1), run.stderr[-3000:]
        return result, run.stderr


def received(text):
    """An IMAP INTERNALDATE in seconds since the epoch."""
    return int(datetime.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())


def folders(imap):
    """[(IMAP name as LIST gives it, its text with "/" between levels)] of the selectable folders."""
    out = []
    for line in imap.list()[1]:
        m = re.match(rb'\((?P<attrs>[^)]*)\) (?:"(?P<sep>[^"]+)"|NIL) (?P<name>.+)$', line)
        if re.search(rb"\\(Noselect|NonExistent)", m["attrs"], re.I):
            continue
        name = m["name"].decode()
        plain = from_utf7(name[1:-1] if name.startswith('"') else name)
        out.append((name if name.startswith('"') else f'"{name}"',
                    plain.replace(m["sep"].decode(), "/") if m["sep"] else plain))
    return out


def state(imap):
    """{folder: {uid: (digest, flags, internal date)}} of every folder holding mail, as
    an IMAP user sees it (read-only: nothing is marked read)."""
    out = {}
    for name, plain in folders(imap):
        if not int(imap.select(name, readonly=True)[1][0]):
            continue
        meta = {}
        for line in imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE)")[1]:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            flags = tuple(sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split()
                                 if f != "\\Recent"))
            meta[uid] = (flags, received(re.search(rb'INTERNALDATE "([^"]+)"', line).group(1).decode()))
        bodies = {}
        for item in imap.uid("FETCH", "1:*", "(BODY.PEEK[])")[1]:
            if isinstance(item, tuple):
                bodies[int(re.search(rb"UID (\d+)", item[0]).group(1))] = digest(item[1])
        out[plain] = {uid: (bodies[uid], *meta[uid]) for uid in meta}
    return out


def arrived(imap, message_id, timeout=90):
    """Wait for a message without touching it (read-only, nothing marked read)."""
    def found():
        imap.select("INBOX", readonly=True)
        return imap.search(None, "HEADER", "Message-ID", message_id)[1] != [b""]
    wait_until(found, timeout=timeout, what=f"{message_id} did not arrive")


def content(full):
    """What must be equal on both sides: per folder, the sorted (digest, flags, date)."""
    return {folder: sorted(by_uid.values()) for folder, by_uid in full.items()}


def as_put(batch):
    """content() of the messages fill() put at the old provider."""
    out = {}
    for m in batch:
        out.setdefault(m.folder, []).append((m.digest, tuple(sorted(m.flags)), m.received))
    return {folder: sorted(items) for folder, items in out.items()}


@pytest.fixture(scope="module")
def world(lab, hosts, lab_ca, mx1, tmp_path_factory):
    old = lab["old_provider"]
    tmp = tmp_path_factory.mktemp("migration")
    subprocess.run(LABCTL + ["add", old["machine"]], check=True)
    try:
        new_passwords = {address: secrets.token_urlsafe(12) for address in old["logins"].values()}
        data = lab_variant(
            tmp / "mail.yml", ("domains:\n", f"domains:\n  - name: {old['domain']}\n"),
            ("\nmailboxes:\n", "\nmailboxes:\n" + "".join(
                f'  - address: {a}\n    protocols: [imap]\n    password_hash: "{hash_password(p)}"\n'
                for a, p in new_passwords.items())))
        hosts["mx1"].run_expect([0], f"rm -rf /var/vmail/{old['domain']}")     # an earlier run's
        # The old provider, and the client's mailboxes on mx1 (the backup MX and the DNS
        # host know the domain too; its MX stays at the old provider until the publish).
        deploy(data, old["fqdn"], "mx1.acme.test", "mx2.acme.test", "dns.acme.test")
        passwords = yaml.safe_load(Path(old["credentials_file"]).read_text())
        world = World(old, passwords, new_passwords, data, tmp / "initech.yml", lab_ca, mx1, 0, 0, {}, {})
        t0 = time.monotonic()
        for (login, address), (count, large) in zip(old["logins"].items(), COUNTS):
            batch = messages(SEED, address, count, large)
            with world.old_imap(login) as imap:
                fill(imap, batch)
            world.total += len(batch)
            world.expected[login] = as_put(batch)
        world.fill_seconds = time.monotonic() - t0
        # The operator's map: which old login goes where; the passwords stay in labctl's
        # file (mode 600), as an operator's stay in theirs.
        world.map_file.write_text(yaml.safe_dump({
            "credentials": old["credentials_file"],
            "mailboxes": [{"old": login, "new": address} for login, address in old["logins"].items()]}))
        yield world
    finally:
        subprocess.run(LABCTL + ["drop", old["machine"]], check=False)
        # The domain back to a lab zone of the old provider's: its file written anew
        # (Knot then drops what publish added), the resolver forgets the switched MX.
        hosts["dns"].run(f"rm -f /var/lib/knot/zones/{old['domain']}.zone")
        deploy(LAB_DATA, "mx1.acme.test", "mx2.acme.test", "dns.acme.test")
        hosts["dns"].run("systemctl restart unbound")
        hosts["mx1"].run(f"rm -rf /var/vmail/{old['domain']}")


def test_the_first_migration_copies_every_message_with_its_flags_folder_and_date(world):
    first = next(iter(world.old["logins"]))
    with world.old_imap(first) as imap:
        old_folders = sorted(folders(imap))
    t0 = time.monotonic()
    result, progress = world.migrate()
    seconds = time.monotonic() - t0
    assert result["ok"], report(result)
    assert result["copied"] == world.total
    for login, address in world.old["logins"].items():
        with world.old_imap(login) as old, world.new_imap(address) as new:
            # At the old provider as it was put there (the migration only read it) ...
            assert content(state(old)) == world.expected[login], f"{login}: the old provider's mail changed"
            # ... and on mx1 the same: every message, its flags, folder and date.
            world.after_first[address] = state(new)
        assert content(world.after_first[address]) == world.expected[login], login
    with world.old_imap(first) as imap:
        assert sorted(folders(imap)) == old_folders            # nothing made there either
    # The table agrees: every folder's count, old and new.
    for box in result["mailboxes"]:
        assert all(r["old"] == r["new"] and not (r["missing"] or r["duplicated"]) for r in box["folders"])
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        f"{world.total} messages ({len(world.old['logins'])} mailboxes) put at the old provider over "
        f"IMAP in {world.fill_seconds:.1f} s\n"
        f"first migration: {result['copied']} messages copied in {result['seconds']} s of dsync, "
        f"{result['messages_per_second']} messages/s; the whole command {seconds:.1f} s\n\n"
        + progress + "\n" + report(result) + "\n")
    print(ARTIFACT.read_text())
    assert result["messages_per_second"] > 0


def test_mail_that_reaches_the_old_provider_meanwhile_is_all_the_second_migration_moves(world, hosts):
    peter = "peter@initech.test"
    login = next(k for k, v in world.old["logins"].items() if v == peter)
    before = world.after_first[peter]
    # The old provider is still initech.test's MX: mail from outside goes there.
    message_id, text = message("someone@example.test", peter, "to the old MX, before the switch")
    send_from_outside(hosts["outside"], "someone@example.test", [(peter, text)])
    with world.old_imap(login) as imap:
        arrived(imap, message_id)
    result, _ = world.migrate()
    # Only that message moved, and the table finds every folder of every mailbox equal,
    # message by message (when it arrived, its size): nothing doubled.
    assert result["ok"], report(result)
    assert {b["new"]: b["copied"] for b in result["mailboxes"]} == {
        address: int(address == peter) for address in world.old["logins"].values()}
    with world.old_imap(login) as old, world.new_imap(peter) as new:
        old_state, after = state(old), state(new)
    assert content(after) == content(old_state)                 # by digest, flags, date
    # Everything that was there is there as it was, under the same UID; one message more.
    for folder, by_uid in before.items():
        assert {u: m[0] for u, m in by_uid.items()}.items() <= {u: m[0] for u, m in after[folder].items()}.items()
    assert sum(map(len, after.values())) == sum(map(len, before.values())) + 1


def test_after_the_mx_switch_mail_from_outside_lands_on_mx1(world, hosts, resolver):
    domain, peter = world.old["domain"], "peter@initech.test"
    publish = subprocess.run([sys.executable, "-m", "mailstack", "publish", "inventory/lab.py"], cwd=ROOT,
                             env={**os.environ, "MAILSTACK_LAB_DATA": str(world.data)},
                             capture_output=True, text=True)
    assert publish.returncode == 0, publish.stdout + publish.stderr
    # The lab resolver would answer the old MX until its TTL ran out (5 minutes): start afresh.
    hosts["dns"].run_expect([0], "systemctl restart unbound")

    def mx():
        try:
            return sorted(r.to_text() for r in resolver.resolve(domain, "MX"))
        except Exception:
            return []
    wait_until(lambda: mx() == ["10 mx1.acme.test.", "20 mx2.acme.test."], timeout=30,
               what=f"the MX of {domain} is not mx1 and mx2: {mx()}")
    message_id, text = message("someone@example.test", peter, "after the switch")
    send_from_outside(hosts["outside"], "someone@example.test", [(peter, text)])
    with world.new_imap(peter) as imap:
        raw = wait_for_message(imap, message_id, timeout=90)
    assert b"by mx1.acme.test (Postfix) with ESMTPS" in raw
    login = next(k for k, v in world.old["logins"].items() if v == peter)
    with world.old_imap(login) as imap:
        imap.select("INBOX", readonly=True)
        assert imap.search(None, "HEADER", "Message-ID", message_id)[1] == [b""]   # not at the old MX

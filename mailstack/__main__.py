"""mailstack command line.

    python -m mailstack hash-password          read a password, print its hash for the data file
    python -m mailstack check FILE.yml         validate a mail system's data file
    python -m mailstack records FILE.yml       the DNS records, as a zone-file snippet to paste
                                               (DKIM and TLSA need the hosts: use publish)
    python -m mailstack publish INVENTORY.py   publish every record by RFC 2136 (dns.publish)
    python -m mailstack rotate-dkim INVENTORY.py DOMAIN [OVERLAP]
                                               new DKIM key: publish it, sign with it once it
                                               resolves, retire the old one after OVERLAP (7d)
    python -m mailstack queue INVENTORY.py [--flush]
                                               what each backup MX holds, per domain; --flush
                                               sends it to the primary now
    python -m mailstack backup-status INVENTORY.py
                                               each host's last backup; exit 1 if one failed
    python -m mailstack backup-prune INVENTORY.py [--check]
                                               with backup.prune_from: operator, verify and
                                               prune (or check) every repository from here
    python -m mailstack restore-mailbox INVENTORY.py ADDRESS [--as-of TIME]
                                               bring back a mailbox's mail and folders as of
                                               TIME (ISO 8601), keeping mail that came since
    python -m mailstack restore-host INVENTORY.py FQDN [--snapshot ID]
                                               put a host's saved state back (after a deploy
                                               to its replacement); see README
"""
import getpass
import runpy
import shlex
import subprocess
import sys

from .model import DataError, load_system
from .host.password import hash_password


def load(path):
    try:
        return load_system(path)
    except DataError as e:
        sys.exit(f"mailstack: invalid mail data: {e}")


def inventory_system(inventory):
    """The mail system an inventory file carries (it validates the data itself)."""
    groups = runpy.run_path(inventory)
    for value in groups.values():
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            return value[0][1]["mail"], value[0][1]
    sys.exit(f"mailstack: {inventory} holds no mail system")


def publish_system(inventory):
    from .dns import zone_records
    from .facts import gather
    from .publish import publish
    system, data = inventory_system(inventory)
    if not system.dns.publish:
        sys.exit("mailstack: dns.publish is not set: use `records` and publish by hand")
    zones = zone_records(system, facts=gather(inventory, system))
    mail_zones = {z: r for z, r in zones.items() if z in {d.name for d in system.domains}}
    sent = publish(mail_zones, system.dns.publish.server, system.dns.publish.port,
                   data["tsig_key"])
    print(f"published: {sent} zone update(s) sent, {len(mail_zones) - sent} zone(s) unchanged")


def rotate_dkim(inventory, system, domain, overlap, timeout=120):
    """Publish a new key, switch signing once the authoritative server answers
    with it, keep the old key `overlap` seconds (mailstack-dkim-retire.timer
    deletes it; the next publish removes its record)."""
    import time

    import dns.resolver

    from .facts import run_on
    if domain not in {d.name for d in system.domains}:
        sys.exit(f"mailstack: {domain} is not a domain of {system.name}")
    # Every value in a remote command line is quoted: it runs in a root shell.
    (selector,) = run_on(inventory, "primary_mx",
                         f"/usr/local/sbin/mailstack-dkim rotate {shlex.quote(domain)}").values()
    print(f"{domain}: new selector {selector}")
    publish_system(inventory)
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port = [system.dns.publish.server], system.dns.publish.port
    deadline = time.monotonic() + timeout
    while True:
        try:
            r.resolve(f"{selector}._domainkey.{domain}", "TXT")
            break
        except dns.exception.DNSException:
            if time.monotonic() > deadline:
                sys.exit(f"mailstack: {selector}._domainkey.{domain} does not resolve; not switching")
            time.sleep(1)
    run_on(inventory, "primary_mx", "/usr/local/sbin/mailstack-dkim activate "
                                    + shlex.join([domain, selector, str(overlap)]))
    print(f"{domain}: signing with {selector}; the old key retires in {overlap}s")


def backup_prune(inventory, check=False):
    """The stronger mode (backup.prune_from: operator): this machine verifies and
    prunes every repository; the backup hosts never hold a passphrase."""
    from .backup import operator_repositories
    from .host.backup_server import check_all, prune_all
    from .host.backup_tools import Failure
    from .secrets import SECRETS
    system, _ = inventory_system(inventory)
    if not system.backup or system.backup.prune_from != "operator":
        sys.exit("mailstack: backup.prune_from is not 'operator': the backup hosts prune themselves")
    secrets_dir = SECRETS / system.name / "backup"
    failed = False
    for target, repositories in operator_repositories(system, runpy.run_path(inventory),
                                                      secrets_dir).items():
        ledger = secrets_dir / "ledger" / target
        try:
            if check:
                check_all(repositories, ledger)
            else:
                prune_all(repositories, system.backup.keep, ledger)
            print(f"{target}: {len(repositories)} repositories verified and "
                  f"{'checked' if check else 'pruned'}")
        except Failure as e:
            print(f"{target}: {e}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else (None, [])
    if command == "hash-password" and not args:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Again: "):
                sys.exit("mailstack: the two passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            sys.exit("mailstack: empty password")
        print(hash_password(password))
    elif command == "check" and len(args) == 1:
        system = load(args[0])
        print(f"{args[0]}: ok ({len(system.domains)} domains, {len(system.mailboxes)} mailboxes, "
              f"{len(system.aliases)} aliases)")
    elif command == "records" and len(args) == 1:
        from .dns import snippet, zone_records
        print(snippet(zone_records(load(args[0]))), end="")
    elif command == "publish" and len(args) == 1:
        publish_system(args[0])
    elif command == "rotate-dkim" and len(args) in (2, 3):
        from .model import parse_duration
        system, _ = inventory_system(args[0])
        try:
            overlap = parse_duration(args[2] if len(args) == 3 else "7d", "OVERLAP")
        except DataError as e:
            sys.exit(f"mailstack: {e}")
        rotate_dkim(args[0], system, args[1], overlap)
    elif command == "queue" and args[1:] in ([], ["--flush"]):
        from .facts import run_on
        from .queue import FLUSH_COMMAND, QUEUE_COMMAND, per_domain, report
        system, _ = inventory_system(args[0])
        if not system.hosts_with("backup_mx"):
            sys.exit("mailstack: this mail system has no backup MX")
        command = FLUSH_COMMAND if args[1:] else QUEUE_COMMAND
        print(report({h: per_domain(out) for h, out in run_on(args[0], "backup_mx", command).items()}))
    elif command == "backup-status" and len(args) == 1:
        from .backup import STATUS_COMMAND, VERIFICATION_COMMAND, clients, report
        from .facts import run_on
        system, _ = inventory_system(args[0])
        statuses = {}
        for h in clients(system):
            statuses.update(run_on(args[0], h.fqdn, STATUS_COMMAND))
        try:
            verification = run_on(args[0], "backup", VERIFICATION_COMMAND)
        except subprocess.CalledProcessError:
            # A backup host that does not answer: its clients' failed runs say so.
            verification = {}
        text, ok = report(statuses, verification)
        print(text)
        sys.exit(0 if ok else 1)
    elif command == "backup-prune" and args[1:] in ([], ["--check"]):
        backup_prune(args[0], check=bool(args[1:]))
    elif command == "restore-mailbox" and len(args) in (2, 4) and args[2:3] in ([], ["--as-of"]):
        from .facts import run_here
        system, _ = inventory_system(args[0])
        if args[1] not in {m.address for m in system.mailboxes}:
            sys.exit(f"mailstack: {args[1]} is not a mailbox of {system.name}")
        as_of = f" --as-of {shlex.quote(args[3])}" if len(args) == 4 else ""
        sys.exit(0 if run_here(args[0], system.primary_mx.fqdn,
                               f"mailstack-backup restore-mailbox {shlex.quote(args[1])}{as_of}") else 1)
    elif command == "restore-host" and len(args) in (2, 4) and args[2:3] in ([], ["--snapshot"]):
        from .backup import clients
        from .facts import run_here
        system, _ = inventory_system(args[0])
        if args[1] not in {h.fqdn for h in clients(system)}:
            sys.exit(f"mailstack: {args[1]} is not a backed-up host of {system.name}")
        snapshot = f" --snapshot {shlex.quote(args[3])}" if len(args) == 4 else ""
        sys.exit(0 if run_here(args[0], args[1], f"mailstack-backup restore-host{snapshot}") else 1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

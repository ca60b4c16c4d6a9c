"""mailstack command line: `mailstack --help`, and `mailstack COMMAND --help` for each
command (also `python -m mailstack ...`).

Exit codes: 0 done (all well); 1 something needs attention or failed (a backup
failed, invalid data, a change refused, a host step failed); 2 usage error (unknown
command or option, a missing argument).

Commands that act on hosts take the system's inventory (inventory/<system>.py);
deploy takes any number of them, or directories of them;
check, records, mailbox and alias take the data file (inventory/<system>/mail.yml;
mailbox and alias also take the inventory, and find the data beside it).
"""
import argparse
import json
import os
import runpy
import shlex
import ssl
import subprocess
import sys

from . import lifecycle, offboarding
from .deploy_many import deploy as deploy_systems
from .model import DataError, load_system
from .host.password import hash_password
from .host.upgrade import RESUME, UPGRADING
from .yaml_text import Unsupported

EXIT_CODES = """exit codes: 0 done, 1 something needs attention or failed, 2 usage error"""


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


def upgrade_host(inventory, fqdn):
    """Debian 12 -> 13 on one host, nothing lost: this version's deploy first (it
    installs mailstack-upgrade), a backup that must succeed, the host's own package
    step, the deploy again (now rendering for Debian 13), services back, and the mail
    the backup MX held while the host was away sent on."""
    from pathlib import Path
    from .backup import clients
    from .facts import PYINFRA, run_here
    system, _ = inventory_system(inventory)
    if fqdn not in {h.fqdn for h in system.hosts}:
        sys.exit(f"mailstack: {fqdn} is not a host of {system.name}")
    root = Path(__file__).resolve().parent.parent

    def deploy(why, env=None):
        print(f"mailstack: upgrade {fqdn}: deploy ({why})", flush=True)
        if subprocess.run([str(PYINFRA), "-y", "--limit", fqdn, str(Path(inventory).resolve()),
                           "deploy.py"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).returncode != 0:
            sys.exit(f"mailstack: upgrade {fqdn}: the deploy failed; see README, 'Upgrading to Debian 13'")

    def step(command, why):
        print(f"mailstack: upgrade {fqdn}: {why}", flush=True)
        if not run_here(inventory, fqdn, command):
            sys.exit(f"mailstack: upgrade {fqdn}: {why} failed; see README, 'Upgrading to Debian 13'")

    # Run again after a stop halfway (power, network): the package step had begun
    # (mailstack-upgrade's policy-rc.d is in place), so it goes on from there; a deploy
    # now would render for whichever half of the packages is installed.
    if run_here(inventory, fqdn, "grep -qs mailstack-upgrade /usr/sbin/policy-rc.d"):
        print(f"mailstack: upgrade {fqdn}: resuming at the package step", flush=True)
        # Packages the stop left half in place first, with dpkg and apt alone: Python
        # itself (mailstack-upgrade's interpreter) may be one of them.
        step(f"sh -c {shlex.quote(RESUME)}", "packages left half in place")
    else:
        deploy("this version of mailstack first")
        if fqdn in {h.fqdn for h in clients(system)}:
            step("systemctl start mailstack-backup.service", "a backup before anything changes")
    step("mailstack-upgrade prepare", "Debian 13's packages (mail waits at the backup MX)")
    deploy("configuration for Debian 13", {UPGRADING: fqdn})
    step("mailstack-upgrade finish", "services back")
    if system.hosts_with("backup_mx") and fqdn not in {h.fqdn for h in system.hosts_with("backup_mx")}:
        # What the backup MX held for this host's domains meanwhile goes on now.
        from .facts import run_on
        for mx, held in run_on(inventory, "backup_mx", "postqueue -j | wc -l && postqueue -f").items():
            print(f"mailstack: upgrade {fqdn}: the backup MX {mx} held {held} message(s); "
                  "sent on now", flush=True)
    # Debian 12's systemd (PID 1) runs until the machine starts again, beside Debian 13's
    # pam_systemd: each SSH login's user manager fails ("Invalid session class manager").
    print(f"mailstack: upgrade {fqdn}: done; restart the machine when convenient "
          "(Debian 12's systemd runs until then)")


def migrate(inventory, source, map_file, as_json=False):
    """Copy mailboxes from an old provider on the primary (mailstack/migrate.py)."""
    from .migrate import migrate as run
    system, _ = inventory_system(inventory)
    sys.exit(run(inventory, system, source, map_file, as_json))


def hash_password_command():
    print(hash_password(lifecycle.read_password()))


def check(file):
    system = load(file)
    print(f"{file}: ok ({len(system.domains)} domains, {len(system.mailboxes)} mailboxes, "
          f"{len(system.aliases)} aliases, {len(system.shared_mailboxes)} shared mailboxes)")


def records(file):
    from .dns import snippet, zone_records
    print(snippet(zone_records(load(file))), end="")


def rotate(inventory, domain, overlap):
    from .model import parse_duration
    system, _ = inventory_system(inventory)
    try:
        seconds = parse_duration(overlap, "OVERLAP")
    except DataError as e:
        sys.exit(f"mailstack: {e}")
    rotate_dkim(inventory, system, domain, seconds)


def queue(inventory, flush=False, as_json=False):
    from .facts import run_on
    from .queue import FLUSH_COMMAND, QUEUE_COMMAND, per_domain, report
    system, _ = inventory_system(inventory)
    if not system.hosts_with("backup_mx"):
        sys.exit("mailstack: this mail system has no backup MX")
    command = FLUSH_COMMAND if flush else QUEUE_COMMAND
    held = {h: per_domain(out) for h, out in run_on(inventory, "backup_mx", command).items()}
    print(json.dumps(held, indent=2, sort_keys=True) if as_json else report(held))


def backup_status(inventory, as_json=False):
    from .backup import STATUS_COMMAND, VERIFICATION_COMMAND, clients, report, statuses
    from .facts import run_on
    system, _ = inventory_system(inventory)
    outputs = {}
    for h in clients(system):
        outputs.update(run_on(inventory, h.fqdn, STATUS_COMMAND))
    try:
        verification = run_on(inventory, "backup", VERIFICATION_COMMAND)
    except subprocess.CalledProcessError:
        # A backup host that does not answer: its clients' failed runs say so.
        verification = {}
    text, ok = report(outputs, verification)
    if as_json:
        text = json.dumps({"ok": ok, "hosts": statuses(outputs, verification)}, indent=2)
    print(text)
    sys.exit(0 if ok else 1)


def status(inventory, as_json=False, resolver=None, ca=None, html=None, chart_range="7d"):
    import dns.flags
    import dns.resolver

    from . import status as st
    from .backup import STATUS_COMMAND as BACKUP_STATUS, clients, statuses
    from .facts import gather, run_on
    system, _ = inventory_system(inventory)
    lookup = dns.resolver.Resolver(configure=resolver is None)
    if resolver:
        lookup.nameservers = [resolver]
    lookup.use_edns(0, dns.flags.DO, 1232)     # asks for the AD flag (DNSSEC validated)
    lookup.lifetime = 10
    context = ssl.create_default_context(cafile=ca)
    mail_hosts = {h.fqdn for h in [system.primary_mx] + system.backup_mx}
    reports = st.parse_host_reports(run_on(
        inventory, [h.fqdn for h in system.hosts], f"{st.STATUS_COMMAND} {st.peer_arguments(system)}",
        check=False))
    checks = []
    for h in system.hosts:
        rows = st.host_checks(h.fqdn, reports.get(h.fqdn), system.queue.warn_messages)
        checks += [c for c in rows if c.check != "mx reachable" or h.fqdn in mail_hosts]
    backups = run_on(inventory, [h.fqdn for h in clients(system)], BACKUP_STATUS, check=False)
    checks += st.backup_checks(statuses(backups))
    checks += st.dns_checks(system, gather(inventory, system), lookup)
    checks += st.mta_sts_checks(system, lookup, context)
    checks += st.dnsbl_checks(system, lookup)
    print(json.dumps(st.as_json(system.name, checks), indent=2) if as_json else st.table(system.name, checks))
    if html:
        write_page(inventory, system, checks, html, chart_range)
    sys.exit(1 if any(c.problem for c in checks) else 0)


def write_page(inventory, system, checks, path, chart_range):
    """The status page: the checks, the DMARC summary of the same time and, where a
    host monitors the system, its charts over that time."""
    from . import page
    from .facts import run_on
    from .model import DataError, parse_duration
    try:
        seconds = parse_duration(chart_range, "--chart-range")
    except DataError as e:
        sys.exit(f"mailstack: {e}")
    summary = reports_summary(inventory, system, seconds)
    history = None
    watchers = system.hosts_with("monitoring")
    if watchers:
        out = run_on(inventory, watchers[0].fqdn, f"/usr/local/sbin/mailstack-status --history {seconds}",
                     check=False).get(watchers[0].fqdn, "")
        try:
            history = json.loads(out.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            history = {}
    with open(path, "w") as f:
        f.write(page.render(system.name, checks, summary and summary[0], history, span=chart_range))


def reports_summary(inventory, system, seconds):
    """(summary, unreadable) of the reports that reached the reporting address in
    `seconds`, or None when that address is no mailbox of the system."""
    from . import reports as rp
    from .facts import run_on
    mailboxes = system.owners(system.dns.dmarc_reports)
    if not mailboxes:
        return None
    out = run_on(inventory, system.primary_mx.fqdn, rp.FETCH_COMMAND.format(
        since=seconds, mailboxes=" ".join(shlex.quote(m) for m in mailboxes)))
    parsed, unreadable = rp.parse(out.get(system.primary_mx.fqdn, ""))
    return rp.summary(system, parsed), unreadable


def reports(inventory, since="7d", as_json=False, mail=False):
    import base64

    from . import reports as rp
    from .facts import run_here
    from .model import DataError, parse_duration
    system, _ = inventory_system(inventory)
    try:
        seconds = parse_duration(since, "--since")
    except DataError as e:
        sys.exit(f"mailstack: {e}")
    found = reports_summary(inventory, system, seconds)
    if found is None:
        sys.exit(f"mailstack: the reports go to {system.dns.dmarc_reports}, not a mailbox of {system.name}")
    result, unreadable = found
    body = rp.text(result, unreadable)
    print(json.dumps({**result, "unreadable": unreadable}, indent=2) if as_json else body)
    if mail:
        raw = base64.b64encode(rp.digest_message(system, f"The last {since}:\n\n{body}").as_bytes()).decode()
        command = (f"printf %s {raw} | base64 -d | /usr/sbin/sendmail -oi "
                   f"-f {shlex.quote(system.postmaster)} -- {shlex.quote(system.postmaster)}")
        if not run_here(inventory, system.primary_mx.fqdn, command):
            sys.exit("mailstack: the digest was not sent")


def restore_mailbox(inventory, address, as_of=None):
    from .facts import run_here
    system, _ = inventory_system(inventory)
    # A shared mailbox's mail is restored as a person's is.
    if address not in {m.address for m in system.stores}:
        sys.exit(f"mailstack: {address} is not a mailbox of {system.name}")
    option = f" --as-of {shlex.quote(as_of)}" if as_of is not None else ""
    sys.exit(0 if run_here(inventory, system.primary_mx.fqdn,
                           f"mailstack-backup restore-mailbox {shlex.quote(address)}{option}") else 1)


def restore_host(inventory, fqdn, snapshot=None):
    from .backup import clients
    from .facts import run_here
    system, _ = inventory_system(inventory)
    if fqdn not in {h.fqdn for h in clients(system)}:
        sys.exit(f"mailstack: {fqdn} is not a backed-up host of {system.name}")
    option = f" --snapshot {shlex.quote(snapshot)}" if snapshot is not None else ""
    sys.exit(0 if run_here(inventory, fqdn, f"mailstack-backup restore-host{option}") else 1)


def protocol_list(value):
    """--protocols imap,pop3 -> ["imap", "pop3"] (the model checks the names)."""
    return [p.strip() for p in value.split(",")]


def positive(value):
    """--parallel 4 -> 4; 0, -1 or four: a usage error."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number of at least 1")
    return int(value)


def parser():
    """The command line; built at each call, so a test may replace an action."""
    top = argparse.ArgumentParser(
        prog="mailstack", allow_abbrev=False, epilog=EXIT_CODES,
        description="Deploy and run a self-hosted mail system described in one YAML file.")
    commands = top.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name, action, summary, group=commands):
        c = group.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES,
                             allow_abbrev=False)
        if action:
            c.set_defaults(action=action)
        return c

    def inventory(c):
        c.add_argument("inventory", metavar="INVENTORY", help="the system's inventory, inventory/<system>.py")

    def data(c):
        c.add_argument("target", metavar="DATA", help="the data file, inventory/<system>/mail.yml "
                                                      "(or the inventory beside it)")

    def deploy(c):
        c.add_argument("--deploy", action="store_true",
                       help="deploy after the change (needs the inventory: given, or beside the data)")
        c.add_argument("--inventory", metavar="INVENTORY",
                       help="the inventory to deploy, if not the one beside the data")

    def as_json(c):
        c.add_argument("--json", dest="as_json", action="store_true", help="JSON output, for scripts")

    command("hash-password", hash_password_command,
            "read a password (stdin, or typed twice), print its hash for the data file")
    c = command("deploy", deploy_systems, "deploy mail systems side by side (each checked first), "
                                          "then one summary; exit 1 if one failed")
    c.add_argument("paths", metavar="PATH", nargs="+",
                   help="an inventory, inventory/<system>.py, or a directory: each <system>.py "
                        "in it with <system>/mail.yml beside it")
    c.add_argument("--parallel", type=positive, default=4, metavar="N",
                   help="systems deployed at once (default 4)")
    as_json(c)
    c = command("check", check, "validate a mail system's data file")
    c.add_argument("file", metavar="FILE.yml")
    c = command("records", records, "the DNS records, as a zone-file snippet to paste "
                                     "(DKIM and TLSA need the hosts: use publish)")
    c.add_argument("file", metavar="FILE.yml")
    inventory(command("publish", publish_system, "publish every record by RFC 2136 (dns.publish)"))
    c = command("rotate-dkim", rotate, "new DKIM key: publish it, sign with it once it resolves, "
                                       "retire the old one after OVERLAP")
    inventory(c)
    c.add_argument("domain", metavar="DOMAIN")
    c.add_argument("overlap", metavar="OVERLAP", nargs="?", default="7d",
                   help="how long the old key stays (default 7d)")
    c = command("queue", queue, "what each backup MX holds, per domain")
    inventory(c)
    c.add_argument("--flush", action="store_true", help="send it to the primary now")
    as_json(c)
    c = command("status", status, "what needs attention: DNS records, DNSSEC, MTA-STS, services, "
                                  "certificates, queues, disks, quotas, backups, the MX reaching each "
                                  "other; exit 1 if anything does")
    inventory(c)
    c.add_argument("--resolver", metavar="ADDRESS", help="ask this DNS resolver (default: this machine's)")
    c.add_argument("--ca", metavar="FILE", help="trust this CA for the MTA-STS policy (default: the system's)")
    c.add_argument("--html", metavar="FILE", help="also write a self-contained page: the table, the DMARC "
                                                  "summary, charts from the monitoring host")
    c.add_argument("--chart-range", dest="chart_range", default="7d", metavar="DURATION",
                   help="the charts' and reports' time (default 7d)")
    as_json(c)
    c = command("reports", reports, "the DMARC and TLS-RPT reports that reached the reporting "
                                    "address, per domain and source")
    inventory(c)
    c.add_argument("--since", default="7d", metavar="DURATION", help="reports that arrived in this time "
                                                                      "(default 7d)")
    c.add_argument("--mail", action="store_true", help="also mail the summary to the postmaster")
    as_json(c)
    c = command("backup-status", backup_status, "each host's last backup; exit 1 if one failed")
    inventory(c)
    as_json(c)
    c = command("backup-prune", backup_prune, "with backup.prune_from: operator, verify and prune "
                                              "every repository from here")
    inventory(c)
    c.add_argument("--check", action="store_true", help="check the repositories instead of pruning")
    c = command("restore-mailbox", restore_mailbox, "bring back a mailbox's mail and folders as of "
                                                    "a time, keeping mail that came since")
    inventory(c)
    c.add_argument("address", metavar="ADDRESS")
    c.add_argument("--as-of", dest="as_of", metavar="TIME", help="ISO 8601 (default: the last backup)")
    c = command("restore-host", restore_host, "put a host's saved state back (after a deploy to "
                                              "its replacement); see README")
    inventory(c)
    c.add_argument("fqdn", metavar="FQDN")
    c.add_argument("--snapshot", metavar="ID", help="default: the latest")
    c = command("migrate", migrate, "copy mailboxes from an old provider's IMAP server (again: "
                                     "only what is new); prints old vs new per folder")
    inventory(c)
    c.add_argument("--from", dest="source", metavar="imaps://HOST[:PORT]", required=True,
                   help="the old provider's IMAP server (TLS, verified)")
    c.add_argument("--map", dest="map_file", metavar="FILE", required=True,
                   help="YAML: credentials (a file only you can read) and mailboxes "
                        "(old login -> new address); see README")
    as_json(c)
    c = command("upgrade", upgrade_host, "move a host from Debian 12 to 13 in place: backup, "
                                         "packages, deploy, services; see README")
    inventory(c)
    c.add_argument("fqdn", metavar="FQDN")

    mailbox = command("mailbox", None, "add, remove, list, offboard, restore mailboxes, set a password "
                                       "(edits the data file)")
    mailboxes = mailbox.add_subparsers(title="mailbox commands", metavar="COMMAND", required=True)
    c = command("add", lifecycle.mailbox_add, "a new mailbox: its password from stdin or typed "
                                              "twice (stored as a hash); prints its client settings",
                mailboxes)
    data(c)
    c.add_argument("address", metavar="ADDRESS")
    c.add_argument("--quota", metavar="SIZE", help="e.g. 10G (default: its domain's)")
    c.add_argument("--protocols", type=protocol_list, metavar="LIST",
                   help="imap, pop3 or imap,pop3 (default: its domain's)")
    c.add_argument("--name", metavar="NAME", help="the person's name")
    deploy(c)
    c.add_argument("--welcome", action="store_true",
                   help="after --deploy, mail the person their settings (from the postmaster)")
    c = command("remove", lifecycle.mailbox_remove, "remove a mailbox from the data (its mail stays "
                                                    "on the primary)", mailboxes)
    data(c)
    c.add_argument("address", metavar="ADDRESS")
    deploy(c)
    c = command("passwd", lifecycle.mailbox_passwd, "a new password for a mailbox (stdin, or typed "
                                                    "twice)", mailboxes)
    data(c)
    c.add_argument("address", metavar="ADDRESS")
    deploy(c)
    c = command("list", lifecycle.mailbox_list, "every mailbox, its quota and protocols", mailboxes)
    data(c)
    as_json(c)
    c = command("offboard", offboarding.mailbox_offboard,
                "a person leaves: archive their mail (a backup snapshot, and a 7z export with a "
                "passphrase for the client), then make the address an alias, a forward or nothing; "
                "the mail is kept on the primary for offboarding.keep", mailboxes)
    data(c)
    c.add_argument("address", metavar="ADDRESS")
    then = c.add_mutually_exclusive_group(required=True)
    then.add_argument("--alias-to", dest="alias_to", metavar="ADDRESS",
                      help="mail to it goes on to this address of the system (a colleague)")
    then.add_argument("--forward-to", dest="forward_to", metavar="ADDRESS",
                      help="mail to it goes on to this address elsewhere")
    then.add_argument("--remove", action="store_true", help="the address receives no more mail")
    c.add_argument("--export-dir", dest="export_dir", metavar="DIR",
                   help="where the export goes (default: secrets/<system>/offboarded/)")
    deploy(c)
    c = command("restore", offboarding.mailbox_restore,
                "an offboarded mailbox back, with its mail and its password as they were (before "
                "its keep time ends)", mailboxes)
    data(c)
    c.add_argument("address", metavar="ADDRESS")
    deploy(c)

    alias = command("alias", None, "add or remove aliases (edits the data file)")
    aliases = alias.add_subparsers(title="alias commands", metavar="COMMAND", required=True)
    c = command("add", lifecycle.alias_add, "a new alias, or more targets for an existing one", aliases)
    data(c)
    c.add_argument("source", metavar="SOURCE")
    c.add_argument("targets", metavar="TARGET", nargs="+")
    deploy(c)
    c = command("remove", lifecycle.alias_remove, "remove an alias", aliases)
    data(c)
    c.add_argument("source", metavar="SOURCE")
    deploy(c)
    return top


def main(argv=None):
    args = vars(parser().parse_args(argv))
    action = args.pop("action")
    try:
        action(**args)
    except Unsupported as e:
        sys.exit(f"mailstack: {e}")


if __name__ == "__main__":
    main()

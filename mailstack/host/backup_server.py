"""mailstack-backup-server: the backup host's side of every client's repository.

    mailstack-backup-server prune             verify, then apply the retention to every repository
    mailstack-backup-server check             verify every repository and the tool's own check
    mailstack-backup-server status            what verification found, per client (JSON)
    mailstack-backup-server accept CLIENT     take a client's repository as it is now as good
                                              (after the operator looked into an alert)
    mailstack-backup-server snapshots CLIENT  a client's snapshots (JSON)
    mailstack-backup-server files CLIENT      the paths in a client's newest snapshot
    mailstack-backup-server forget CLIENT ID...
                                              remove snapshots (forgeries an alert named)
    mailstack-backup-server rollback CLIENT --to TIME
                                              Borg: undo what the client wrote after TIME
                                              (UTC, ISO 8601), e.g. archives a compromised
                                              client deleted (append-only keeps their data)
    mailstack-backup-server notify-failure    mail the postmaster (systemd OnFailure)

Clients write through an append-only SSH command and cannot remove history; only
this host prunes, and only after it verified what happened since it last looked:
it keeps a ledger of every snapshot it has seen (LEDGER/<client>.json) and refuses
to prune, failing loudly, when a client deleted one (Borg's append-only mode only
hides deleted archives until a server-side prune) or wrote one dated in the future
or before the last verification (forged dates would push real snapshots out of the
keep rules). The keep rules count on the times snapshots arrived here, never on
the dates clients give them. It reads each client's passphrase from
SERVER_CONFIG/<client>.passphrase (root only): pruning needs the repository key.
Settings: SERVER_CONFIG/clients.json.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

from .backup_tools import (SERVER_CONFIG, TOOLS, Failure, Repository, alert_mail, journal,
                           main_with_settings, run_tool)
from .mail import send

CLIENTS = f"{SERVER_CONFIG}/clients.json"
LEDGER = "/var/lib/mailstack-backup-server"
# Clocks may differ this much before a snapshot's date counts as forged into the
# future; a snapshot is dated when its backup started, which may be long before it
# arrives, so one dated before the last verification gets a day.
SKEW = datetime.timedelta(hours=1)
BACKDATE = datetime.timedelta(days=1)
PERIODS = {"hourly": "%Y-%m-%dT%H", "daily": "%Y-%m-%d", "weekly": "%G-W%V", "monthly": "%Y-%m",
           "yearly": "%Y"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def owned_by_client(client):
    """Run a tool, then give what it wrote as root back to the client's account,
    which writes next. Its messages go to the journal (stderr); our own output
    stays what the subcommand prints."""
    def run(argv, env, cwd=None):
        result = run_tool(argv, env, cwd)
        sys.stderr.write(result.stderr)
        subprocess.run(["chown", "-R", f"{client['user']}:{client['user']}",
                        client["repository"]], check=True)
        return result
    return run


def tool_for(settings, client):
    return TOOLS[settings["tool"]](
        Repository(client["host"], path=client["repository"], cache=False),
        f"{SERVER_CONFIG}/{client['host']}.passphrase", run=owned_by_client(client))


def existing(settings):
    return [c for c in settings["clients"]
            if os.path.exists(os.path.join(c["repository"], "config"))]


def client_named(settings, name):
    client = next((c for c in settings["clients"] if c["host"] == name), None)
    if client is None:
        raise Failure(f"no client {name}")
    return client


# --- verification: what happened since the backup host last looked ----------------------

def ledger_file(client, ledger_dir):
    """One ledger per repository: <client>.<tool>.json."""
    return os.path.join(ledger_dir, f"{client['host']}.{os.path.basename(client['repository'])}.json")


def read_ledger(client, ledger_dir=None):
    """{"snapshots": {id: {"arrived", "time"}}, "verified": ISO time or None,
    "problem": text or None, "refused": [ids], "forgetting": [ids]}: what this host
    saw of the client's repository."""
    ledger = {"snapshots": {}, "verified": None, "problem": None, "refused": [], "forgetting": []}
    try:
        with open(ledger_file(client, ledger_dir or LEDGER)) as f:
            ledger.update(json.load(f))
    except (OSError, ValueError):
        pass
    return ledger


def write_ledger(client, ledger, ledger_dir=None):
    ledger_dir = ledger_dir or LEDGER
    os.makedirs(ledger_dir, mode=0o700, exist_ok=True)
    path = ledger_file(client, ledger_dir)
    with open(f"{path}.new", "w") as f:
        json.dump(ledger, f, indent=1, sort_keys=True)
    os.replace(f"{path}.new", path)


def verify(found, ledger, at):
    """(problems, snapshots, refused ids) from the tool's snapshot list `found`
    against the ledger: every snapshot seen before must still be there (but those
    this host was removing), every new one must be dated between the last
    verification and now, and one refused before stays refused until the operator
    acts. A new snapshot arrived at its file's time where the tool has one, else it
    is dated by its own time, held within the window since the last look."""
    known, last = ledger["snapshots"], ledger.get("verified")
    since = datetime.datetime.fromisoformat(last) if last else None
    present = {s["id"]: s for s in found}
    table, future, backdated = {}, [], []
    earlier = sorted(set(ledger.get("refused", [])) & set(present))
    for sid, s in sorted(present.items()):
        if sid in known:
            table[sid] = known[sid]
            continue
        if sid in earlier:
            continue
        if s["time"] > at + SKEW:
            future.append(sid)
        elif since and s["time"] < since - BACKDATE:
            backdated.append(sid)
        arrived = s.get("arrived") or (max(since, min(s["time"], at)) if since else min(s["time"], at))
        table[sid] = {"arrived": arrived.isoformat(), "time": s["time"].isoformat()}
        if s.get("archive") is not None:
            table[sid]["archive"] = s["archive"]
    deleted = sorted(set(known) - set(present) - set(ledger.get("forgetting", [])))
    problems = []
    for what, ids in (("deleted by the client", deleted),
                      ("dated in the future", future),
                      ("dated before the last verification", backdated),
                      ("refused before (forget or accept them)", earlier)):
        if ids:
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            problems.append(f"{len(ids)} snapshot(s) {what}: {shown}")
    return problems, table, sorted(set(future) | set(backdated) | set(earlier))


def keep_by_arrival(table, keep):
    """The snapshots the keep rules hold, counted on arrival times: for each rule
    (daily: 7...), the newest snapshot of each of the newest N periods that have one.
    An offboarding archive (one mailbox alone) is kept whatever the rules, and counts
    for no period: the host's own snapshot of that day stays too."""
    archives = {sid for sid in table if table[sid].get("archive") is not None}
    newest_first = sorted(set(table) - archives,
                          key=lambda sid: (table[sid]["arrived"], table[sid]["time"]), reverse=True)
    kept = set(archives)
    for rule, count in keep.items():
        periods = []
        for sid in newest_first:
            period = datetime.datetime.fromisoformat(table[sid]["arrived"]).strftime(PERIODS[rule])
            if period not in periods:
                if len(periods) == count:
                    break
                periods.append(period)
                kept.add(sid)
    return kept


def verified(client, tool, ledger_dir=None):
    """Verify one client; record what is new. Returns (ledger, problems): on a
    problem the ledger keeps its last good state and remembers what it refused, so
    the alert stays until the operator acts (rollback, forget, accept)."""
    ledger = read_ledger(client, ledger_dir)
    at = now()
    problems, table, refused = verify(tool.snapshots(), ledger, at)
    if problems:
        ledger.update(problem="; ".join(problems), refused=refused)
    else:
        ledger.update(snapshots=table, verified=at.isoformat(), problem=None, refused=[],
                      forgetting=[])
    write_ledger(client, ledger, ledger_dir)
    return ledger, problems


def each_verified(clients, then, doing, ledger_dir=None):
    """Verify each (client, tool), run `then(client, tool, ledger)` for those that
    pass, and fail (exit non-zero, naming each client's problem) if any did not."""
    failures = []
    for client, tool in clients:
        try:
            ledger, problems = verified(client, tool, ledger_dir)
            if problems:
                failures.append(f"{client['host']}: verification failed, not {doing}: "
                                + "; ".join(problems))
            else:
                then(client, tool, ledger)
        except (Failure, OSError, subprocess.CalledProcessError) as e:
            failures.append(f"{client['host']}: {e}" if not isinstance(e, Failure) else str(e))
    if failures:
        raise Failure(" | ".join(failures))


def prune_all(clients, keep, ledger_dir=None):
    """Verify, then apply the keep rules (on arrival times) to each (client, tool)."""
    def apply_retention(client, tool, ledger):
        gone = sorted(set(ledger["snapshots"]) - keep_by_arrival(ledger["snapshots"], keep))
        if gone:
            # Recorded first: if the tool stops halfway, their absence is ours.
            ledger["forgetting"] = gone
            write_ledger(client, ledger, ledger_dir)
            tool.forget(gone)
            for sid in gone:
                del ledger["snapshots"][sid]
            ledger["forgetting"] = []
            write_ledger(client, ledger, ledger_dir)
    each_verified(clients, apply_retention, "pruned", ledger_dir)


def check_all(clients, ledger_dir=None):
    each_verified(clients, lambda client, tool, ledger: tool.check(), "checked", ledger_dir)


def prune(settings, args):
    prune_all([(c, tool_for(settings, c)) for c in existing(settings)], settings["keep"])


def check(settings, args):
    check_all([(c, tool_for(settings, c)) for c in existing(settings)])


def accept(settings, args):
    """The operator looked into an alert: what is there now is the new good state."""
    client = client_named(settings, args.client)
    ledger = read_ledger(client)
    _, table, _ = verify(tool_for(settings, client).snapshots(),
                         {"snapshots": {}, "verified": None}, now())
    # Snapshots seen before keep their arrival times.
    table.update({sid: ledger["snapshots"][sid] for sid in table if sid in ledger["snapshots"]})
    write_ledger(client, {"snapshots": table, "verified": now().isoformat(), "problem": None,
                          "refused": [], "forgetting": []})
    print(json.dumps({"client": args.client, "snapshots": len(table)}))


def forget(settings, args):
    """The operator removes snapshots (forgeries an alert named, say)."""
    client = client_named(settings, args.client)
    tool = tool_for(settings, client)
    known = {s["id"] for s in tool.snapshots()}
    unknown = [sid for sid in args.ids if sid not in known]
    if unknown:
        raise Failure(f"no snapshot {', '.join(unknown)} of {args.client}")
    ledger = read_ledger(client)
    # Recorded first: if the tool stops halfway, their absence is ours.
    ledger["forgetting"] = sorted(set(ledger["forgetting"]) | set(args.ids))
    write_ledger(client, ledger)
    tool.forget(args.ids)
    ledger["forgetting"] = []
    for sid in args.ids:
        ledger["snapshots"].pop(sid, None)
    ledger["refused"] = [sid for sid in ledger["refused"] if sid not in args.ids]
    write_ledger(client, ledger)
    print(json.dumps({"client": args.client, "forgotten": args.ids}))


def status(settings, args):
    report = {}
    for client in settings["clients"]:
        ledger = read_ledger(client)
        report[client["host"]] = {"problem": ledger.get("problem"), "verified": ledger.get("verified"),
                                  "snapshots": len(ledger["snapshots"])}
    print(json.dumps(report, indent=1, sort_keys=True))


def notify_failure(settings, args):
    host = settings["host"]
    problems = {c["host"]: read_ledger(c).get("problem") for c in settings["clients"]}
    lines = [f"  {h}: {p}" for h, p in sorted(problems.items()) if p] or ["  see the log below"]
    send(alert_mail(
        host, settings["postmaster"], f"Backup verification on {host} failed",
        "The backup host did not prune or check these clients' repositories: it found\n"
        "changes no client may make, or a step failed (the log below says which):\n\n"
        + "\n".join(lines) + "\n\nSee README, \"If a mail host is compromised\". Once a "
        "repository is good again:\n  mailstack-backup-server accept CLIENT\n\n"
        + journal("mailstack-backup-prune.service") + journal("mailstack-backup-check.service")))


def files(settings, args):
    tool = tool_for(settings, client_named(settings, args.client))
    print("\n".join(tool.files()))


def snapshots(settings, args):
    tool = tool_for(settings, client_named(settings, args.client))
    print(json.dumps([{"id": s["id"], "time": s["raw_time"]} for s in tool.snapshots()], indent=1))


def rollback(settings, args):
    client = client_named(settings, args.client)
    limit = datetime.datetime.fromisoformat(args.to.replace("Z", "+00:00"))
    if limit.tzinfo:
        limit = limit.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    good, dropped = tool_for(settings, client).rollback(limit)
    print(json.dumps({"client": args.client, "transaction": good, "files_dropped": dropped}))


def parser():
    p = argparse.ArgumentParser(prog="mailstack-backup-server")
    sub = p.add_subparsers(dest="command", required=True)
    for name, func in (("prune", prune), ("check", check), ("status", status),
                       ("notify-failure", notify_failure)):
        sub.add_parser(name).set_defaults(func=func)
    for name, func in (("snapshots", snapshots), ("files", files), ("accept", accept)):
        s = sub.add_parser(name)
        s.add_argument("client")
        s.set_defaults(func=func)
    s = sub.add_parser("forget")
    s.add_argument("client")
    s.add_argument("ids", nargs="+")
    s.set_defaults(func=forget)
    s = sub.add_parser("rollback")
    s.add_argument("client")
    s.add_argument("--to", required=True)
    s.set_defaults(func=rollback)
    return p


def main(argv=None, settings_file=CLIENTS):
    main_with_settings("mailstack-backup-server", parser(), argv, settings_file)

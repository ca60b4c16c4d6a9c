"""mailstack-backup-server: the backup host's side of every client's repository.

    mailstack-backup-server prune             apply the retention to every repository
    mailstack-backup-server check             verify every repository
    mailstack-backup-server snapshots CLIENT  a client's snapshots (JSON)
    mailstack-backup-server files CLIENT      the paths in a client's newest snapshot
    mailstack-backup-server rollback CLIENT --to TIME
                                              Borg: undo what the client wrote after TIME
                                              (UTC, ISO 8601), e.g. archives a compromised
                                              client deleted (append-only keeps their data)

Clients write through an append-only SSH command and cannot remove history; only
this host prunes. It reads each client's passphrase from SERVER_CONFIG/<client>.passphrase
(root only): pruning needs the repository key. Settings: SERVER_CONFIG/clients.json.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

from .backup_tools import (SERVER_CONFIG, TOOLS, Failure, Repository, main_with_settings,
                           run_tool)

CLIENTS = f"{SERVER_CONFIG}/clients.json"


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


def prune(settings, args):
    for client in existing(settings):
        tool_for(settings, client).prune(settings["keep"])


def check(settings, args):
    for client in existing(settings):
        tool_for(settings, client).check()


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
    sub.add_parser("prune").set_defaults(func=prune)
    sub.add_parser("check").set_defaults(func=check)
    for name, func in (("snapshots", snapshots), ("files", files)):
        s = sub.add_parser(name)
        s.add_argument("client")
        s.set_defaults(func=func)
    s = sub.add_parser("rollback")
    s.add_argument("client")
    s.add_argument("--to", required=True)
    s.set_defaults(func=rollback)
    return p


def main(argv=None, settings_file=CLIENTS):
    main_with_settings("mailstack-backup-server", parser(), argv, settings_file)

"""Turn a validated mail system into pyinfra inventory groups.

Used from inventory files (inventory/<system>.py). The model is loaded and checked
here, while pyinfra reads the inventory: before it connects to any host.
"""
import sys
from pathlib import Path

from . import backup
from .model import DataError, load_system, relay_password
from .secrets import backup_environment, backup_secrets, tsig_key


def inventory(mail_yml, connection=None, extra_groups=None, **shared_data):
    """pyinfra groups (one per host role) for the mail system in `mail_yml`.

    connection: optional {fqdn: {pyinfra connector data}}; by default each host is
    reached over SSH at its FQDN, or at hosts.<fqdn>.ssh in the data file.
    extra_groups: {group: [(name, data), ...]} for hosts outside the mail system.
    """
    try:
        system = load_system(Path(mail_yml))
    except DataError as e:
        # SystemExit passes through pyinfra untouched: one line, exit code 1.
        sys.exit(f"mailstack: invalid mail data: {e}")
    connection = connection or {}
    if system.dns.publish:
        shared_data.setdefault("tsig_key", tsig_key(system.name, system.dns.publish.tsig_algorithm))
    # Backup passphrases and SSH keys: made once on the operator's side (secrets/).
    keys = {h.fqdn: backup_secrets(system.name, h.fqdn) for h in backup.clients(system)}
    environments = {}
    for r in system.backup.repositories if system.backup else ():
        if r.environment:
            environments[r.name] = backup_environment(system.name, r.environment)
            if environments[r.name] is None:
                sys.exit(f"mailstack: invalid mail data: {mail_yml}: backup.repositories: "
                         f"'{r.environment}' (environment of '{r.name}') is not in "
                         f"secrets/{system.name}/backup/")
    # The smarthost's password (checked by the model): read here, on the operator's
    # machine, and given to the primary only, which sends through it.
    relay = system.relay
    password = relay_password(relay) if relay and relay.username else None
    groups = {}
    for h in system.hosts:
        data = {"mail": system, "fqdn": h.fqdn, "address": h.address, **shared_data}
        if password and "primary_mx" in h.roles:
            data["relay_password"] = password
        if h.fqdn in keys:
            data["backup_secret"] = {**keys[h.fqdn], "environments": environments}
        if "backup" in h.roles:
            data["backup_clients"] = keys
        ssh = {f"ssh_{k}": v for k, v in h.ssh.items()}
        data.update(ssh or connection.get(h.fqdn, {}))
        for role in h.roles:
            groups.setdefault(role, []).append((h.fqdn, data))
    for group, hosts in (extra_groups or {}).items():
        groups.setdefault(group, []).extend(
            (name, {"mail": system, **shared_data, **data}) for name, data in hosts)
    return groups

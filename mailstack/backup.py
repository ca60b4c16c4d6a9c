"""What each host's backups hold and where they go (pure logic, from the model)."""
import hashlib
import json

from .host.backup_tools import CLIENT_CONFIG, DUMPS, repository_path
from .model import Host, MailSystem

STATUS_COMMAND = ("/usr/local/sbin/mailstack-backup status 2>/dev/null || echo '{}'; "
                  "systemctl show -P NextElapseUSecRealtime mailstack-backup.timer")
# On a backup host: what its verification found per client (mailstack-backup-server).
VERIFICATION_COMMAND = "/usr/local/sbin/mailstack-backup-server status 2>/dev/null || echo '{}'"

# Paths saved on every backed-up host, then per role. Config comes with data: a
# restore needs nothing but a normal deploy and these.
COMMON = ["/var/lib/mailstack", "/etc/letsencrypt", DUMPS]
BY_ROLE = {
    "primary_mx": ["/var/vmail", "/etc/dovecot", "/etc/postfix", "/etc/rspamd", "/var/lib/rspamd",
                   "/etc/nginx", "/etc/roundcube"],
    "backup_mx": ["/etc/postfix", "/etc/rspamd", "/var/lib/rspamd", "/etc/nginx"],
    "dns": ["/etc/knot", "/var/lib/knot"],
}


def client_entry(fqdn: str, tool: str) -> dict:
    """A backed-up host as a backup host serves it: its account and repository."""
    return {"host": fqdn, "user": account(fqdn), "repository": repository_path(fqdn, tool)}


def server_settings(system: MailSystem, fqdn: str, clients_secrets) -> dict:
    """The backup host `fqdn`'s clients.json (mailstack-backup-server)."""
    tool = system.backup.tool
    return {"tool": tool, "keep": system.backup.keep, "host": fqdn, "postmaster": system.postmaster,
            "clients": [client_entry(c, tool) for c in sorted(clients_secrets)]}


def clients(system: MailSystem) -> list[Host]:
    """Every host whose state is backed up: all but the backup hosts themselves (and
    monitoring hosts beside them: their metrics are not worth a restore)."""
    return [h for h in system.hosts if set(h.roles) - {"backup", "monitoring"}] if system.backup else []


def account(fqdn: str) -> str:
    """The client's user on a backup host (at most 32 characters, unique per FQDN)."""
    name = "bk-" + fqdn.replace(".", "-")
    if len(name) > 32:
        name = f"bk-{fqdn.split('.')[0][:20]}-{hashlib.sha256(fqdn.encode()).hexdigest()[:8]}"
    return name


def paths(host: Host) -> list[str]:
    return list(dict.fromkeys(COMMON + [p for r in host.roles for p in BY_ROLE.get(r, [])]))


def settings(system: MailSystem, host: Host, php_fpm: str = "php8.4-fpm") -> dict:
    """The client's settings.json (mailstack-backup, mailstack/host/backup.py);
    php_fpm: the host's PHP unit (its Debian release's)."""
    b = system.backup
    by_fqdn = {h.fqdn: h for h in system.hosts}
    return {
        "tool": b.tool,
        "host": host.fqdn,
        "paths": paths(host),
        # Stopped while a restore puts the host's state back, started again in this order.
        "services": ["redis-server", "rspamd", "dovecot", "postfix", php_fpm, "nginx", "knot"],
        "dumps": DUMPS,
        "postmaster": system.postmaster,
        "roundcube_database": system.webmail.database if "primary_mx" in host.roles else None,
        "targets": [{"host": t, "address": by_fqdn[t].address, "user": account(host.fqdn),
                     "repository": repository_path(host.fqdn, b.tool)} for t in b.targets]
                   # The operator's own repositories: nobody prunes them for us.
                   + [{"host": r.name, "url": r.url.replace("{host}", host.fqdn),
                       "environment": f"{CLIENT_CONFIG}/{r.name}.env" if r.environment else None,
                       "keep": b.keep} for r in b.repositories],
    }


def statuses(outputs: dict, verification: dict | None = None) -> list[dict]:
    """One row per host (host, tool, last_success, next_run, problem: "" when well)
    from each host's STATUS_COMMAND output and each backup host's
    VERIFICATION_COMMAND output. A host is not well when its last run failed, it
    never completed a backup, or a backup host found its repository tampered with."""
    refused = {}
    for backup_host, out in sorted((verification or {}).items()):
        for client, found in json.loads(out or "{}").items():
            if found.get("problem"):
                refused.setdefault(client, []).append(f"{backup_host} refused to prune: {found['problem']}")
    rows = []
    for fqdn, out in sorted(outputs.items()):
        text, _, next_run = out.rpartition("\n") if "\n" in out else (out, "", "")
        status = json.loads(text or "{}")
        problems = [status.get("last_error") or ("" if status.get("last_success") else "no backup yet")]
        rows.append({"host": fqdn, "tool": status.get("tool"), "last_success": status.get("last_success"),
                     "next_run": next_run.strip() or None,
                     "problem": "; ".join(p for p in problems + refused.get(fqdn, []) if p)})
    return rows


def report(outputs: dict, verification: dict | None = None) -> tuple[str, bool]:
    """(table, all well): statuses() for a person."""
    rows = statuses(outputs, verification)
    lines = [f"{'host':24} {'tool':7} {'last success':26} {'next run':30} problem"]
    lines += [f"{r['host']:24} {r['tool'] or '-':7} {r['last_success'] or 'never':26} "
              f"{r['next_run'] or '-':30} {r['problem'] or 'ok'}" for r in rows]
    return "\n".join(lines), not any(r["problem"] for r in rows)


def ssh_to(data: dict, fqdn: str) -> tuple[list[str], str, bool]:
    """(ssh command, login, is root) to reach a host the way pyinfra does, from its
    inventory data (ssh_* settings)."""
    argv = ["ssh", "-o", "BatchMode=yes"]
    if data.get("ssh_key"):
        argv += ["-i", str(data["ssh_key"]), "-o", "IdentitiesOnly=yes"]
    if data.get("ssh_port"):
        argv += ["-p", str(data["ssh_port"])]
    if data.get("ssh_known_hosts_file"):
        argv += ["-o", f"UserKnownHostsFile={data['ssh_known_hosts_file']}"]
    if data.get("ssh_strict_host_key_checking"):
        argv += ["-o", f"StrictHostKeyChecking={data['ssh_strict_host_key_checking']}"]
    user = data.get("ssh_user")
    address = data.get("ssh_hostname") or fqdn
    return argv, f"{user}@{address}" if user else address, user in (None, "root")


def host_data(groups: dict) -> dict:
    """{host: its inventory data} from an inventory's groups (runpy.run_path)."""
    return {name: d for hosts in groups.values() if isinstance(hosts, list)
            for name, d in hosts if isinstance(d, dict)}


def operator_repositories(system: MailSystem, groups: dict, secrets_dir) -> dict:
    """{backup host: [(client, tool)]}: every repository on every backup host, reached
    from the operator's machine with full access (backup.prune_from: operator). The
    tool runs here with the passphrase from secrets/; the backup host only serves
    the repository's files, as the client's account."""
    from .host.backup_tools import TOOLS, Repository
    data = host_data(groups)
    by_target = {}
    for target in system.backup.targets:
        ssh, login, root = ssh_to(data.get(target, {}), target)
        for h in clients(system):
            client = client_entry(h.fqdn, system.backup.tool)
            user = client["user"]
            repo = Repository(f"{h.fqdn} on {target}", path=client["repository"], login=login,
                              ssh=ssh, remote_as=f"runuser -u {user} --" if root else f"sudo -n -u {user}")
            by_target.setdefault(target, []).append((client, TOOLS[system.backup.tool](
                repo, str(secrets_dir / f"{h.fqdn}.passphrase"))))
    return by_target

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


def server_settings(system: MailSystem, fqdn: str, clients_secrets) -> dict:
    """The backup host `fqdn`'s clients.json (mailstack-backup-server)."""
    tool = system.backup.tool
    return {"tool": tool, "keep": system.backup.keep, "host": fqdn, "postmaster": system.postmaster,
            "clients": [{"host": fqdn, "user": account(fqdn), "repository": repository_path(fqdn, tool)}
                        for fqdn in sorted(clients_secrets)]}


def clients(system: MailSystem) -> list[Host]:
    """Every host whose state is backed up: all but the backup hosts themselves."""
    return [h for h in system.hosts if set(h.roles) - {"backup"}] if system.backup else []


def account(fqdn: str) -> str:
    """The client's user on a backup host (at most 32 characters, unique per FQDN)."""
    name = "bk-" + fqdn.replace(".", "-")
    if len(name) > 32:
        name = f"bk-{fqdn.split('.')[0][:20]}-{hashlib.sha256(fqdn.encode()).hexdigest()[:8]}"
    return name


def paths(host: Host) -> list[str]:
    return list(dict.fromkeys(COMMON + [p for r in host.roles for p in BY_ROLE.get(r, [])]))


def settings(system: MailSystem, host: Host) -> dict:
    """The client's settings.json (mailstack-backup, mailstack/host/backup.py)."""
    b = system.backup
    by_fqdn = {h.fqdn: h for h in system.hosts}
    return {
        "tool": b.tool,
        "host": host.fqdn,
        "paths": paths(host),
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


def report(outputs: dict, verification: dict | None = None) -> tuple[str, bool]:
    """(table, all well) from each host's STATUS_COMMAND output and each backup
    host's VERIFICATION_COMMAND output. A host is not well when its last run failed,
    it never completed a backup, or a backup host found its repository tampered with."""
    lines, ok = [f"{'host':24} {'tool':7} {'last success':26} {'next run':30} problem"], True
    refused = {}
    for backup_host, out in sorted((verification or {}).items()):
        for client, found in json.loads(out or "{}").items():
            if found.get("problem"):
                refused.setdefault(client, []).append(f"{backup_host} refused to prune: {found['problem']}")
    for fqdn, out in sorted(outputs.items()):
        text, _, next_run = out.rpartition("\n") if "\n" in out else (out, "", "")
        status = json.loads(text or "{}")
        problems = [status.get("last_error") or ("" if status.get("last_success") else "no backup yet")]
        problem = "; ".join(p for p in problems + refused.get(fqdn, []) if p)
        ok = ok and not problem
        lines.append(f"{fqdn:24} {status.get('tool', '-'):7} {status.get('last_success', 'never'):26} "
                     f"{next_run.strip() or '-':30} {problem or 'ok'}")
    return "\n".join(lines), ok

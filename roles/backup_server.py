"""A backup host: one account per backed-up host, whose SSH key may run only that
host's append-only repository server (Borg's `borg serve --append-only`, or rclone's
REST server for restic); retention (prune) and checks run here, by timers.

Pruning needs each repository's key, so this host keeps the clients' passphrases
(root only). A client can add snapshots but never remove one.
"""
import json
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.backup import BASE, account, repository
from roles import template

PACKAGES = ["restic", "rclone", "borgbackup", "openssh-server"]
CONFIG = "/etc/mailstack-backup"
SERVE = {
    "restic": "rclone serve restic --stdio --append-only --config '' {repo}",
    "borg": "borg serve --append-only --restrict-to-repository {repo}",
}


def apply():
    mail = host.data.mail
    tool = mail.backup.tool
    files.directory(name=f"backup host: {BASE}", path=BASE, mode="755")
    files.directory(name=f"backup host: {CONFIG}", path=CONFIG, mode="700")
    clients = []
    for fqdn, secret in sorted(host.data.backup_clients.items()):
        user, home, repo = account(fqdn), f"{BASE}/{fqdn}", repository(fqdn, tool)
        server.group(name=f"backup host: group {user}", group=user, system=True)
        server.user(name=f"backup host: account {user}", user=user, group=user, home=home,
                    shell="/bin/sh", system=True, create_home=False, ensure_home=False)
        # The account cannot change its own keys or anything but its repository.
        files.directory(name=f"backup host: {home}", path=home, mode="755", user="root",
                        group="root")
        files.directory(name=f"backup host: {home}/.ssh", path=f"{home}/.ssh", mode="755",
                        user="root", group="root")
        command = SERVE[tool].format(repo=repo)
        files.put(name=f"backup host: {fqdn} key", dest=f"{home}/.ssh/authorized_keys", mode="644",
                  src=StringIO(f'command="{command}",restrict {secret["ssh_public_key"]}\n'))
        files.directory(name=f"backup host: {repo}", path=repo, user=user, group=user, mode="700")
        files.put(name=f"backup host: {fqdn} passphrase", dest=f"{CONFIG}/{fqdn}.passphrase",
                  src=StringIO(secret["passphrase"] + "\n"), mode="600")
        clients.append({"host": fqdn, "user": user, "repository": repo})
    files.put(name="backup host: clients", dest=f"{CONFIG}/clients.json", mode="600",
              src=StringIO(json.dumps({"tool": tool, "keep": mail.backup.keep, "clients": clients},
                                      indent=1, sort_keys=True) + "\n"))
    template("backup_server", "/usr/local/sbin/mailstack-backup-server", mode="755", config=CONFIG)
    units = [template("backup_server", f"/etc/systemd/system/mailstack-backup-{job}.{kind}")
             for job in ("prune", "check") for kind in ("service", "timer")]
    systemd.daemon_reload(name="backup host: systemd reload", _if=any_changed(*units))
    for job in ("prune", "check"):
        systemd.service(name=f"backup host: {job} timer", service=f"mailstack-backup-{job}.timer",
                        running=True, enabled=True)

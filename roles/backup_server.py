"""A backup host: one account per backed-up host, whose SSH key may run only that
host's append-only repository server (the tool's own, from its adapter in
mailstack/host/backup_tools.py); retention (prune) and checks run here, by timers.

Pruning needs each repository's key, so this host keeps the clients' passphrases
(root only), unless `backup.prune_from: operator`: then the operator's machine
verifies and prunes (`mailstack backup-prune`) and this host holds no passphrase.
A client can add snapshots but never remove one.
"""
import json

from pyinfra import host
from pyinfra.operations import files, server, systemd

from mailstack.backup import client_entry, server_settings
from mailstack.host.backup_server import LEDGER
from mailstack.host.backup_tools import REPOSITORIES, SERVER_CONFIG, TOOLS
from roles import Service


class BackupServer(Service):
    name = "backup_server"
    PACKAGES = ("openssh-server",)

    def packages(self):
        return [*self.PACKAGES, *TOOLS[host.data.mail.backup.tool].server_packages]

    def configure(self):
        mail = host.data.mail
        tool = TOOLS[mail.backup.tool]
        prunes_here = mail.backup.prune_from == "backup_host"
        files.directory(name=f"backup host: {REPOSITORIES}", path=REPOSITORIES, mode="755")
        files.directory(name=f"backup host: {SERVER_CONFIG}", path=SERVER_CONFIG, mode="700")
        for fqdn, secret in sorted(host.data.backup_clients.items()):
            client = client_entry(fqdn, tool.name)
            user, home, repo = client["user"], f"{REPOSITORIES}/{fqdn}", client["repository"]
            server.group(name=f"backup host: group {user}", group=user, system=True)
            server.user(name=f"backup host: account {user}", user=user, group=user, home=home,
                        shell="/bin/sh", system=True, create_home=False, ensure_home=False)
            # The account cannot change its own keys or anything but its repository.
            for path in (home, f"{home}/.ssh"):
                files.directory(name=f"backup host: {path}", path=path, mode="755", user="root",
                                group="root")
            self.put(f"{home}/.ssh/authorized_keys",
                     f'command="{tool.serve(repo)}",restrict {secret["ssh_public_key"]}\n',
                     watch=False)
            files.directory(name=f"backup host: {repo}", path=repo, user=user, group=user,
                            mode="700")
            passphrase = f"{SERVER_CONFIG}/{fqdn}.passphrase"
            if prunes_here:
                self.put(passphrase, secret["passphrase"] + "\n", mode="600", watch=False)
            else:
                # backup.prune_from: operator: this host never holds a passphrase.
                files.file(name=f"backup host: no {passphrase}", path=passphrase, present=False)
        self.put(f"{SERVER_CONFIG}/clients.json",
                 json.dumps(server_settings(mail, host.data.fqdn, host.data.backup_clients), indent=1,
                            sort_keys=True) + "\n", mode="600", watch=False)
        self.program("mailstack-backup-server")
        timers = ["mailstack-backup-prune.timer", "mailstack-backup-check.timer"]
        self.units(*[f"mailstack-backup-{job}.{kind}" for job in ("prune", "check")
                     for kind in ("service", "timer")], "mailstack-backup-alert.service",
                   start=timers if prunes_here else [])
        for timer in [] if prunes_here else timers:
            systemd.service(name=f"backup host: {timer} off (the operator prunes)",
                            service=timer, running=False, enabled=False)
        if not prunes_here:
            # Its ledger goes stale while the operator prunes: when this host prunes
            # again, it starts a new one from what it finds then.
            files.directory(name="backup host: no ledger of its own", path=LEDGER, present=False)


backup_server = BackupServer()

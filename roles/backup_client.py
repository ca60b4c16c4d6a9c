"""Encrypted backups of this host to the backup hosts (restic or Borg, from the
data), by a systemd timer; restores with mailstack-backup (see README, "Backups and
restore").

The repository passphrase and the SSH key come from the operator's secrets/ (made
there once, never in git): a replacement machine gets the same ones from a normal
deploy, which is what lets it read its predecessor's backups.
"""
import json

from pyinfra import host
from pyinfra.operations import files

from mailstack.backup import settings
from mailstack.host.backup_tools import CLIENT_CONFIG, TOOLS
from roles import Service, release


class BackupClient(Service):
    name = "backup_client"

    def packages(self):
        if not host.data.backup_secret:
            return []
        return ["openssh-client", *TOOLS[host.data.mail.backup.tool].packages]

    def configure(self):
        secret = host.data.backup_secret
        if not secret:
            return
        mail = host.data.mail
        me = next(h for h in mail.hosts if h.fqdn == host.data.fqdn)
        files.directory(name=f"backup: {CLIENT_CONFIG}", path=CLIENT_CONFIG, mode="700",
                        user="root", group="root")
        secrets = {"passphrase": secret["passphrase"] + "\n", "id_ed25519": secret["ssh_key"],
                   **{f"{name}.env": text for name, text in secret["environments"].items()}}
        for name, content in secrets.items():
            self.put(f"{CLIENT_CONFIG}/{name}", content, mode="600", watch=False)
        self.put(f"{CLIENT_CONFIG}/settings.json",
                 json.dumps(settings(mail, me, release().php_fpm), indent=1, sort_keys=True) + "\n", watch=False)
        self.program("mailstack-backup")
        self.units("mailstack-backup.service", "mailstack-backup-failed.service",
                   "mailstack-backup.timer", start=["mailstack-backup.timer"])


backup_client = BackupClient()

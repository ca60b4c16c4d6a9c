"""Encrypted backups of this host to the backup hosts (restic or Borg, from the
data), by a systemd timer; restores with mailstack-backup (see README, "Backups and
restore").

The repository passphrase and the SSH key come from the operator's secrets/ (made
there once, never in git): a replacement machine gets the same ones from a normal
deploy, which is what lets it read its predecessor's backups.
"""
import json
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from mailstack.backup import CONFIG, settings
from roles import template

TOOL_PACKAGES = {"restic": ["restic"], "borg": ["borgbackup"]}


def packages():
    backup = host.data.mail.backup
    return ["openssh-client"] + TOOL_PACKAGES[backup.tool] if host.data.backup_secret else []


def config_file(name, content, mode="600"):
    return files.put(name=f"backup: {CONFIG}/{name}", src=StringIO(content),
                     dest=f"{CONFIG}/{name}", mode=mode, user="root", group="root")


def apply():
    secret = host.data.backup_secret
    if not secret:
        return
    mail = host.data.mail
    me = next(h for h in mail.hosts if h.fqdn == host.data.fqdn)
    files.directory(name=f"backup: {CONFIG}", path=CONFIG, mode="700", user="root", group="root")
    config_file("passphrase", secret["passphrase"] + "\n")
    config_file("id_ed25519", secret["ssh_key"])
    for name, content in secret["environments"].items():
        config_file(f"{name}.env", content)
    config_file("settings.json", json.dumps(settings(mail, me), indent=1, sort_keys=True) + "\n",
                mode="644")
    template("backup_client", "/usr/local/sbin/mailstack-backup", mode="755", config=CONFIG)
    units = [template("backup_client", f"/etc/systemd/system/{unit}")
             for unit in ("mailstack-backup.service", "mailstack-backup-failed.service",
                          "mailstack-backup.timer")]
    systemd.daemon_reload(name="backup: systemd reload", _if=any_changed(*units))
    systemd.service(name="backup: timer", service="mailstack-backup.timer", running=True,
                    enabled=True)

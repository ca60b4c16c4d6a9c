"""Secrets made on the operator's side, kept out of git (secrets/<system>/, mode 600).

Keep this directory safe (and backed up): the DNS update key and the backup
passphrases are needed to run a mail system after losing a host. Without a host's
backup passphrase its backups cannot be read by anyone.
"""
import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
SECRETS = Path(os.environ.get("MAILSTACK_SECRETS", ROOT / "secrets"))


def _part(name):
    """`name` as one path component: the model checks the names, this keeps a caller
    that skipped it from writing outside secrets/."""
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"not a file name under secrets/: {name!r}")
    return name


def _dir(system):
    d = SECRETS / _part(system)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def tsig_key(system, algorithm):
    """The TSIG key DNS updates for this mail system are signed with; made once."""
    path = _dir(system) / "tsig.json"
    if path.exists():
        key = json.loads(path.read_text())
        if key["algorithm"] == algorithm:
            return key
    key = {"name": f"mailstack-{system}.", "algorithm": algorithm,
           "secret": base64.b64encode(secrets.token_bytes(32)).decode()}
    path.write_text(json.dumps(key) + "\n")
    path.chmod(0o600)
    return key


def _made_once(path, make):
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".new")
        tmp.write_text(make())
        tmp.chmod(0o600)
        tmp.rename(path)
    return path.read_text()


def backup_secrets(system, fqdn):
    """{"passphrase", "ssh_key", "ssh_public_key"} of one host's backups; made once.

    The passphrase encrypts the host's backups; the SSH key lets the host (and only
    its backup command) into the backup hosts."""
    d = _dir(system) / "backup"
    passphrase = _made_once(d / f"{_part(fqdn)}.passphrase", lambda: secrets.token_urlsafe(32) + "\n")

    def ssh_key():
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()).decode()

    key = _made_once(d / f"{fqdn}.ssh", ssh_key)
    public = serialization.load_ssh_private_key(key.encode(), None).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return {"passphrase": passphrase.strip(), "ssh_key": key,
            "ssh_public_key": f"{public} mailstack-backup@{fqdn}"}


def backup_environment(system, filename):
    """The operator's credentials file for a repository (secrets/<system>/backup/)."""
    path = SECRETS / _part(system) / "backup" / _part(filename)
    try:
        return path.read_text()
    except OSError:
        return None


def offboarded_dir(system):
    """Where offboarding exports and their passphrases go (secrets/<system>/offboarded/)."""
    d = _dir(system) / "offboarded"
    d.mkdir(exist_ok=True, mode=0o700)
    return d


def write_secret(path, text):
    """A new file only the operator reads (mode 600 from its first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

"""Secrets made on the operator's side, kept out of git (secrets/<system>/, mode 600).

Keep this directory safe (and backed up): the DNS update key and, later, backup
passphrases are needed to run a mail system after losing a host.
"""
import base64
import json
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = Path(os.environ.get("MAILSTACK_SECRETS", ROOT / "secrets"))


def _dir(system):
    d = SECRETS / system
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

"""Values that live on the hosts and go into DNS: each MX's TLS key hash (TLSA)
and, per mail domain, the DKIM public keys. Read through pyinfra, with the same
connection settings as the deploy."""
import json
import re
import subprocess
import sys
from pathlib import Path

PYINFRA = Path(sys.executable).parent / "pyinfra"
DKIM_COMMAND = "/usr/local/sbin/mailstack-dkim list"
TLSA_COMMAND = ("openssl x509 -in /etc/letsencrypt/live/mailstack/cert.pem -noout -pubkey"
                " | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1")


def run_on(inventory, group, command, check=True):
    """{host: stdout} of `command` on every host of `group` (a group or FQDN, or a
    list of them; through pyinfra's Command fact: the deploy's connection settings
    and sudo). check=False: a host that fails or does not answer is left out."""
    limits = [group] if isinstance(group, str) else group
    result = subprocess.run(
        [str(PYINFRA), "-y", "--json", *[a for g in limits for a in ("--limit", g)], str(inventory),
         "fact", "server.Command", f"command={command}"],
        capture_output=True, text=True, check=check)
    try:
        (by_host,) = json.loads(result.stdout).values()   # {"server.Command (...)": {host: out}}
    except (ValueError, json.JSONDecodeError):
        return {}
    return {h: (v or "").strip() for h, v in by_host.items()}


def run_here(inventory, limit, command):
    """Run `command` on the hosts that `limit` names (a group or an FQDN), over the
    deploy's connection, printing what it prints; True if it succeeded everywhere."""
    result = subprocess.run([str(PYINFRA), "-y", "--limit", limit, str(inventory), "exec", "--",
                             command], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        m = re.match(r"\[([^\]]+)\]\s+(\S.*)", line)
        if m and m.group(2) not in ("Success", "Error") and not m.group(2).startswith("Error:"):
            print(f"{m.group(1)}: {m.group(2)}")
    if result.returncode != 0:
        # What the command and pyinfra said (the command's errors reach pyinfra's
        # stderr: dpkg names the package whose script failed lines before apt's last word).
        print("\n".join(f"  pyinfra: {line}" for line in result.stderr.strip().splitlines()[-40:]))
    return result.returncode == 0


def gather(inventory, system):
    facts = {"tlsa": {}, "dkim": {}}
    for host, listing in run_on(inventory, "primary_mx", DKIM_COMMAND).items():
        for line in listing.splitlines():
            domain, selector, _state, key = line.split()
            facts["dkim"].setdefault(domain, {})[selector] = key
    for group in ("primary_mx", "backup_mx"):
        if system.hosts_with(group):
            for host, digest in run_on(inventory, group, TLSA_COMMAND).items():
                if len(digest) == 64:
                    facts["tlsa"][host] = digest
    return facts

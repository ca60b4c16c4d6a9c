"""Bad mail data stops pyinfra before it contacts any host."""
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).parent / "pyinfra"

DATA = """\
name: shop
hosts:
  mx1.example.org: {address: 192.0.2.10, roles: [primary_mx]}
domains: [example.org]
postmaster: anna@example.org
mailboxes:
  - address: anna@example.org
    password_hash: 'HASH'
"""


def write_inventory(tmp_path, password_hash, port, replace=None):
    """A one-host mail system whose host is a listener on loopback port `port`;
    `replace`: (old, new) in its data."""
    mail = tmp_path / "mail.yml"
    text = DATA
    if replace:
        assert replace[0] in text, replace[0]
        text = text.replace(*replace)
    mail.write_text(text.replace("HASH", password_hash))
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        "from mailstack.inventory import inventory\n"
        f"globals().update(inventory({str(mail)!r}, connection={{'mx1.example.org': "
        f"{{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, 'ssh_connect_retries': 0}}}}))\n")
    return mail, inventory


# (replaced in DATA, replacement, the error after the file name: field and value)
MALICIOUS = {
    "plaintext password": (
        "'HASH'", "'hunter2'",
        "mailboxes[0].password_hash: '<not shown>' is not a password hash"),
    "command substitution in a local part": (
        "address: anna@", "address: a`reboot`@",
        "mailboxes[0].address: 'a`reboot`@example.org' is not a valid email address"),
    "newline in the name": (
        "name: shop", 'name: "shop\\nmyhostname = evil"',
        "name: 'shop\\nmyhostname = evil' is not a system name"),
    "shell in acme_email": (
        "postmaster:", "tls: {acme_email: 'x;reboot@example.org'}\npostmaster:",
        "tls.acme_email: 'x;reboot@example.org' is not a valid email address"),
    "command substitution in acme_directory": (
        "postmaster:", "tls: {acme_directory: 'https://ca.example.org/$(reboot)'}\npostmaster:",
        "tls.acme_directory: 'https://ca.example.org/$(reboot)' is not an https:// URL"),
    "smarthost password file missing": (
        "postmaster:", "relay: {host: smtp.provider.example, username: shop, "
        "password_file: relay-password}\npostmaster:",
        "relay.password_file: 'relay-password' ("),
    "ssh user carrying an option": (
        "roles: [primary_mx]}", "roles: [primary_mx], ssh: {user: 'root -oProxyCommand=sh'}}",
        "hosts.mx1.example.org.ssh.user: 'root -oProxyCommand=sh' is not a user name"),
}


@pytest.mark.parametrize("case", MALICIOUS, ids=list(MALICIOUS))
def test_invalid_data_exits_before_any_connection(tmp_path, case):
    old, new, error = MALICIOUS[case]
    # A listener standing in for the hosts: any SSH attempt would connect to it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                connections.append(listener.accept())
            except (TimeoutError, OSError):
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()

    from mailstack.host.password import hash_password
    mail, inventory = write_inventory(tmp_path, hash_password("x"), port, replace=(old, new))
    result = subprocess.run([str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    done.set()
    t.join()
    listener.close()

    assert result.returncode != 0
    assert f"mailstack: invalid mail data: {mail}: {error}" in result.stderr
    assert "Traceback" not in result.stderr
    assert connections == [], "pyinfra contacted a host despite invalid data"


def test_valid_data_does_reach_the_host(tmp_path):
    """The same set-up with valid data does connect: the test above can fail."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    from mailstack.host.password import hash_password
    _, inventory = write_inventory(tmp_path, hash_password("x"), port)
    proc = subprocess.Popen([str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener.settimeout(30)
    try:
        conn, _ = listener.accept()
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        listener.close()

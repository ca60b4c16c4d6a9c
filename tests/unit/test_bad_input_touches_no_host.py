"""Bad mail data stops pyinfra before it contacts any host."""
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.executable).parent / "pyinfra"


def write_inventory(tmp_path, password_hash, port):
    """A one-host mail system whose host is a listener on loopback port `port`."""
    mail = tmp_path / "mail.yml"
    mail.write_text("hosts:\n  mx1.example.org: {address: 192.0.2.10, roles: [primary_mx]}\n"
                    "domains: [example.org]\npostmaster: anna@example.org\n"
                    f"mailboxes:\n  - address: anna@example.org\n    password_hash: '{password_hash}'\n")
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        "from mailstack.inventory import inventory\n"
        f"globals().update(inventory({str(mail)!r}, connection={{'mx1.example.org': "
        f"{{'ssh_hostname': '127.0.0.1', 'ssh_port': {port}, 'ssh_connect_retries': 0}}}}))\n")
    return mail, inventory


def test_invalid_data_exits_before_any_connection(tmp_path):
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

    mail, inventory = write_inventory(tmp_path, "hunter2", port)
    result = subprocess.run([str(PYINFRA), "-y", str(inventory), "deploy.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    done.set()
    t.join()
    listener.close()

    assert result.returncode != 0
    assert (f"mailstack: invalid mail data: {mail}: mailboxes[0].password_hash: "
            "'<not shown>' is not a password hash") in result.stderr
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

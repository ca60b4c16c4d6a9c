"""TLS-RPT reports (RFC 8460) of this MX's outgoing TLS, on Debian releases whose
Postfix is built with libtlsrpt (Debian 13): Postfix hands each TLS outcome to
tlsrpt-collectd (a datagram socket under Postfix's queue directory, reachable from
its chroot); tlsrpt-reportd sends each receiving domain that asks for reports (its
`_smtp._tls` record) a daily report, as mail from this system's postmaster domain.

tlsrpt-reporter is not packaged in Debian: its wheel (pure Python, no dependencies)
is fetched on the operator's machine through its own pip configuration, checked
against the hash pinned here, and installed into a virtualenv on the host.
"""
import hashlib
import subprocess
import sys
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from roles import Service, release

VERSION = "0.6.0"
WHEEL = f"tlsrpt_reporter-{VERSION}-py3-none-any.whl"
SHA256 = "a6eec314c7142af2e1d609a63e82a63b7ec1d14db664244c98e1344b3c603397"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "wheels"
VENV = "/opt/mailstack/tlsrpt"
WHEELS = "/opt/mailstack/wheels"
# Relative to Postfix's queue directory: the same name inside and outside its chroot.
SOCKET = "run/tlsrpt/tlsrpt.sock"
SPOOL = "/var/spool/postfix"


def wheel():
    """The pinned wheel on this (the operator's) machine, fetched once."""
    path = CACHE / WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "-d", str(CACHE), f"tlsrpt-reporter=={VERSION}"],
                       check=True)
    if hashlib.sha256(path.read_bytes()).hexdigest() != SHA256:
        path.unlink()
        raise SystemExit(f"tlsrpt: {WHEEL} does not match the pinned hash; not installed")
    return path


def enabled():
    """On the primary MX (the backup MX only hands mail to the primary), where the
    release's Postfix can report."""
    return release().tlsrpt and "primary_mx" in host.groups


class Tlsrpt(Service):
    name = "tlsrpt"
    PACKAGES = ("python3-venv",)

    def packages(self):
        return list(self.PACKAGES) if enabled() else []

    def configure(self):
        if not enabled():
            return
        server.user(name="tlsrpt: user", user="tlsrpt", home="/var/lib/tlsrpt", shell="/usr/sbin/nologin",
                    system=True, create_home=False)
        files.directory(name="tlsrpt: /var/lib/tlsrpt", path="/var/lib/tlsrpt", user="tlsrpt",
                        group="tlsrpt", mode="750")
        # Postfix's smtp client (user postfix) may reach the socket, nobody else.
        files.directory(name="tlsrpt: socket directory", path=f"{SPOOL}/run/tlsrpt", user="tlsrpt",
                        group="postfix", mode="750")
        # Beside the virtualenv, not in /var/lib/mailstack: that is state a restore
        # puts back as it was (a Debian 12 host's has no wheel).
        upload = files.put(name=f"tlsrpt: {WHEEL}", src=str(wheel()),
                           dest=f"{WHEELS}/{WHEEL}", create_remote_dir=True)
        server.shell(name="tlsrpt: virtualenv",
                     commands=[f"python3 -m venv --clear {VENV}",
                               f"{VENV}/bin/pip install --quiet --no-index --no-deps "
                               f"{WHEELS}/{WHEEL}"],
                     _if=lambda installed=host.get_fact(File, f"{VENV}/bin/tlsrpt-collectd"):
                         upload.did_change() or not installed)
        mail = host.data.mail
        self.template("/etc/tlsrpt/tlsrpt.cfg", socket=f"{SPOOL}/{SOCKET}",
                      sender=f"noreply-tlsrpt@{mail.postmaster.rpartition('@')[2]}")

    def activate(self):
        if not enabled():
            return
        self.units("tlsrpt-collectd.service", "tlsrpt-reportd.service",
                   start=["tlsrpt-collectd.service", "tlsrpt-reportd.service"], venv=VENV)
        for unit in ("tlsrpt-collectd", "tlsrpt-reportd"):
            self.restart_on_change(unit)


tlsrpt = Tlsrpt()

"""Every host: apt (and the lab's apt proxy), FQDN hostname, /etc/hosts, resolver,
unattended security upgrades, journald limits, time sync, and mailstack's own
programs (mailstack/host/, run by the other services)."""
from pathlib import Path

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

import mailstack
from mailstack.host import INSTALL
from roles import Service

PACKAGE_ROOT = Path(mailstack.__file__).resolve().parent


class Base(Service):
    name = "base"
    PACKAGES = ("unattended-upgrades", "apt-listchanges", "systemd-timesyncd", "ca-certificates",
                "openssl", "debconf-utils")

    def prepare(self, debconf_lines):
        """What must be true before any package is installed."""
        self.changed = []
        if host.data.apt_proxy:
            self.template("/etc/apt/apt.conf.d/01proxy")
        # /etc/hosts first: sudo resolves the new name on every later step.
        self.template("/etc/hosts")
        server.hostname(name="base: hostname", hostname=host.data.fqdn)
        if host.data.resolvers:
            self.template("/etc/resolv.conf")
        # Seed debconf answers only when they change: debconf-set-selections itself
        # would report a change on every run.
        seed = self.put("/var/lib/mailstack/debconf.seed", "\n".join(debconf_lines) + "\n",
                        create_remote_dir=True)
        server.shell(name="base: load debconf answers",
                     commands=["debconf-set-selections /var/lib/mailstack/debconf.seed"],
                     _if=seed.did_change)

    def configure(self):
        self.template("/etc/apt/apt.conf.d/20auto-upgrades", watch=False)
        self.journald = self.template("/etc/systemd/journald.conf.d/mailstack.conf")
        # The host programs: the package's files as they are here, nothing rendered.
        for path in [PACKAGE_ROOT / "__init__.py"] + sorted((PACKAGE_ROOT / "host").glob("*.py")):
            files.put(name=f"base: {path.name}", src=str(path), mode="644", create_remote_dir=True,
                      dest=f"{INSTALL}/{path.relative_to(PACKAGE_ROOT.parent)}")
        # Moving to the next Debian release (python -m mailstack upgrade).
        self.program("mailstack-upgrade")
        # What `mailstack status` asks each host.
        self.program("mailstack-status")

    def activate(self):
        systemd.service(name="base: journald", service="systemd-journald", restarted=True,
                        _if=self.journald.did_change)
        # A container's clock is its host's: timesyncd skips itself there
        # (ConditionVirtualization), so only ask for it to run elsewhere.
        in_container = host.get_fact(Command, "systemd-detect-virt --container || true") != "none"
        systemd.service(name="base: timesyncd", service="systemd-timesyncd", enabled=True,
                        running=not in_container)


base = Base()

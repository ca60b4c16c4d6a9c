"""Every host: apt (and the lab's apt proxy), FQDN hostname, /etc/hosts, resolver,
unattended security upgrades, journald limits, time sync."""
from io import StringIO

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from roles import template

PACKAGES = ["unattended-upgrades", "apt-listchanges", "systemd-timesyncd", "ca-certificates",
            "openssl", "debconf-utils"]


def prepare(debconf_lines):
    """What must be true before any package is installed."""
    if host.data.apt_proxy:
        template("base", "/etc/apt/apt.conf.d/01proxy")
    server.hostname(name="base: hostname", hostname=host.data.fqdn)
    template("base", "/etc/hosts")
    if host.data.resolvers:
        template("base", "/etc/resolv.conf")
    # Seed debconf answers only when they change: debconf-set-selections itself
    # would report a change on every run.
    seed = files.put(name="base: debconf answers",
                     src=StringIO("\n".join(debconf_lines) + "\n"),
                     dest="/var/lib/mailstack/debconf.seed", create_remote_dir=True)
    server.shell(name="base: load debconf answers",
                 commands=["debconf-set-selections /var/lib/mailstack/debconf.seed"],
                 _if=seed.did_change)


def apply():
    template("base", "/etc/apt/apt.conf.d/20auto-upgrades")
    journald = template("base", "/etc/systemd/journald.conf.d/mailstack.conf")
    systemd.service(name="base: journald", service="systemd-journald",
                    restarted=True, _if=journald.did_change)
    # A container's clock is its host's: timesyncd skips itself there
    # (ConditionVirtualization), so only ask for it to run elsewhere.
    in_container = host.get_fact(Command, "systemd-detect-virt --container || true") != "none"
    systemd.service(name="base: timesyncd", service="systemd-timesyncd", enabled=True,
                    running=not in_container)


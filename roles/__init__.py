"""Services: one module here per service a host runs.

Two words, two things: a host's *roles* in the data (primary_mx, backup_mx, backup,
dns) say what the host is for; deploy.py turns them into the *services* here
(Postfix, Dovecot, ...), each a Service with the same three stages:

packages()   the Debian packages it needs (deploy.py installs every service's in one
             apt run); `debconf` holds answers for them, seeded before the install
configure()  render its files from host.data.mail; self.template() and self.put()
             remember what changed
activate()   check the configuration, then (re)start or reload the daemon only if a
             file it reads changed (self.restart_on_change)

A service gives other services what they need as named values (tls.CERT,
rspamd.MILTER), never as strings to take apart. What differs between Debian releases
comes from mailstack/releases.py (release()) and from release-named template variants.
"""
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack import releases
from mailstack.host import PROGRAMS, launcher

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


# host name -> its release, read once per deploy: pyinfra 3 keeps no fact cache, and
# every template asks (one SSH round trip each, ~60 ms).
_RELEASES = {}


def release():
    """The Debian release the current host runs (from its /etc/os-release, read once
    per deploy run: a deploy never changes it)."""
    if host.name not in _RELEASES:
        _RELEASES[host.name] = _read_release()
    return _RELEASES[host.name]


def _read_release():
    distro = host.get_fact(LinuxDistribution)
    codename = (distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
    if distro.get("name") != "Debian":
        codename = f"{distro.get('name')} {codename}".strip()
    try:
        return releases.named(codename)
    except ValueError as error:
        raise SystemExit(f"{host.name}: {error}") from None


def template_source(service, path, codename):
    """templates/<service><path>.j2, or its variant for one release beside it
    (<path>.<codename>.j2) where that release needs a different file."""
    base = TEMPLATES / service / path.lstrip("/")
    variant = base.with_name(f"{base.name}.{codename}.j2")
    return variant if variant.exists() else base.with_name(base.name + ".j2")


class Service:
    name = ""
    PACKAGES: tuple = ()
    # Debian package -> debconf answers, seeded wherever that package is installed.
    debconf: dict = {}

    def packages(self) -> list[str]:
        return list(self.PACKAGES)

    def apply(self):
        self.changed = []     # per host: deploy code runs once for each host
        self.configure()
        self.activate()

    def configure(self):
        pass

    def activate(self):
        pass

    def template(self, dest, mode="644", user="root", group="root", watch=True, src=None,
                 **context):
        """Render templates/<service><dest>.j2 (the template mirrors the target path;
        `src` names another path where dest carries a version, e.g. PHP's).
        watch: a change restarts the service (activate)."""
        this = release()
        op = files.template(
            name=f"{self.name}: {dest}",
            src=str(template_source(self.name, src or dest, this.codename)),
            dest=dest, mode=mode, user=user, group=group,
            jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
            mail=host.data.mail, release=this, **context)
        if watch:
            self.changed.append(op)
        return op

    def put(self, dest, content, mode="644", user="root", group="root", watch=True, **kwargs):
        """Write `content` (a string made from the model) to `dest`."""
        op = files.put(name=f"{self.name}: {dest}", src=StringIO(content), dest=dest, mode=mode,
                       user=user, group=group, **kwargs)
        if watch:
            self.changed.append(op)
        return op

    def program(self, name):
        """The launcher of a host program (mailstack/host/, installed by base)."""
        return self.put(f"/usr/local/sbin/{name}", launcher(PROGRAMS[name]), mode="755",
                        watch=False)

    def restart_on_change(self, unit, check=None, reload=False, changed=None):
        """Validate the rendered configuration with `check`, then restart (or reload)
        `unit`, only when one of `changed` (default: every watched file) changed."""
        when = any_changed(*(self.changed if changed is None else changed))
        if check:
            server.shell(name=f"{self.name}: check configuration", commands=[check], _if=when)
        systemd.service(name=f"{self.name}: {'reload' if reload else 'restart'} {unit}",
                        service=unit, running=True, enabled=True, restarted=not reload,
                        reloaded=reload, _if=when)

    def units(self, *names, start=(), **context):
        """systemd units of our own (templates), reloaded into systemd when changed;
        `start`: the ones to keep enabled and running (timers, sockets)."""
        rendered = [self.template(f"/etc/systemd/system/{n}", watch=False, **context)
                    for n in names]
        systemd.daemon_reload(name=f"{self.name}: systemd reload", _if=any_changed(*rendered))
        for unit in start:
            systemd.service(name=f"{self.name}: {unit}", service=unit, running=True, enabled=True)
        return rendered


class Checkpoint(Service):
    """An operation every host runs at the same point of the deploy: pyinfra runs
    it on all hosts at once, so everything before it is done everywhere first."""

    def __init__(self, name):
        self.name = name

    def configure(self):
        server.shell(name=f"Wait: {self.name}", commands=["true"], _if=lambda: False)

"""mailstack: which roles each group of hosts gets.

    .venv/bin/pyinfra -y inventory/<system>.py deploy.py

The inventory has already loaded and validated the mail data (host.data.mail).
"""
from pyinfra import host
from pyinfra.operations import apt

from roles import base, dns, dovecot, outside, postfix, resolver

ROLES = {
    "dns": [dns, resolver],
    "primary_mx": [postfix, dovecot],
    "backup_mx": [],
    "backup": [],
    "outside": [outside],
}

roles = list(dict.fromkeys([base] + [r for g in ROLES if g in host.groups for r in ROLES[g]]))

base.prepare([line for r in roles for line in getattr(r, "DEBCONF", [])])
# One apt run per host, at one point of the deploy: pyinfra runs it on all hosts
# at once, so hosts install in parallel.
apt.packages(
    name="Install packages",
    packages=sorted({p for r in roles for p in r.PACKAGES}),
    update=True, cache_time=24 * 3600, no_recommends=True,
    extra_install_args="-o DPkg::Lock::Timeout=120",
)
# One line per role: pyinfra orders operations by the line that calls them.
base.apply()
if dns in roles: dns.apply()  # noqa: E701
if resolver in roles: resolver.apply()  # noqa: E701
if postfix in roles: postfix.apply()  # noqa: E701
if dovecot in roles: dovecot.apply()  # noqa: E701
if outside in roles: outside.apply()  # noqa: E701

"""mailstack: which roles each group of hosts gets.

    .venv/bin/pyinfra -y inventory/<system>.py deploy.py

The inventory has already loaded and validated the mail data (host.data.mail).
"""
from pyinfra import host
from pyinfra.operations import apt, server

from roles import (acme_ca, backup_client, backup_server, base, dns, dovecot, outside, postfix,
                   resolver, rspamd, tls, web, webmail)

ROLES = {
    "dns": [dns, resolver, backup_client],
    "primary_mx": [web, tls, rspamd, postfix, dovecot, webmail, backup_client],
    "backup_mx": [web, tls, rspamd, postfix, backup_client],
    "backup": [backup_server],
    "outside": [outside],
    "acme_ca": [acme_ca],  # lab only
}

roles = list(dict.fromkeys([base] + [r for g in ROLES if g in host.groups for r in ROLES[g]]))

base.prepare([line for r in roles for line in getattr(r, "DEBCONF", [])])
# Package lists one host at a time: a shared apt proxy stalls on concurrent index
# fetches. The packages themselves then install on all hosts at once.
apt.update(name="Update package lists", cache_time=24 * 3600, _serial=True)
# One apt run per host, at one point of the deploy: pyinfra runs it on all hosts
# at once, so hosts install in parallel.
apt.packages(
    name="Install packages",
    packages=sorted({p for r in roles for p in (r.packages() if hasattr(r, "packages")
                                                  else r.PACKAGES)}),
    no_recommends=True,
    extra_install_args="-o DPkg::Lock::Timeout=120",
)
# One line per role: pyinfra orders operations by the line that calls them.
base.apply()
if dns in roles: dns.apply()  # noqa: E701
if resolver in roles: resolver.apply()  # noqa: E701
if acme_ca in roles: acme_ca.apply()  # noqa: E701
# pyinfra keeps each host's operations in order but not one host's against
# another's. Every host passes this point together, so DNS and the ACME CA are
# serving before any host asks for a certificate.
server.shell(name="Wait for DNS and the ACME CA on every host", commands=["true"],
             _if=lambda: False)
if web in roles: web.http()  # noqa: E701  (port 80 answers ACME challenges)
if tls in roles: tls.apply()  # noqa: E701
if web in roles: web.apply()  # noqa: E701  (HTTPS sites, once there is a certificate)
if rspamd in roles: rspamd.apply()  # noqa: E701
if postfix in roles: postfix.apply()  # noqa: E701
if dovecot in roles: dovecot.apply()  # noqa: E701
if webmail in roles: webmail.apply()  # noqa: E701
if outside in roles: outside.apply()  # noqa: E701
if backup_server in roles: backup_server.apply()  # noqa: E701
if backup_client in roles: backup_client.apply()  # noqa: E701

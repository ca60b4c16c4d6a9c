"""mailstack: which services each host gets, and the one order they are applied in.

    .venv/bin/pyinfra -y inventory/<system>.py deploy.py

The inventory has already loaded and validated the mail data (host.data.mail).
Host roles (from the data; outside, acme_ca and oldmail are the lab's) name what a host is
for; services (roles/) are what runs on it. See roles/__init__.py.
"""
from pyinfra import host
from pyinfra.operations import apt

from roles import Checkpoint, filefacts
from roles.acme_ca import acme_ca
from roles.backup_client import backup_client
from roles.backup_server import backup_server
from roles.base import base
from roles.dns import dns
from roles.dovecot import dovecot
from roles.fail2ban import fail2ban
from roles.firewall import firewall
from roles.metrics import metrics
from roles.monitoring import monitoring
from roles.nullmailer import nullmailer
from roles.oldmail import oldmail
from roles.outside import outside
from roles.postfix import postfix
from roles.resolver import resolver
from roles.rspamd import rspamd
from roles.tls import tls
from roles.tlsrpt import tlsrpt
from roles.web import web, web_http
from roles.webmail import webmail

# The files' facts of each host in one SSH round trip, not three per file.
filefacts.install()

# pyinfra keeps each host's operations in order but not one host's against
# another's: every host passes this point together, so DNS and the ACME CA are
# serving before any host asks for a certificate.
shared_services_up = Checkpoint("DNS and the ACME CA on every host")

# Every service, in the order it is applied on any host. web_http answers ACME
# challenges on port 80 before tls asks for the certificate that web's HTTPS
# sites need.
ORDER = [base, firewall, dns, resolver, acme_ca, shared_services_up, web_http, tls, web, rspamd,
         postfix, tlsrpt, dovecot, webmail, outside, oldmail, nullmailer, backup_server, backup_client,
         metrics, monitoring, fail2ban]
EVERY_HOST = {base, shared_services_up}
# Every host of the mail system has a firewall, fail2ban and metrics for monitoring.
SYSTEM = {firewall, fail2ban, metrics}
BY_ROLE = {
    "dns": SYSTEM | {dns, resolver, nullmailer, backup_client},
    "primary_mx": SYSTEM | {web_http, tls, web, rspamd, tlsrpt, postfix, dovecot, webmail, backup_client},
    "backup_mx": SYSTEM | {web_http, tls, web, rspamd, postfix, backup_client},
    "backup": SYSTEM | {nullmailer, backup_server},
    "monitoring": SYSTEM | {monitoring},
    "outside": {outside},   # lab only
    "acme_ca": {acme_ca},   # lab only
    "oldmail": {oldmail},   # lab only, on demand: a client's old provider
}

mine = EVERY_HOST.union(*(BY_ROLE[g] for g in host.groups if g in BY_ROLE))
if not host.data.mail.hosts_with("monitoring"):
    mine.discard(metrics)       # nobody would read them
services = [s for s in ORDER if s in mine]
packages = sorted({p for s in services for p in s.packages()})
base.prepare([answer for s in ORDER for package, answers in s.debconf.items()
              if package in packages for answer in answers])
# Package lists one host at a time: a shared apt proxy stalls on concurrent index
# fetches. The packages themselves then install on all hosts at once.
apt.update(name="Update package lists", cache_time=24 * 3600, _serial=True)
# One apt run per host, at one point of the deploy: pyinfra runs it on all hosts
# at once, so hosts install in parallel.
apt.packages(name="Install packages", packages=packages, no_recommends=True,
             extra_install_args="-o DPkg::Lock::Timeout=120")
# The loop position orders one service's operations against another's on every
# host alike (host.loop), whichever services a host has.
for service in host.loop(ORDER):
    if service in mine:
        service.apply()

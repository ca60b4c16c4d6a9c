"""TLS certificates from an ACME CA (certbot, HTTP-01 through nginx's webroot,
roles/web.py) for the mail host's names: its own, and on the primary MX the
mta-sts., autoconfig., autodiscover. and webmail. names of every domain.

Renewals keep the key (--reuse-key), so the TLSA (DANE) record published for it
stays valid across renewals.

The certificate lives under /etc/letsencrypt/live/mailstack/; Debian's certbot
timer renews it and the deploy hook reloads every service that uses it.
"""
import re

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from mailstack.dns import WEB_NAMES

from roles import template

PACKAGES = ["certbot"]
LIVE = "/etc/letsencrypt/live/mailstack"
CERT, KEY = f"{LIVE}/fullchain.pem", f"{LIVE}/privkey.pem"
# A private ACME CA's API certificate (the lab's pebble) joins the system trust
# store, so certbot works the same from the timer and by hand.
RELOAD_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/mailstack-reload"
ACME_ROOT = "/var/www/mailstack/acme"  # served by nginx on port 80 (roles/web.py)
PRIVATE_CA = "/usr/local/share/ca-certificates/mailstack-acme-api.crt"


def names():
    mail = host.data.mail
    extra = ([f"{name}.{d.name}" for d in mail.domains for name in WEB_NAMES]
             if "primary_mx" in host.groups else [])
    return [host.data.fqdn] + extra


def apply():
    mail = host.data.mail
    if host.data.acme_api_cert:
        trust = files.put(name="tls: ACME API trust", src=host.data.acme_api_cert,
                          dest=PRIVATE_CA, create_remote_dir=True)
        server.shell(name="tls: update trust store", commands=["update-ca-certificates"],
                     _if=trust.did_change)
    template("tls", RELOAD_HOOK, mode="755")
    # The names the certificate has now, read from it: a failed run leaves nothing
    # half-remembered.
    san = host.get_fact(Command, f"openssl x509 -noout -ext subjectAltName -in {CERT} 2>/dev/null || true")
    stale = set(re.findall(r"DNS:([^,\s]+)", san or "")) != set(names())
    domains = " ".join(f"-d {n}" for n in names())
    server.shell(
        name="tls: obtain certificate",
        commands=[f"certbot certonly --non-interactive --agree-tos --webroot -w {ACME_ROOT} "
                  f"--cert-name mailstack {domains} --server {mail.tls.acme_directory} "
                  f"-m {mail.tls.acme_email} --no-eff-email --expand --reuse-key",
                  # certbot runs its deploy hooks on renewals only.
                  RELOAD_HOOK],
        _if=lambda: stale)

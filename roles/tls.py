"""TLS certificates from an ACME CA (certbot, HTTP-01 through nginx's webroot,
roles/web.py) for the mail host's names: its own, and on the primary MX the
mta-sts., autoconfig., autodiscover. and webmail. names of every domain.

Renewals keep the key (--reuse-key), so the TLSA (DANE) record published for it
stays valid across renewals.

The certificate lives under /etc/letsencrypt/live/mailstack/; Debian's certbot
timer renews it and the deploy hook reloads every service that uses it.
"""
import re
import shlex

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from mailstack.dns import web_names
from roles import Service

LIVE = "/etc/letsencrypt/live/mailstack"
CERT, KEY = f"{LIVE}/fullchain.pem", f"{LIVE}/privkey.pem"
RELOAD_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/mailstack-reload"
ACME_ROOT = "/var/www/mailstack/acme"  # served by nginx on port 80 (roles/web.py)
# A private ACME CA's API certificate (the lab's pebble) joins the system trust
# store, so certbot works the same from the timer and by hand.
PRIVATE_CA = "/usr/local/share/ca-certificates/mailstack-acme-api.crt"


def names():
    """The certificate's names: the host's own, and on the primary every web name."""
    primary = "primary_mx" in host.groups
    return [host.data.fqdn] + (web_names(host.data.mail) if primary else [])


class TLS(Service):
    name = "tls"
    PACKAGES = ("certbot",)

    def configure(self):
        if host.data.acme_api_cert:
            trust = files.put(name="tls: ACME API trust", src=host.data.acme_api_cert,
                              dest=PRIVATE_CA, create_remote_dir=True)
            server.shell(name="tls: update trust store", commands=["update-ca-certificates"],
                         _if=trust.did_change)
        self.template(RELOAD_HOOK, mode="755", watch=False)

    def activate(self):
        mail = host.data.mail
        # The names the certificate has now, read from it: a failed run leaves nothing
        # half-remembered.
        san = host.get_fact(Command, f"openssl x509 -noout -ext subjectAltName -in {CERT} "
                                     "2>/dev/null || true")
        stale = set(re.findall(r"DNS:([^,\s]+)", san or "")) != set(names())
        command = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--webroot",
                   "-w", ACME_ROOT, "--cert-name", "mailstack",
                   *[a for n in names() for a in ("-d", n)],
                   "--server", mail.tls.acme_directory, "-m", mail.tls.acme_email,
                   "--no-eff-email", "--expand", "--reuse-key"]
        server.shell(name="tls: obtain certificate",
                     # certbot runs its deploy hooks on renewals only.
                     commands=[shlex.join(command), RELOAD_HOOK], _if=lambda: stale)


tls = TLS()

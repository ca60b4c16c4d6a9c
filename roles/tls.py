"""TLS certificates from an ACME CA (certbot, HTTP-01) for the mail host's names.

Renewals keep the key (--reuse-key), so the TLSA (DANE) record published for it
stays valid across renewals.

The certificate lives under /etc/letsencrypt/live/mailstack/; Debian's certbot
timer renews it and the deploy hook reloads every service that uses it.
"""
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from roles import template

PACKAGES = ["certbot"]
LIVE = "/etc/letsencrypt/live/mailstack"
CERT, KEY = f"{LIVE}/fullchain.pem", f"{LIVE}/privkey.pem"
# A private ACME CA's API certificate (the lab's pebble) joins the system trust
# store, so certbot works the same from the timer and by hand.
PRIVATE_CA = "/usr/local/share/ca-certificates/mailstack-acme-api.crt"


def names():
    return [host.data.fqdn]


def apply():
    mail = host.data.mail
    if host.data.acme_api_cert:
        trust = files.put(name="tls: ACME API trust", src=host.data.acme_api_cert,
                          dest=PRIVATE_CA, create_remote_dir=True)
        server.shell(name="tls: update trust store", commands=["update-ca-certificates"],
                     _if=trust.did_change)
    template("tls", "/etc/letsencrypt/renewal-hooks/deploy/mailstack-reload", mode="755")
    wanted = files.put(name="tls: certificate names", src=StringIO("\n".join(names()) + "\n"),
                       dest="/etc/mailstack/tls-names", create_remote_dir=True)
    missing = host.get_fact(File, CERT) is None
    domains = " ".join(f"-d {n}" for n in names())
    server.shell(
        name="tls: obtain certificate",
        commands=[f"certbot certonly --non-interactive --agree-tos --standalone "
                  f"--cert-name mailstack {domains} --server {mail.tls.acme_directory} "
                  f"-m {mail.tls.acme_email} --no-eff-email --expand --reuse-key"],
        _if=lambda: missing or wanted.did_change())

"""TLS certificates from an ACME CA (certbot, HTTP-01) for the mail host's names.

The certificate lives under /etc/letsencrypt/live/mailstack/; Debian's certbot
timer renews it and the deploy hook reloads every service that uses it.
"""
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from roles import template

PACKAGES = ["certbot"]
LIVE = "/etc/letsencrypt/live/mailstack"
CERT, KEY = f"{LIVE}/fullchain.pem", f"{LIVE}/privkey.pem"
CA_BUNDLE = "/etc/mailstack/acme-ca-bundle.pem"


def names():
    return [host.data.fqdn]


def apply():
    mail = host.data.mail
    env = ""
    if host.data.acme_api_cert:
        # The lab CA's API certificate is not in the system trust store.
        files.put(name="tls: ACME API trust", src=host.data.acme_api_cert, dest=CA_BUNDLE,
                  create_remote_dir=True)
        env = f"REQUESTS_CA_BUNDLE={CA_BUNDLE} "
    renewal_env = template("tls", "/etc/systemd/system/certbot.service.d/mailstack.conf",
                           ca_bundle=CA_BUNDLE if env else None)
    template("tls", "/etc/letsencrypt/renewal-hooks/deploy/mailstack-reload", mode="755")
    wanted = files.put(name="tls: certificate names", src=StringIO("\n".join(names()) + "\n"),
                       dest="/etc/mailstack/tls-names", create_remote_dir=True)
    missing = host.get_fact(File, CERT) is None
    domains = " ".join(f"-d {n}" for n in names())
    server.shell(
        name="tls: obtain certificate",
        commands=[f"{env}certbot certonly --non-interactive --agree-tos --standalone "
                  f"--cert-name mailstack {domains} --server {mail.tls.acme_directory} "
                  f"-m {mail.tls.acme_email} --no-eff-email --expand"],
        _if=lambda: missing or wanted.did_change())
    server.shell(name="tls: reload certbot unit", commands=["systemctl daemon-reload"],
                 _if=any_changed(renewal_env))

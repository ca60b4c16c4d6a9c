"""nginx on the mail hosts: ACME HTTP-01 challenges on port 80 (everything else
there is redirected to HTTPS) and, on the primary MX, for every domain: the MTA-STS
policy at https://mta-sts.<domain>/.well-known/mta-sts.txt, webmail (Roundcube,
roles/webmail.py) at https://webmail.<domain>/ and mail client settings at
autoconfig.<domain> and autodiscover.<domain>.

Port 80 is set up before the certificate is requested (`http()`), the HTTPS sites
after it (`apply()`), so a bare host gets both in one deploy.
"""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from mailstack.dns import mta_sts_policy
from roles import template, webmail
from roles.tls import ACME_ROOT, CERT, KEY, names

PACKAGES = ["nginx-light"]
MTA_STS_ROOT = "/var/www/mailstack/mta-sts"


def mta_sts_names():
    return [n for n in names() if n.startswith("mta-sts.")]


def http():
    files.directory(name="web: ACME challenge directory", path=f"{ACME_ROOT}/.well-known/acme-challenge")
    changed = [
        # Debian's default site would take port 80 from ours.
        files.link(name="web: no default site", path="/etc/nginx/sites-enabled/default", present=False),
        template("web", "/etc/nginx/conf.d/mailstack-http.conf", acme_root=ACME_ROOT),
    ]
    _reload("web: nginx (port 80)", changed)


def apply():
    changed = []
    if mta_sts_names():
        changed.append(files.put(
            name="web: MTA-STS policy", src=StringIO(mta_sts_policy(host.data.mail)),
            dest=f"{MTA_STS_ROOT}/.well-known/mta-sts.txt", create_remote_dir=True))
    changed.append(template("web", "/etc/nginx/snippets/mailstack-tls.conf", cert=CERT, key=KEY))
    # names() holds the per-domain names on the primary only.
    changed.append(template(
        "web", "/etc/nginx/conf.d/mailstack-https.conf",
        mta_sts_names=mta_sts_names(), mta_sts_root=MTA_STS_ROOT,
        webmail_names=[n for n in names() if n.startswith("webmail.")],
        client_names=[n for n in names() if n.startswith(("autoconfig.", "autodiscover."))],
        upload=host.data.mail.limits.message_size, roundcube_socket=webmail.ROUNDCUBE_SOCKET,
        clients_socket=webmail.CLIENTS_SOCKET, clients_php=webmail.CLIENTS_PHP))
    _reload("web: nginx", changed)


def _reload(name, changed):
    server.shell(name=f"{name} configuration check", commands=["nginx -t -q"],
                 _if=any_changed(*changed))
    systemd.service(name=name, service="nginx", running=True, enabled=True, reloaded=True,
                    _if=any_changed(*changed))

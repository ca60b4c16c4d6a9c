"""nginx on the mail hosts, as two services applied around roles/tls.py:

- `web_http`, before the certificate is requested: port 80 answers ACME HTTP-01
  challenges and redirects everything else to HTTPS;
- `web`, once there is a certificate: on the primary MX, for every domain, the
  MTA-STS policy at https://mta-sts.<domain>/.well-known/mta-sts.txt, webmail
  (Roundcube, roles/webmail.py) at https://webmail.<domain>/ and mail client
  settings at autoconfig.<domain> and autodiscover.<domain>.

So a bare host gets both in one deploy.
"""
from pyinfra import host
from pyinfra.operations import files

from mailstack.dns import mta_sts_policy, web_names
from roles import Service, release
from roles.tls import ACME_ROOT, CERT, KEY
from roles.webmail import CLIENTS_PHP, CLIENTS_SOCKET, ROUNDCUBE_SOCKET

MTA_STS_ROOT = "/var/www/mailstack/mta-sts"


class WebHTTP(Service):
    name = "web"

    def packages(self):
        return [release().nginx]

    def configure(self):
        files.directory(name="web: ACME challenge directory",
                        path=f"{ACME_ROOT}/.well-known/acme-challenge")
        # Debian's default site would take port 80 from ours.
        self.changed.append(files.link(name="web: no default site",
                                       path="/etc/nginx/sites-enabled/default", present=False))
        self.template("/etc/nginx/conf.d/mailstack-http.conf", acme_root=ACME_ROOT)

    def activate(self):
        self.restart_on_change("nginx", check="nginx -t -q", reload=True)


class WebHTTPS(WebHTTP):
    def configure(self):
        mail = host.data.mail
        primary = "primary_mx" in host.groups
        if primary:
            self.put(f"{MTA_STS_ROOT}/.well-known/mta-sts.txt", mta_sts_policy(mail),
                     create_remote_dir=True)
        self.template("/etc/nginx/snippets/mailstack-tls.conf", cert=CERT, key=KEY)
        sites = (lambda *s: web_names(mail, *s)) if primary else (lambda *s: [])
        self.template(
            "/etc/nginx/conf.d/mailstack-https.conf",
            mta_sts_names=sites("mta-sts"), mta_sts_root=MTA_STS_ROOT,
            webmail_names=sites("webmail"), client_names=sites("autoconfig", "autodiscover"),
            upload=mail.limits.message_size, roundcube_socket=ROUNDCUBE_SOCKET,
            clients_socket=CLIENTS_SOCKET, clients_php=CLIENTS_PHP)


web_http, web = WebHTTP(), WebHTTPS()

"""Lab only: a client's old provider (the machine `oldmail`, made on demand by
`lab/labctl add oldmail`): Debian's own Dovecot (IMAPS, Maildir++ as many providers
keep it) and Postfix, the MX of the client's domain until tests/lab/test_migration.py
moves the client to mailstack. Its people log in with their address or its local
part (the users file, hashes only, made by labctl). Its certificate comes from the
lab's ACME CA as a real provider's comes from a public CA, so the mail hosts verify
it with the trust they already have."""
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from mailstack.dovecot import VMAIL_UID
from roles import Service
from roles.tls import PRIVATE_CA

CERT_NAME = "oldmail"
LIVE = f"/etc/letsencrypt/live/{CERT_NAME}"


class OldMail(Service):
    name = "oldmail"
    PACKAGES = ("dovecot-imapd", "dovecot-lmtpd", "postfix", "certbot")

    def configure(self):
        old = host.data.old_provider
        server.group(name="oldmail: vmail group", group="vmail", gid=VMAIL_UID, system=True)
        server.user(name="oldmail: vmail user", user="vmail", uid=VMAIL_UID, group="vmail",
                    home="/srv/mail", shell="/usr/sbin/nologin", system=True, create_home=False)
        files.directory(name="oldmail: /srv/mail", path="/srv/mail", user="vmail", group="vmail",
                        mode="750")
        # certbot talks to the lab's ACME CA over TLS (its API certificate, made by labctl).
        trust = files.put(name="oldmail: ACME API trust", src=host.data.acme_api_cert,
                          dest=PRIVATE_CA, create_remote_dir=True)
        server.shell(name="oldmail: update trust store", commands=["update-ca-certificates"],
                     _if=trust.did_change)
        self.dovecot = [
            files.put(name="oldmail: users", src=old["users_file"], dest="/etc/dovecot/users",
                      group="dovecot", mode="640"),
            self.template("/etc/dovecot/dovecot.conf", old=old, live=LIVE, vmail_uid=VMAIL_UID,
                          watch=False),
        ]
        self.postfix = [self.template("/etc/postfix/main.cf", old=old, watch=False),
                        self.template("/etc/postfix/master.cf", watch=False)]
        # The certificate, once (port 80 answered by certbot itself: nothing else runs here).
        have = host.get_fact(Command, f"test -s {LIVE}/fullchain.pem && echo yes || true") == "yes"
        self.certificate = server.shell(
            name="oldmail: certificate", _if=lambda: not have,
            commands=[f"certbot certonly --standalone --non-interactive --agree-tos --no-eff-email "
                      f"-m postmaster@{old['domain']} --server {host.data.mail.tls.acme_directory} "
                      f"--cert-name {CERT_NAME} -d {host.data.fqdn}"])

    def activate(self):
        # Postfix first: its start makes /var/spool/postfix/private, where Dovecot
        # listens for its LMTP deliveries.
        self.restart_on_change("postfix", check="postfix check", changed=self.postfix)
        self.restart_on_change("dovecot", check="doveconf -n >/dev/null",
                               changed=self.dovecot + [self.certificate])


oldmail = OldMail()

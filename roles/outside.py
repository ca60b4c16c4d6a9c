"""Lab only: the rest of the internet. A plain Postfix for the outside domain
(example.test) that delivers to MX hosts found in DNS, like any sender out there,
and keeps every message it receives in one Maildir (user `catchall`). It is also
a storage provider the operator rents (account `offsite`, SFTP and Borg over SSH):
the lab's second backup copy (backup.repositories); a smarthost provider
(submission on port 587, STARTTLS, SASL logins from a sasldb): a mail system with
relay: in its data sends through it (tests/lab/test_smarthost.py); and a DNS
blocklist (Debian's rbldnsd, zone host.data.lab_dnsbl["zone"]) that
tests/lab/test_status.py lists mx1 in."""
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

from mailstack.backup import clients
from mailstack.dns import mta_sts_text
from mailstack.host.backup_tools import Borg
from mailstack.secrets import backup_secrets
from roles import Service, release

# outside's certificate (made by labctl, trusted by the lab's hosts).
TLS_CERT, TLS_KEY = "/etc/ssl/mailstack/outside.pem", "/etc/ssl/mailstack/outside.key"
# The smarthost's accounts (Cyrus SASL's own database, read by Postfix's smtpd).
SASLDB = "/etc/postfix/sasl/sasldb2"
# The blocklist's addresses (rbldnsd's ip4set format), in its state directory.
LISTED = "/var/lib/rbldns/listed"


class Outside(Service):
    name = "outside"
    # dkimpy and pyspf check what mailstack's mail looks like to a receiver, testssl.sh
    # its TLS; nginx serves the outside domain's MTA-STS policy; the offsite account
    # serves Borg repositories.
    # sasl2-bin makes the smarthost's accounts (saslpasswd2), libsasl2-modules checks
    # their PLAIN and LOGIN logins.
    PACKAGES = ("postfix", "opendkim", "swaks", "python3-dkim", "python3-spf", "testssl.sh",
                "sasl2-bin", "libsasl2-modules", "rbldnsd", *Borg.server_packages)

    def packages(self):
        return [*self.PACKAGES, release().nginx]

    def configure(self):
        server.user(name="outside: catchall user", user="catchall", shell="/usr/sbin/nologin")
        self.tls = [
            files.put(name="outside: TLS certificate", src=host.data.acme_api_cert, dest=TLS_CERT,
                      create_remote_dir=True),
            files.put(name="outside: TLS key", src=host.data.acme_api_key, dest=TLS_KEY,
                      mode="600"),
        ]
        self.changed += self.tls
        self.put("/etc/mailname", host.data.fqdn + "\n")
        # The outside domain signs its mail (DKIM; labctl made the key, DNS has its half).
        dkim = host.data.outside_dkim
        key_file = f"/etc/dkimkeys/{dkim['selector']}.private"
        self.signer = [
            files.put(name="outside: DKIM key", src=dkim["key"], dest=key_file, user="opendkim",
                      group="opendkim", mode="600"),
            self.template("/etc/opendkim.conf", selector=dkim["selector"], key_file=key_file,
                          watch=False),
        ]
        self.template("/etc/postfix/main.cf", tls_cert=TLS_CERT, tls_key=TLS_KEY)
        self.template("/etc/postfix/master.cf")
        self.template("/etc/postfix/sasl/smtpd.conf", sasldb=SASLDB)
        self.smarthost_account(host.data.smarthost_account)
        aliases = self.template("/etc/aliases")
        server.shell(name="outside: newaliases", commands=["newaliases"], _if=aliases.did_change)
        self.web = self.tls + [
            files.link(name="outside: no default site", path="/etc/nginx/sites-enabled/default",
                       present=False),
            self.put("/var/www/mta-sts/.well-known/mta-sts.txt",
                     mta_sts_text("enforce", [host.data.fqdn], max_age=86400),
                     create_remote_dir=True, watch=False),
            self.template("/etc/nginx/conf.d/mta-sts.conf", tls_cert=TLS_CERT, tls_key=TLS_KEY,
                          watch=False),
        ]
        # The blocklist: its list is the scenarios' (made empty once, never rewritten).
        files.file(name="outside: blocklist", path=LISTED, present=True, touch=False, mode="644")
        self.blocklist = [self.template("/etc/default/rbldnsd", zone=host.data.lab_dnsbl["zone"],
                                        watch=False)]
        # The storage provider: one account, each mail host's backup key registered.
        mail = host.data.mail
        server.user(name="outside: offsite storage account", user="offsite", home="/srv/offsite",
                    shell="/bin/sh", public_keys=[backup_secrets(mail.name, h.fqdn)["ssh_public_key"]
                                                   for h in clients(mail)])

    def smarthost_account(self, account):
        """The lab's account at this smarthost ({username, password_file}, made by
        labctl): user@realm in the sasldb, set again whenever its password changes.
        The password file stays root's; smtpd (as postfix) reads the sasldb."""
        if not account:
            return
        user, realm = account["username"].rsplit("@", 1)
        password = self.put("/etc/postfix/sasl/smarthost-password",
                            Path(account["password_file"]).read_text(), mode="600", watch=False)
        server.shell(name="outside: smarthost account", _if=password.did_change, commands=[
            f"saslpasswd2 -p -c -f {SASLDB} -u {shlex.quote(realm)} {shlex.quote(user)}"
            " < /etc/postfix/sasl/smarthost-password",
            # Readable by smtpd; an LMDB-backed sasldb's readers also write its lock.
            f"chgrp postfix {SASLDB}* && chmod 640 {SASLDB} && "
            f"{{ [ ! -e {SASLDB}-lock ] || chmod 660 {SASLDB}-lock; }}"])

    def activate(self):
        self.restart_on_change("opendkim", changed=self.signer)
        self.restart_on_change("postfix", check="postfix check")
        self.restart_on_change("nginx", changed=self.web)
        self.restart_on_change("rbldnsd", changed=self.blocklist)


outside = Outside()

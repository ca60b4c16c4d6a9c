"""rspamd (with redis) as Postfix's milter on every MX: spam scoring, greylisting,
SPF/DKIM/DMARC/ARC checks on inbound mail; on the primary, DKIM signing of
outbound mail.

DKIM keys are made on the host (mailstack-dkim), readable only by rspamd, and
never leave it; `mailstack publish` reads their public halves for DNS.
"""
import json
import shlex
from collections import namedtuple

from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from mailstack.host.dkim import SETTINGS as DKIM_SETTINGS
from mailstack.postfix import senders_by_login
from roles import Service

# Where rspamd's proxy worker takes milter connections: a socket in Postfix's queue
# directory, where its chrooted smtpd finds it as `postfix` (relative to that
# directory). Over loopback TCP each message waited ~40 ms on the milter's small
# writes (delayed ACKs): 60 messages/s through 4 sessions, 100 over this socket
# (bench/delivery.py).
MILTER = namedtuple("Milter", "directory path postfix")(
    "/var/spool/postfix/rspamd", "/var/spool/postfix/rspamd/milter.sock", "rspamd/milter.sock")
SENDERS = "/etc/rspamd/mailstack-senders.map"
CONFIG = [f"/etc/rspamd/local.d/{name}" for name in (
    "worker-proxy.inc", "worker-normal.inc", "worker-controller.inc", "redis.conf",
    "classifier-bayes.conf", "actions.conf", "dkim_signing.conf", "dmarc.conf",
    "milter_headers.conf", "greylist.conf", "settings.conf", "logging.inc")] + [
    "/etc/rspamd/override.d/options.inc"]


class Rspamd(Service):
    name = "rspamd"
    PACKAGES = ("rspamd", "redis-server")

    def configure(self):
        mail = host.data.mail
        primary = "primary_mx" in host.groups
        # Only Postfix (its group) and rspamd reach the socket.
        files.directory(name="rspamd: milter socket directory", path=MILTER.directory, user="_rspamd",
                        group="postfix", mode="750")
        for path in CONFIG:
            self.template(path, primary=primary, milter=MILTER,
                          backup_mx=[h.address for h in mail.hosts_with("backup_mx")],
                          own_hosts=[h.address for h in mail.hosts
                                     if not {"primary_mx", "backup_mx"} & set(h.roles)])
        # Who may use which From: (rspamd.local.lua); rspamd rereads the map itself.
        self.put(SENDERS, senders_by_login(mail) if primary else "", watch=False)
        self.template("/etc/rspamd/rspamd.local.lua", senders=SENDERS)
        if primary:
            self.dkim(mail)

    def dkim(self, mail):
        self.program("mailstack-dkim")
        self.put(DKIM_SETTINGS, json.dumps({"key_size": mail.dns.dkim_key_size}) + "\n",
                 create_remote_dir=True, watch=False)
        domains = shlex.join(d.name for d in mail.domains)
        # A key for every domain that has none yet (facts are read before any change).
        missing = host.get_fact(Command, f"/usr/local/sbin/mailstack-dkim missing {domains} "
                                         "2>/dev/null || echo all")
        server.shell(name="rspamd: DKIM keys for new domains",
                     commands=[f"/usr/local/sbin/mailstack-dkim ensure {domains}"],
                     _if=lambda: bool(missing))
        self.units("mailstack-dkim-retire.service", "mailstack-dkim-retire.timer",
                   start=["mailstack-dkim-retire.timer"])

    def activate(self):
        systemd.service(name="rspamd: redis", service="redis-server", running=True, enabled=True)
        self.restart_on_change("rspamd", check="rspamadm configtest")


rspamd = Rspamd()

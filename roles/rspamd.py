"""rspamd (with redis) as Postfix's milter on every MX: spam scoring, greylisting,
SPF/DKIM/DMARC/ARC checks on inbound mail; on the primary, DKIM signing of
outbound mail.

DKIM keys are made on the host (mailstack-dkim), readable only by rspamd, and
never leave it; `mailstack publish` reads their public halves for DNS.
"""
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from roles import template

PACKAGES = ["rspamd", "redis-server"]
MILTER = "inet:127.0.0.1:11332"
LOCAL_D = "/etc/rspamd/local.d"
CONFIG = [f"{LOCAL_D}/{name}" for name in (
    "worker-proxy.inc", "worker-normal.inc", "worker-controller.inc", "redis.conf",
    "classifier-bayes.conf", "actions.conf", "dkim_signing.conf", "dmarc.conf",
    "milter_headers.conf", "greylist.conf", "settings.conf")] + ["/etc/rspamd/override.d/options.inc"]


def apply():
    mail = host.data.mail
    primary = "primary_mx" in host.groups
    changed = [template("rspamd", path, primary=primary,
                        backup_mx=[h.address for h in mail.hosts_with("backup_mx")])
               for path in CONFIG]
    if primary:
        _dkim(mail)
    systemd.service(name="rspamd: redis", service="redis-server", running=True, enabled=True)
    server.shell(name="rspamd: check configuration", commands=["rspamadm configtest"],
                 _if=any_changed(*changed))
    systemd.service(name="rspamd: service", service="rspamd", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))


def _dkim(mail):
    template("rspamd", "/usr/local/sbin/mailstack-dkim", mode="755",
             key_size=mail.dns.dkim_key_size)
    domains = " ".join(d.name for d in mail.domains)
    # A key for every domain that has none yet (facts are read before any change).
    missing = host.get_fact(Command, f"/usr/local/sbin/mailstack-dkim missing {domains} 2>/dev/null"
                                     " || echo all")
    server.shell(name="rspamd: DKIM keys for new domains",
                 commands=[f"/usr/local/sbin/mailstack-dkim ensure {domains}"],
                 _if=lambda: bool(missing))
    units = [template("rspamd", f"/etc/systemd/system/mailstack-dkim-retire.{u}")
             for u in ("service", "timer")]
    systemd.daemon_reload(name="rspamd: systemd reload", _if=any_changed(*units))
    systemd.service(name="rspamd: DKIM retirement timer", service="mailstack-dkim-retire.timer",
                    running=True, enabled=True)

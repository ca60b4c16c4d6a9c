"""The lab: the mail system in inventory/lab/mail.yml on the Vagrant machines.

Run `make lab` first; it writes .lab/lab.json with each machine's address and key.
    .venv/bin/pyinfra -y inventory/lab.py deploy.py
A lab scenario that needs other mail data (another webmail database, say) names
its own file in MAILSTACK_LAB_DATA.
"""
import json
import os
import sys
from pathlib import Path

from mailstack.dns import WEB_NAMES as _WEB_NAMES  # a module global is a pyinfra group
from mailstack.inventory import inventory

ROOT = Path(__file__).resolve().parent.parent
try:
    LAB = json.loads((ROOT / ".lab" / "lab.json").read_text())
except FileNotFoundError:
    sys.exit("mailstack: the lab is not up (no .lab/lab.json): run `make lab`")


def _connect(name):
    h = LAB["hosts"][name]
    # Host keys change each time the lab is rebuilt.
    return {"ssh_hostname": h["address"], "ssh_user": h["ssh_user"], "ssh_key": h["ssh_key"],
            "ssh_known_hosts_file": "/dev/null", "ssh_strict_host_key_checking": "off",
            "_sudo": True}


_OUTSIDE, _DOMAIN, _DKIM = LAB["hosts"]["outside"], LAB["outside_domain"], LAB["outside_dkim"]
# The lab's internet, as a careful sender's and any provider's DNS looks.
_LAB_ZONES = {
    _DOMAIN: {
        "mx": _OUTSIDE["fqdn"],
        "hosts": {**{name: _OUTSIDE["address"] for name in [_OUTSIDE["fqdn"]] + LAB["acme_api"]["names"]},
                  # outside by a name its certificate does not carry: a smarthost named
                  # wrongly gets no mail (tests/lab/test_smarthost.py).
                  f"smtp.{_DOMAIN}": _OUTSIDE["address"],
                  LAB["operator_fqdn"]: LAB["operator_address"]},
        "txt": {
            # example.test enforces MTA-STS: mailstack's outbound mail must verify it.
            f"_mta-sts.{_DOMAIN}": "v=STSv1; id=1",
            # ... and asks for daily TLS reports (RFC 8460) at its catch-all.
            f"_smtp._tls.{_DOMAIN}": f"v=TLSRPTv1; rua=mailto:tls-reports@{_DOMAIN}",
            # SPF, DKIM (outside signs) and DMARC: mail from example.test is authenticated.
            _DOMAIN: f"v=spf1 mx a:{LAB['operator_fqdn']} -all",
            f"{_DKIM['selector']}._domainkey.{_DOMAIN}": f"v=DKIM1; k=rsa; p={_DKIM['public']}",
            f"_dmarc.{_DOMAIN}": f"v=DMARC1; p=reject; rua=mailto:postmaster@{_DOMAIN}",
        }},
    # Reverse DNS for every lab address, as a hosting provider sets it for a mail server.
    ".".join(reversed(LAB["operator_address"].split(".")[:3])) + ".in-addr.arpa": {
        "ptr": {**{h["address"]: h["fqdn"] for h in LAB["hosts"].values()},
                LAB["operator_address"]: LAB["operator_fqdn"]}},
}

# A client at its old provider (lab/hosts.yml old_provider; lab.json of an older labctl
# has none): the provider's name, and the client's domain with its MX there. Its web
# names already point at the primary, as a client moving in prepares them, so the
# primary gets its certificate for them before the switch. Once a mail data variant
# hosts the domain (tests/lab/test_migration.py), mailstack's own zone replaces this
# one (mailstack.dns.own_extra_zones) and `mailstack publish` switches the MX.
_OLD = LAB.get("old_provider")
if _OLD:
    _PRIMARY = LAB["hosts"]["mx1"]["fqdn"]
    _LAB_ZONES[_OLD["fqdn"].split(".", 1)[1]] = {"hosts": {_OLD["fqdn"]: _OLD["address"]}}
    _LAB_ZONES[_OLD["domain"]] = {
        "mx": _OLD["fqdn"],
        "cname": {f"{name}.{_OLD['domain']}": _PRIMARY for name in _WEB_NAMES},
        "txt": {_OLD["domain"]: "v=spf1 mx -all"}}

_by_fqdn = {h["fqdn"]: _connect(name) for name, h in LAB["hosts"].items()}


def _machine(name, **data):
    h = LAB["hosts"][name]
    return [(h["fqdn"], {**_connect(name), "fqdn": h["fqdn"], "address": h["address"], **data})]


_EXTRA = {group: _machine("outside", mail_domain=LAB["outside_domain"]) for group in ("outside", "acme_ca")}
if _OLD and _OLD["machine"] in LAB["hosts"]:
    # Made on demand (lab/labctl add oldmail): the client's old provider.
    _EXTRA["oldmail"] = _machine(_OLD["machine"], old_provider=_OLD)
globals().update(inventory(
    os.environ.get("MAILSTACK_LAB_DATA") or ROOT / "inventory" / "lab" / "mail.yml",
    connection=_by_fqdn,
    # "outside" stands in for the rest of the internet: example.test's own mail server.
    extra_groups=_EXTRA,
    # The ACME CA (pebble on outside) serves its API with a certificate made by
    # labctl; mail hosts trust it for certbot.
    acme_api_cert=LAB["acme_api"]["cert"],
    acme_api_key=LAB["acme_api"]["key"],
    acme_root_url=f"https://{LAB['acme_api']['name']}:15000/roots/0",
    apt_proxy=f"http://{LAB['operator_address']}:3142",
    resolvers=[LAB["resolver"]],
    lab_zones=_LAB_ZONES,
    outside_dkim=LAB["outside_dkim"],
    # outside is a smarthost too: the lab's account there (labctl made its password).
    smarthost_account=LAB.get("smarthost"),
    # The lab's dns host is also every lab host's resolver (on port 53), so its
    # authoritative server answers the world (and RFC 2136 updates) on 5300.
    dns_port=5300,
    rspamd_test_patterns=True,
    # outside's DNS blocklist (roles/outside.py), which the lab resolver asks there.
    lab_dnsbl={"zone": "dnsbl.test", "server": _OUTSIDE["address"]},
    lab_network=f"{LAB['operator_address'].rsplit('.', 1)[0]}.0/24",
))

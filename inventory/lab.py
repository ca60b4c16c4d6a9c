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
                  LAB["operator_fqdn"]: LAB["operator_address"]},
        "txt": {
            # example.test enforces MTA-STS: mailstack's outbound mail must verify it.
            f"_mta-sts.{_DOMAIN}": "v=STSv1; id=1",
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

_by_fqdn = {h["fqdn"]: _connect(name) for name, h in LAB["hosts"].items()}
globals().update(inventory(
    os.environ.get("MAILSTACK_LAB_DATA") or ROOT / "inventory" / "lab" / "mail.yml",
    connection=_by_fqdn,
    # "outside" stands in for the rest of the internet: example.test's own mail server.
    extra_groups={group: [(LAB["hosts"]["outside"]["fqdn"],
                           {**_connect("outside"), "fqdn": LAB["hosts"]["outside"]["fqdn"],
                            "address": LAB["hosts"]["outside"]["address"],
                            "mail_domain": LAB["outside_domain"]})]
                  for group in ("outside", "acme_ca")},
    # The ACME CA (pebble on outside) serves its API with a certificate made by
    # labctl; mail hosts trust it for certbot.
    acme_api_cert=LAB["acme_api"]["cert"],
    acme_api_key=LAB["acme_api"]["key"],
    acme_root_url=f"https://{LAB['acme_api']['name']}:15000/roots/0",
    apt_proxy=f"http://{LAB['operator_address']}:3142",
    resolvers=[LAB["resolver"]],
    lab_zones=_LAB_ZONES,
    outside_dkim=LAB["outside_dkim"],
    # The lab's dns host is also every lab host's resolver (on port 53), so its
    # authoritative server answers the world (and RFC 2136 updates) on 5300.
    dns_port=5300,
    rspamd_test_patterns=True,
    lab_network=f"{LAB['operator_address'].rsplit('.', 1)[0]}.0/24",
))

"""DKIM key rotation: new mail is signed with the new selector, mail signed before
still verifies during the overlap, and the old record is gone after it."""
import re
import subprocess
import sys
import time

import dns.resolver
import pytest

from .conftest import ROOT
from .mailclient import message
from .test_trusted_mail import received_on_outside

OVERLAP = 20


def send_to_outside(mx1, hosts, alice, subject):
    message_id, text = message(alice["address"], "friend@example.test", subject)
    assert mx1.submit(alice, ["friend@example.test"], text) == {}
    return received_on_outside(hosts["outside"], message_id)


def selector_of(outside, path):
    return re.search(r"\bs=([\w-]+);", outside.check_output(f"grep -A2 '^DKIM-Signature' {path}")).group(1)


def verifies(outside, path):
    return outside.run(f"dkimverify < {path}").rc == 0


def authoritative(lab):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port = [lab["hosts"]["dns"]["address"]], 5300
    return r


@pytest.mark.after_all   # other scenarios' mail keeps a stable selector
def test_rotation_switches_signing_keeps_old_mail_verifying_then_retires(mx1, hosts, mailbox, lab):
    alice, outside = mailbox("alice@acme.test"), hosts["outside"]
    before = send_to_outside(mx1, hosts, alice, "before rotation")
    old = selector_of(outside, before)

    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "mailstack", "rotate-dkim", "inventory/lab.py",
                    "acme.test", f"{OVERLAP}s"], cwd=ROOT, check=True)
    rotated = time.monotonic()

    after = send_to_outside(mx1, hosts, alice, "after rotation")
    new = selector_of(outside, after)
    assert new != old
    assert verifies(outside, after)
    assert verifies(outside, before), "mail signed before the rotation no longer verifies"

    time.sleep(max(0.0, OVERLAP + 1 - (time.monotonic() - rotated)))
    hosts["mx1"].run_expect([0], "systemctl start mailstack-dkim-retire.service")
    subprocess.run([sys.executable, "-m", "mailstack", "publish", "inventory/lab.py"],
                   cwd=ROOT, check=True)
    with pytest.raises(dns.resolver.NXDOMAIN):
        authoritative(lab).resolve(f"{old}._domainkey.acme.test", "TXT")
    assert authoritative(lab).resolve(f"{new}._domainkey.acme.test", "TXT")
    print(f"rotation end to end (publish, switch, overlap {OVERLAP}s, retire): "
          f"{time.monotonic() - t0:.1f}s")

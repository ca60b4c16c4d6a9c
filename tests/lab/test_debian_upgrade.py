"""Debian 12 -> 13 in place: `python -m mailstack upgrade` moves mx2, then mx1, while
the rest of the internet keeps sending, and nothing a user sees changes.

Runs in the Debian 12 part of `make test`, where mx1 and mx2 were made from Debian 12
(MAILSTACK_MACHINE_RELEASES); on a lab whose mail hosts run Debian 13 it is
deselected (tests/lab/conftest.py), as there is nothing to upgrade."""
import datetime
import json
import re
import shlex
import subprocess
import time
import uuid
from collections import Counter

import pytest

from mailstack.host.upgrade import HALF_INSTALLED
from mailstack.model import load_system

from .conftest import LAB_DATA, LABCTL, ROOT, deploy, lab_variant
from .mailclient import ManageSieve, digest, mailbox_state, message, wait_for_message, wait_until
from .oddmail import odd_messages
from .test_backup_mx import container, wait_for_smtp
from .test_backups import BORG, back_up, everything_a_user_sees, mailstack, snapshots
from .test_undelete import UNDELETE
from .test_webmail import WEBMAIL, browser, log_in, logged_in, set_display_name  # noqa: F401

pytestmark = pytest.mark.mail_hosts_on("bookworm")

RUN = uuid.uuid4().hex[:8]
# outside keeps sending to alice, through its own Postfix (MX lookup: mx1, else mx2),
# one message every 2 s until told to stop.
STREAM = (f"i=0; rm -f /tmp/stream-{RUN}.stop; while [ ! -e /tmp/stream-{RUN}.stop ]; do i=$((i+1)); "
          f"printf 'From: stream@example.test\\nTo: alice@acme.test\\nSubject: stream {RUN} %d\\n"
          f"Message-ID: <stream-{RUN}-%d@example.test>\\n\\nSent while the mail hosts move to Debian 13.\\n' "
          f"$i $i | /usr/sbin/sendmail -oi -f stream@example.test alice@acme.test; "
          f"echo $i > /tmp/stream-{RUN}.count; sleep 2; done")
SIEVE = """require ["fileinto", "mailbox"];
if header :contains "subject" "[kept by sieve]" { fileinto :create "Sieved"; }
"""
# What runs on each mail host of the lab once it is on Debian 13.
SERVICES_AFTER = {"mx1": ["postfix", "dovecot", "rspamd", "redis-server", "nginx", "php8.4-fpm",
                          "postfix-mta-sts-resolver", "fail2ban"],
                  "mx2": ["postfix", "rspamd", "redis-server", "nginx", "postfix-mta-sts-resolver",
                          "fail2ban"]}
# What the upgrade scenario saw on mx1 on Debian 12, and the backup it made there,
# for the restore onto a bare Debian 13 machine after it.
DEBIAN_12 = {}
SETTING = f"Alice (before the upgrade {RUN})"
# The Borg detour touches mx1 and the backup host alone (the other clients keep restic
# and run no backup meanwhile): deploying the whole lab four times cost minutes.
BORG_HOSTS = ("mx1.acme.test", "backup.acme.test")


def release(host):
    return host.check_output(". /etc/os-release && echo $VERSION_CODENAME")


def uidls(mx1, lab):
    """{address: set of UIDLs} of every POP3 mailbox."""
    found = {}
    for box in lab["mailboxes"]:
        if "pop3" in box["protocols"]:
            pop = mx1.pop3(box)
            found[box["address"]] = {line.split()[1] for line in pop.uidl()[1]}
            pop.quit()
    return found


def quota_limits(mx1, lab):
    """{address: (limit in KiB per resource)} as IMAP's GETQUOTAROOT shows it."""
    limits = {}
    for box in lab["mailboxes"]:
        if "imap" in box["protocols"]:
            imap = mx1.imap(box)
            data = imap.getquotaroot("INBOX")[1]
            limits[box["address"]] = sorted(re.findall(rb"(STORAGE|MESSAGE) \d+ (\d+)", data[1][0]))
            imap.logout()
    return limits


def tlsa(resolver):
    return sorted(r.to_text() for r in resolver.resolve("_25._tcp.mx1.acme.test", "TLSA"))


def lasting(seen):
    """What users see that no retention removes while the scenario runs: the lab
    gives erin 10 s of Trash and Junk (the retention scenarios), and the upgrade's
    timers run that retention (CI once lost her Junk message between the two looks)."""
    short = {m.address: {f for f, keep in (("Trash", m.retention.trash), ("Junk", m.retention.junk))
                         if keep < 3600}
             for m in load_system(LAB_DATA).mailboxes}
    return {address: {f: m for f, m in folders.items() if f not in short.get(address, ())}
            if isinstance(folders, dict) else folders for address, folders in seen.items()}


def answers(host):
    """The machine takes SSH logins (testinfra raises while sshd is not up yet)."""
    try:
        return host.run("true").rc == 0
    except RuntimeError:
        return False


def queue_story(host, since, message_id):
    """A host's log lines of every queue ID that carried the message."""
    log = host.run(f"journalctl --no-pager -o short-precise --since @{since}").stdout
    ids = set(re.findall(rf"postfix/\w+\[\d+\]: ([0-9A-F]{{6,}}): message-id=<{re.escape(message_id)}", log))
    return "\n".join(line for line in log.splitlines() if any(i in line for i in ids)
                     or message_id in line)


def leave_one_half_installed(host):
    """The unluckiest cut, every run: one package dpkg was unpacking is left
    half-installed (dpkg cannot configure it, apt -f install does not install it
    again: CI saw it once). If the real cut left none, one of those it left unpacked
    is marked so in dpkg's status, as dpkg marks it while it unpacks."""
    if host.check_output(HALF_INSTALLED):
        return
    unpacked = host.check_output("dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n' | "
                                 "awk '$1 == \"iU\" {print $2}'").split()
    for package in unpacked[:5]:
        host.run_expect([0], f"sed -i '/^Package: {package}$/,/^$/ s/^Status: install ok unpacked$/"
                             f"Status: install reinstreq half-installed/' /var/lib/dpkg/status")
        if host.check_output(HALF_INSTALLED):
            return
    pytest.fail(f"no package could be left half-installed (unpacked: {unpacked[:5]})")


def upgrade_cut_at_the_package_step(host, name, fqdn):
    """The upgrade with a power cut while apt installs Debian 13's packages, then the
    README's runbook: the machine starts again, the same command runs again and goes
    on from the package step. Returns the second run."""
    upgraded = "grep -c ' upgrade ' /var/log/dpkg.log || true"
    before = int(host.check_output(upgraded))
    first = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "mailstack", "upgrade",
                              "inventory/lab.py", fqdn], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Cut when dpkg has unpacked some of Debian 13, and much is still to come.
    wait_until(lambda: int(host.check_output(upgraded)) > before + 20, 600,
               f"{name}'s package step never began")
    subprocess.run(LABCTL + ["power-cut", name], check=True, capture_output=True)
    out = first.communicate(timeout=300)[0]
    assert first.returncode != 0, out
    wait_until(lambda: answers(host), 120, f"{name} did not come back")
    assert "mailstack-upgrade" in host.file("/usr/sbin/policy-rc.d").content_string
    leave_one_half_installed(host)
    # Postfix, started by the boot, still takes no mail (its listeners stay closed).
    assert host.run("ss -Htln '( sport = :25 )'").stdout.strip() == ""
    again = mailstack("upgrade", "inventory/lab.py", fqdn)
    assert "resuming at the package step" in again.stdout, again.stdout
    return again


def leave_webmail(browser):
    """No session left and no page open: nothing polls Roundcube while PHP is away,
    and the next log_in finds the login form."""
    browser.delete_all_cookies()
    browser.get("about:blank")


def stream_count(imap):
    """How many of the stream's messages alice's INBOX holds."""
    imap.select("INBOX", readonly=True)
    return len(imap.search(None, "SUBJECT", f'"stream {RUN}"')[1][0].split())


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def test_mail_hosts_move_from_debian_12_to_13_in_place_and_nothing_a_user_sees_changes(
        hosts, mx1, mailbox, lab, resolver, browser, logs, tmp_path):   # noqa: F811
    mx, alice, dave = hosts["mx1"], mailbox("alice@acme.test"), mailbox("dave@globex.test")
    assert release(mx) == release(hosts["mx2"]) == "bookworm"
    # Mail of every kind in every mailbox, folders and flags, a Sieve script, a
    # Roundcube setting, a message in the undelete store.
    for box in lab["mailboxes"]:
        if box["quota"] >= 10 * 1024 * 1024:
            for _, raw in odd_messages("someone@example.test", box["address"], tag=RUN):
                assert mx1.deliver([box["address"]], raw) == {}
    imap = mx1.imap(alice)
    imap.create(f"Kept-{RUN}")
    for _, raw in odd_messages("friend@example.test", alice["address"], tag=RUN):
        imap.append(f"Kept-{RUN}", "(\\Seen \\Flagged)", None, raw)
    imap.logout()
    sieve = ManageSieve(mx1.address, mx1.hostname, mx1.ca_pem)
    sieve.login(alice["address"], alice["password"])
    sieve.put_and_activate("upgrade", SIEVE)
    sieve.logout()
    log_in(browser, alice)
    logged_in(browser)
    set_display_name(browser, SETTING)
    leave_webmail(browser)
    gone_id, gone = message("someone@example.test", dave["address"], f"deleted before the upgrade {RUN}")
    assert mx1.deliver([dave["address"]], gone) == {}
    imap = mx1.imap(dave)
    deleted = wait_for_message(imap, gone_id)
    imap.store(imap.search(None, "HEADER", "Message-ID", gone_id)[1][0], "+FLAGS", "\\Deleted")
    imap.expunge()
    imap.logout()
    wait_until(lambda: not mx.check_output("postqueue -j"), 60, "mail still queued on mx1")
    assert back_up(mx) == "success"
    as_of = utc_now()
    debian_12_snapshot = max(snapshots(mx), key=lambda s: s["time"])["id"]
    # Borg too: one backup by Debian 12's Borg 1.2 (the system switched to Borg for it
    # and back), to be restored by Debian 13's Borg 1.4 after the upgrade.
    borg_data = lab_variant(tmp_path / "mail.yml", *BORG)
    deploy(borg_data, *BORG_HOSTS)
    assert back_up(mx) == "success"
    borg_as_of = utc_now()
    borg_version = mx.check_output("borg --version")
    deploy(LAB_DATA, *BORG_HOSTS)
    before = lasting(everything_a_user_sees(mx1, hosts, lab))
    before_uidls, before_quota = uidls(mx1, lab), quota_limits(mx1, lab)
    dkim, before_tlsa = mx.check_output("/usr/local/sbin/mailstack-dkim list"), tlsa(resolver)
    count = len(snapshots(mx))
    DEBIAN_12.update(snapshot=debian_12_snapshot, mail=before, uidls=before_uidls, quota=before_quota,
                     dkim=dkim)

    outside = hosts["outside"]
    stream_start = mx.check_output("date +%s")
    outside.run_expect([0], f"nohup sh -c {shlex.quote(STREAM)} >/dev/null 2>&1 &")
    took, upgraded = {}, {}
    try:
        # The backup MX first, then the primary (its power fails halfway through its
        # package step) while the backup MX, on Debian 13 by then, holds its mail. The
        # other order delivered one of the stream's messages twice (noted on issue 15).
        for name, fqdn in (("mx2", "mx2.acme.test"), ("mx1", "mx1.acme.test")):
            start = time.monotonic()
            if name == "mx1":
                logs.read("mx1")            # what it logged before the cut
                upgrade = upgrade_cut_at_the_package_step(mx, name, fqdn)
            else:
                upgrade = mailstack("upgrade", "inventory/lab.py", fqdn)
            took[fqdn], upgraded[name] = time.monotonic() - start, upgrade
            print(upgrade.stdout)
            if upgrade.returncode != 0:
                # What dpkg did last, before the restore scenario replaces the machine.
                print(hosts[name].run("dpkg --audit; tail -60 /var/log/apt/term.log; "
                                      "tail -30 /var/log/dpkg.log").stdout)
            assert upgrade.returncode == 0, upgrade.stdout[-3000:] + upgrade.stderr[-3000:]
    finally:
        outside.run(f"touch /tmp/stream-{RUN}.stop")
    print("upgrade took: " + ", ".join(f"{h} {s:.0f} s" for h, s in took.items()))
    held = re.search(r"the backup MX \S+ held (\d+) message", upgraded["mx1"].stdout)
    assert held and int(held.group(1)) > 0, upgraded["mx1"].stdout     # mx2 held mail meanwhile
    print(f"mail held by mx2 during mx1's upgrade: {held.group(1)} message(s)")
    # The figures, kept for the README's measured table.
    (ROOT / ".lab" / "artifacts").mkdir(parents=True, exist_ok=True)
    (ROOT / ".lab" / "artifacts" / "upgrade.txt").write_text(
        "".join(f"{h}: {s:.0f} s\n" for h, s in took.items())
        + f"held by mx2 during mx1's upgrade: {held.group(1)} message(s)\n")
    assert release(mx) == release(hosts["mx2"]) == "trixie"

    # Every message sent meanwhile arrived, once.
    time.sleep(3)
    sent = int(outside.check_output(f"cat /tmp/stream-{RUN}.count"))
    wait_until(lambda: not outside.check_output("postqueue -j"), 120, "outside still queues the stream")
    imap = mx1.imap(alice)
    try:
        wait_until(lambda: stream_count(imap) >= sent, 180, "the stream's mail did not all arrive")
    except AssertionError:
        # Where the rest is: each host's queue, and mx1's deliveries of the stream.
        for name in ("mx1", "mx2", "outside"):
            print(f"--- {name} queue:\n" + hosts[name].run("postqueue -p | tail -20").stdout)
        print("--- alice's INBOX holds", stream_count(imap), "of", sent)
        print("--- mx1 log:\n" + mx.run(f"journalctl --no-pager -o short-precise --since '20 min ago' | "
                                       f"grep -E 'stream-{RUN}|lmtp|status=(deferred|bounced)' | "
                                       f"grep -v 'status=sent' | tail -60").stdout)
        raise
    # None of it waited for a retry at mx1 (Debian 13's Dovecot defers a burst to one
    # user beyond its limit, as the backup MX's flush is).
    assert mx.run(f"journalctl --no-pager -o cat --since @{stream_start} -t postfix/lmtp "
                  "-g 'Too many concurrent'").stdout == ""
    ids = Counter(re.findall(rb"<stream-\w+-(\d+)@example\.test>", b"".join(
        part[1] for part in imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")[1]
        if isinstance(part, tuple))))
    twice = sorted(int(i) for i, n in ids.items() if n > 1)
    if twice:
        # How a message came twice: each host's log of it (which queue IDs, from whom).
        for name in ("outside", "mx2", "mx1"):
            for i in twice:
                print(f"--- {name}, stream message {i}:\n" + queue_story(hosts[name], stream_start,
                                                                        f"stream-{RUN}-{i}@"))
    assert sorted(int(i) for i in ids) == list(range(1, sent + 1)) and not twice, twice
    stream_state = Counter(mailbox_state_of(imap, f"stream {RUN}"))
    imap.logout()

    # Each host starts again as a machine does after maintenance, and every service
    # comes up on Debian 13 with its ports (Apache, pulled in by PHP 8.4 on the way,
    # once took port 80 from nginx at this boot).
    for name in ("mx2", "mx1"):
        host = hosts[name]
        logs.read(name)
        container(lab, name, "stop")
        container(lab, name, "start")
        wait_until(lambda: answers(host), 120, f"{name} did not come back")
        host.run("systemctl is-system-running --wait")
        assert host.run("dpkg-query -W -f '${Status}' apache2").stdout.endswith(" installed") is False
        assert host.run("nginx -t").rc == 0
        assert host.check_output("systemctl --failed --no-legend --plain") == ""
        for unit in SERVICES_AFTER[name]:
            assert host.service(unit).is_running, f"{name}: {unit}"
        assert "nginx" in host.check_output("ss -Htlnp '( sport = :443 )'")
    wait_for_smtp(lab["hosts"]["mx1"]["address"])

    # What every user sees is what they saw: messages (digests), flags, folders.
    after = lasting(everything_a_user_sees(mx1, hosts, lab))
    after[alice["address"]]["INBOX"] = sorted(
        (Counter(after[alice["address"]]["INBOX"]) - stream_state).elements())
    assert after == before
    # No POP3 client downloads anything again: every UIDL stays.
    now = uidls(mx1, lab)
    for address, seen in before_uidls.items():
        assert seen <= now[address], address
    assert quota_limits(mx1, lab) == before_quota
    # DKIM keys and the certificate's TLSA record unchanged: nothing to publish.
    assert mx.check_output("/usr/local/sbin/mailstack-dkim list") == dkim
    assert tlsa(resolver) == before_tlsa
    published = mailstack("publish", "inventory/lab.py")
    assert "published: 0 zone update(s) sent" in published.stdout, published.stdout + published.stderr
    # Sieve still files mail (Dovecot 2.4 compiles the script again).
    sieved_id, sieved = message("someone@example.test", alice["address"], "[kept by sieve] after")
    assert mx1.deliver([alice["address"]], sieved) == {}
    imap = mx1.imap(alice)
    wait_for_message(imap, sieved_id, mailbox="Sieved")
    imap.logout()
    # The Roundcube setting survived (PHP 8.4, the same database).
    log_in(browser, alice)
    logged_in(browser)
    browser.get(f"https://{WEBMAIL}/?_task=settings&_action=identities")
    assert SETTING in browser.page_source
    leave_webmail(browser)
    # The message dave deleted before the upgrade comes back from the undelete store.
    today = mx.check_output("date +%F")
    assert mx.run(f"{UNDELETE} {dave['address']} {today}").rc == 0
    imap = mx1.imap(dave)
    assert wait_for_message(imap, gone_id, timeout=5) == deleted
    imap.logout()
    # Backups carry on into the same repository (after the one the upgrade itself made
    # before anything changed), and a snapshot made on Debian 12 restores.
    assert len(snapshots(mx)) == count + 1
    assert back_up(mx) == "success"
    assert len(snapshots(mx)) == count + 2
    # alice deletes a folder; Debian 13's restic brings it back from Debian 12's snapshot.
    imap = mx1.imap(alice)
    imap.delete(f"Kept-{RUN}")
    restored = json.loads(mx.check_output(
        f"mailstack-backup restore-mailbox {alice['address']} --as-of {as_of}"))
    assert f"Kept-{RUN}" in restored["folders_restored"], restored
    assert mailbox_state(imap)[f"Kept-{RUN}"] == before[alice["address"]][f"Kept-{RUN}"]
    # ... and Debian 13's Borg from Borg 1.2's archive (the same repository).
    deploy(borg_data, *BORG_HOSTS)
    assert mx.check_output("borg --version") != borg_version
    imap.delete(f"Kept-{RUN}")
    restored = json.loads(mx.check_output(
        f"mailstack-backup restore-mailbox {alice['address']} --as-of {borg_as_of}"))
    assert f"Kept-{RUN}" in restored["folders_restored"], restored
    assert mailbox_state(imap)[f"Kept-{RUN}"] == before[alice["address"]][f"Kept-{RUN}"]
    imap.logout()
    deploy(LAB_DATA, *BORG_HOSTS)
    # A second deploy changes nothing.
    second = deploy(LAB_DATA, "mx1.acme.test", "mx2.acme.test", json_out=True)
    assert [op["name"] for op in second if op["success"]] == []


def test_a_debian_12_host_lost_is_rebuilt_on_a_bare_debian_13_machine_from_its_backup(
        hosts, mx1, lab, resolver, logs):
    """The README's other way to Debian 13: a new machine and the restore runbook.
    mx1's backup made on Debian 12 (restic 0.14) restored by Debian 13's (0.18)."""
    assert DEBIAN_12, "the upgrade scenario before this one did not get as far as its backup"
    mx = hosts["mx1"]
    logs.read("mx1")                 # what the old machine logged
    subprocess.run(LABCTL + ["rebuild", "mx1", "--release", "trixie"], check=True, capture_output=True)
    logs.rebuilt("mx1")
    assert release(mx) == "trixie" and not mx.file("/var/vmail").exists
    deploy(LAB_DATA, "mx1.acme.test")
    restored = mailstack("restore-host", "inventory/lab.py", "mx1.acme.test",
                         "--snapshot", DEBIAN_12["snapshot"])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert lasting(everything_a_user_sees(mx1, hosts, lab)) == DEBIAN_12["mail"]
    assert uidls(mx1, lab) == DEBIAN_12["uidls"]
    assert quota_limits(mx1, lab) == DEBIAN_12["quota"]
    assert mx.check_output("/usr/local/sbin/mailstack-dkim list") == DEBIAN_12["dkim"]
    published = mailstack("publish", "inventory/lab.py")
    assert "published: 0 zone update(s) sent" in published.stdout, published.stdout + published.stderr
    second = deploy(LAB_DATA, "mx1.acme.test", json_out=True)
    assert [op["name"] for op in second if op["success"]] == []
    count = len(snapshots(mx))
    assert back_up(mx) == "success"
    assert len(snapshots(mx)) == count + 1


def mailbox_state_of(imap, subject):
    """[(digest, flags)] of the INBOX's messages with `subject`."""
    imap.select("INBOX", readonly=True)
    found = []
    for num in imap.search(None, "SUBJECT", f'"{subject}"')[1][0].split():
        data = imap.fetch(num, "(FLAGS BODY.PEEK[])")[1][0]
        flags = tuple(sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1)
                             .decode().split() if f != "\\Recent"))
        found.append((digest(data[1]), flags))
    return found

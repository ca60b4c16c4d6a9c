"""Backups that restore: every scenario runs with restic (the lab's data) and again
with Borg (the same data with `backup.tool: borg`), against the lab's backup host."""
import datetime
import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter

import pytest

from mailstack.backup import account
from mailstack.host.backup_tools import REPOSITORIES, SERVER_CONFIG, parse_time

from .conftest import LAB_DATA as DATA
from .conftest import ROOT, deploy, lab_variant
from .mailclient import (digest, mailbox_state, maildir_state, message, wait_for_message,
                         wait_until)
from .oddmail import odd_messages
from .test_trusted_mail import received_on_outside

# mx1's repositories on the backup host (one per tool).
MX1_REPOSITORIES = f"{REPOSITORIES}/mx1.acme.test"
# The lab's data with Borg instead of restic (and Borg's offsite repositories).
BORG = [("tool: restic", "tool: borg"),
        ("sftp:offsite@10.66.0.20:/srv/offsite/{host}", "ssh://offsite@10.66.0.20/srv/offsite/{host}-borg")]


def mailstack(*args, data=DATA):
    return subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mailstack", *args],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MAILSTACK_LAB_DATA": str(data)})


class Tool(str):
    """The backup tool's name; .data is the mail data the lab is deployed from."""
    data = DATA


@pytest.fixture(scope="module", params=["restic", "borg"])
def tool(request, lab, hosts, tmp_path_factory):
    """The lab with one backup tool; Borg is the lab's data with one line changed."""
    tool = Tool(request.param)
    if tool == "restic":
        # The lab's own data uses restic; a run stopped halfway may have left Borg.
        settings = json.loads(hosts["mx1"].check_output("cat /etc/mailstack/backup/settings.json"))
        if settings["tool"] != "restic":
            deploy(DATA)
        clear_forgeries(hosts["backup"], lab)
        yield tool
        return
    tool.data = lab_variant(tmp_path_factory.mktemp("borg") / "mail.yml", *BORG)
    deploy(tool.data)
    clear_forgeries(hosts["backup"], lab)
    yield tool
    deploy(DATA)


def clear_forgeries(backup, lab):
    """A run that stopped halfway may have left forged snapshots and a refusal on the
    backup host: clear them as the README tells the operator to (forget what is
    dated in the future, accept the rest), so each run starts from a sound state."""
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    for client, state in json.loads(backup.check_output("mailstack-backup-server status")).items():
        listed = backup.run(f"mailstack-backup-server snapshots {client}")
        if listed.rc != 0:          # no repository yet (a new lab): nothing to clear
            assert state["verified"] is None and not state["problem"], listed.stderr
            continue
        forged = [s["id"] for s in json.loads(listed.stdout)
                  if parse_time(s["time"]) > now]
        if forged:
            backup.check_output(f"mailstack-backup-server forget {client} {' '.join(forged)}")
        if state["problem"] or forged:
            backup.check_output(f"mailstack-backup-server accept {client}")
        # A restic killed mid-run (a run stopped halfway) leaves its lock behind.
        repo = f"{REPOSITORIES}/{client}/restic"
        backup.run(f"test -d {repo}/locks && restic --no-cache -r {repo} --password-file "
                   f"{SERVER_CONFIG}/{client}.passphrase unlock --remove-all")


def back_up(host):
    """Run the backup as its timer does; the unit's result."""
    host.run("systemctl start mailstack-backup.service")
    return host.check_output("systemctl show -P Result mailstack-backup.service")


def snapshots(host):
    return json.loads(host.check_output("mailstack-backup snapshots"))


def server_snapshots(backup, client):
    return json.loads(backup.check_output(f"mailstack-backup-server snapshots {client}"))


def postmaster_gets(mx1, postmaster, subject, timeout):
    """Wait until a mail with `subject` is in the postmaster's INBOX."""
    imap = mx1.imap(postmaster)
    wait_until(lambda: imap.select("INBOX") and imap.search(None, "SUBJECT", f'"{subject}"')[1][0],
               timeout, f"no mail '{subject}' reached the postmaster")
    imap.logout()


def test_a_scheduled_backup_saves_mail_keys_certificates_and_databases(tool, hosts):
    messages = hosts["mx1"].check_output(
        "find /var/vmail/acme.test/alice/Maildir -type f -path '*/new/*' -o -type f -path '*/cur/*'"
    ).split()
    assert messages
    for name in ("mx1", "mx2", "dns"):
        assert hosts[name].service("mailstack-backup.timer").is_enabled
        assert hosts[name].service("mailstack-backup.timer").is_running
        assert back_up(hosts[name]) == "success", name
        status = json.loads(hosts[name].check_output("mailstack-backup status"))
        assert status["tool"] == tool and "last_error" not in status
    saved = set(hosts["backup"].check_output("mailstack-backup-server files mx1.acme.test").split())
    dkim = hosts["mx1"].check_output("find /var/lib/rspamd/dkim -name '*.key'").split()
    assert dkim and set(dkim) <= saved                                  # DKIM keys
    assert "/etc/letsencrypt/live/mailstack/privkey.pem" in saved        # certificate and key
    assert any(p.startswith("/etc/letsencrypt/accounts/") for p in saved)   # ACME account
    assert {"/var/backups/mailstack/roundcube.sqlite",                   # Roundcube database
            "/var/backups/mailstack/redis.rdb"} <= saved                 # rspamd's Bayes data
    assert set(messages) <= saved                                       # her mail
    assert any(p.startswith("/var/vmail/acme.test/alice/sieve") for p in saved) or \
        not hosts["mx1"].file("/var/vmail/acme.test/alice/sieve").exists
    dns_saved = hosts["backup"].check_output("mailstack-backup-server files dns.acme.test")
    assert "/var/lib/knot/keys" in dns_saved                             # DNSSEC keys
    # Encrypted: no message text on the backup host, and the tool itself says so.
    assert hosts["backup"].run(
        f"grep -rl 'Subject:' {MX1_REPOSITORIES}/").stdout == ""
    assert_encrypted(tool, hosts["backup"], f"{MX1_REPOSITORIES}/{tool}",
                     f"{SERVER_CONFIG}/mx1.acme.test.passphrase")


def assert_encrypted(tool, host, repo, passphrase_file):
    """The repository is encrypted by the tool with a key only the passphrase opens:
    its own metadata names the encryption, and a wrong passphrase opens nothing."""
    if tool == "restic":
        # restic: the key files hold the master key sealed with scrypt; the config
        # (like every other file) is ciphertext, readable only through the key.
        key = json.loads(host.check_output(f"cat {repo}/keys/$(ls {repo}/keys | head -1)"))
        assert key["kdf"] == "scrypt" and key["data"]
        # On disk the config's JSON field names are nowhere (a first-byte test would be
        # wrong once in 256 repositories: ciphertext starts with a random IV).
        assert host.run(f"grep -ac chunker_polynomial {repo}/config").stdout.strip() == "0"
        opened = host.run(f"restic --no-cache -r {repo} --password-file {passphrase_file} cat config")
        assert opened.rc == 0 and json.loads(opened.stdout)["version"] >= 1, opened.stderr
        assert "chunker_polynomial" in json.loads(opened.stdout)
        wrong = host.run(f"RESTIC_PASSWORD=wrong restic --no-cache -r {repo} cat config")
        assert wrong.rc != 0 and "wrong password" in wrong.stderr, wrong.stderr
    else:
        # Borg: repokey mode, authenticated encryption; the key in the repository's
        # config is sealed with the passphrase.
        env = "BORG_BASE_DIR=$(mktemp -d) BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"
        opened = host.run(f"{env} BORG_PASSCOMMAND='cat {passphrase_file}' borg list --json {repo}")
        assert opened.rc == 0, opened.stderr
        assert json.loads(opened.stdout)["encryption"]["mode"].startswith(("repokey", "keyfile"))
        wrong = host.run(f"{env} BORG_PASSPHRASE=wrong borg list --json {repo}")
        assert wrong.rc != 0 and "passphrase" in wrong.stderr.lower(), wrong.stderr


def test_a_deleted_folder_of_any_mail_comes_back_as_of_an_earlier_backup_and_newer_mail_stays(
        tool, hosts, mx1, mailbox, lab):
    carol, folder = mailbox("carol@acme.test"), f"Projects-{tool}"
    _, old = message("someone@example.test", carol["address"], "kept in a folder")
    imap = mx1.imap(carol)
    imap.delete(folder)             # left over by an earlier run, if any
    imap.create(folder)
    imap.append(folder, "(\\Seen \\Flagged)", None, old.encode())
    # Mail as it really comes (no Message-ID, no Date, twice the same, 8-bit, large).
    odd = [raw for _, raw in odd_messages("someone@example.test", carol["address"])]
    for raw in odd:
        imap.append(folder, "(\\Seen)", None, raw)
    before = mailbox_state(imap)
    assert back_up(hosts["mx1"]) == "success"
    as_of = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    time.sleep(1.5)
    # The user deletes the folder; new mail arrives; the next backup runs.
    imap.select("INBOX")
    imap.delete(folder)
    new_id, new = message("someone@example.test", carol["address"], "arrived after the backup")
    mx1.deliver([carol["address"]], new)
    arrived = wait_for_message(imap, new_id)
    assert back_up(hosts["mx1"]) == "success"
    assert folder not in mailbox_state(imap)
    out = json.loads(hosts["mx1"].check_output(
        f"mailstack-backup restore-mailbox {carol['address']} --as-of {as_of}"))
    assert out["messages_restored"] >= 1 and folder in out["folders_restored"]
    imap.logout()
    imap = mx1.imap(carol)
    after = mailbox_state(imap)
    assert after[folder] == before[folder] == sorted(
        [(digest(old.encode()), ("\\Flagged", "\\Seen"))] + [(digest(raw), ("\\Seen",)) for raw in odd])
    # The INBOX is what it was plus the newer message: nothing doubled, nothing lost.
    assert Counter(after["INBOX"]) - Counter(before["INBOX"]) == Counter([(digest(arrived), ("\\Seen",))])  # read once
    assert not Counter(before["INBOX"]) - Counter(after["INBOX"])
    imap.logout()


def test_a_second_copy_at_a_storage_provider_restores_a_mailbox_on_its_own(
        tool, hosts, mx1, mailbox):
    carol, folder = mailbox("carol@acme.test"), f"Offsite-{tool}"
    _, kept = message("someone@example.test", carol["address"], "kept offsite")
    imap = mx1.imap(carol)
    imap.delete(folder)
    imap.create(folder)
    imap.append(folder, "(\\Seen)", None, kept.encode())
    assert back_up(hosts["mx1"]) == "success"
    status = json.loads(hosts["mx1"].check_output("mailstack-backup status"))
    assert set(status["targets"]) == {"backup.acme.test", "offsite"}
    assert all("last_error" not in t for t in status["targets"].values())
    assert json.loads(hosts["mx1"].check_output("mailstack-backup snapshots --target offsite"))
    # Encrypted there too: the provider sees no mail.
    assert hosts["outside"].run("grep -rl 'kept offsite' /srv/offsite").stdout == ""
    imap.select("INBOX")
    imap.delete(folder)
    out = json.loads(hosts["mx1"].check_output(
        f"mailstack-backup restore-mailbox {carol['address']} --target offsite"))
    assert folder in out["folders_restored"]
    imap.logout()
    imap = mx1.imap(carol)
    assert mailbox_state(imap)[folder] == [(digest(kept.encode()), ("\\Seen",))]
    imap.delete(folder)
    imap.logout()


# mx1's backup key on the backup host, as root on mx1 (a compromised host) uses it.
MX1_SSH = ("ssh -i /etc/mailstack/backup/id_ed25519 -o BatchMode=yes "
           "-o UserKnownHostsFile=/etc/mailstack/backup/known_hosts -o HostKeyAlias=backup.acme.test "
           f"{account('mx1.acme.test')}@10.66.0.13")
MX1_BORG_REPO = f"ssh://{account('mx1.acme.test')}@10.66.0.13{MX1_REPOSITORIES}/borg"


def client_command(tool):
    """The backup tool as root on mx1 runs it against its own repository on the backup
    host (through the append-only command its key is bound to)."""
    if tool == "restic":
        return (f"restic -r rclone:x -o 'rclone.program={MX1_SSH}' "
                "--password-file /etc/mailstack/backup/passphrase")
    return (f"BORG_RSH='{MX1_SSH.rsplit(' ', 1)[0]}' BORG_PASSCOMMAND='cat /etc/mailstack/backup/passphrase' "
            "BORG_BASE_DIR=/var/lib/mailstack-backup/borg borg")


def test_a_compromised_mail_host_cannot_remove_backup_history(tool, hosts):
    mx1, backup = hosts["mx1"], hosts["backup"]
    assert back_up(mx1) == "success"
    history = server_snapshots(backup, "mx1.acme.test")
    assert history
    before = backup.check_output("date -u +%Y-%m-%dT%H:%M:%S.%6N")
    run, repo = client_command(tool), MX1_BORG_REPO
    if tool == "restic":
        # Every snapshot forgotten and the data pruned: restic's first deletion is
        # refused (it retries that for about a minute, then gives up).
        attempts = [f"{run} forget --prune " + " ".join(s["id"] for s in history)]
    else:
        attempts = [f"{run} delete --force --force {repo}",
                    f"{run} prune --keep-last 1 {repo}",
                    f"{run} compact {repo}"]
    # The key only ever runs the repository server: a shell command is not run.
    attempts.append(f"{MX1_SSH} 'rm -rf {REPOSITORIES}' < /dev/null")
    # (Not cut short: a restic killed mid-operation leaves a lock that the append-only
    # server keeps, and the host's next backups fail until the operator unlocks.)
    for attempt in attempts:
        mx1.run(f"timeout 120 sh -c {json.dumps(attempt)}")
    assert backup.file(MX1_REPOSITORIES).is_directory
    after = server_snapshots(backup, "mx1.acme.test")
    if tool == "restic":
        assert after == history
    else:
        # Borg's append-only mode keeps every segment; a client-side prune only hides
        # archives until the backup host rolls the repository back.
        backup.check_output(f"mailstack-backup-server rollback mx1.acme.test --to {before}")
        assert server_snapshots(backup, "mx1.acme.test") == history
        # The compromised host is rebuilt; its Borg cache saw the deletions.
        mx1.check_output("rm -rf /var/lib/mailstack-backup/borg /var/cache/mailstack-backup/borg")
    assert back_up(mx1) == "success"


def test_forged_dates_and_deleted_history_stop_the_prune_and_reach_the_postmaster(
        tool, hosts, mx1, mailbox):
    client, backup = hosts["mx1"], hosts["backup"]
    alice = mailbox("alice@acme.test")         # the postmaster's mailbox
    assert back_up(client) == "success" and back_up(client) == "success"
    backup.run_expect([0], "systemctl start mailstack-backup-prune.service")  # all verified
    real = server_snapshots(backup, "mx1.acme.test")
    as_of = max(s["time"] for s in snapshots(client))
    before = backup.check_output("date -u +%Y-%m-%dT%H:%M:%S.%6N")
    # Root on mx1 forges twelve snapshots dated in the future (and with Borg deletes
    # the real ones).
    run, repo = client_command(tool), MX1_BORG_REPO
    days = [f"{day:02d}" for day in range(1, 13)]
    if tool == "restic":
        # restic's backups share a repository: six at once (below sshd's MaxStartups).
        forges = [f"printf '%s\\n' {' '.join(days)} | xargs -P 6 -I DAY "
                  f"{run} backup --host mx1.acme.test --time '2031-01-DAY 03:00:00' /etc/hostname"]
    else:
        forges = [f"{run} create --timestamp 2031-01-{day}T03:00:00 {repo}::forged-{day} /etc/hostname"
                  for day in days]
    for forge in forges:
        client.run_expect([0], f"timeout 120 sh -c {json.dumps(forge)}")
    if tool == "borg":
        # (restic's append-only server refuses deletions outright: the compromised-host
        # scenario shows it; only Borg lets the client hide history until rollback.)
        delete = f"{run} delete {repo} " + " ".join(s["id"] for s in real)
        client.run(f"timeout 120 sh -c {json.dumps(delete)}")

    backup.run("systemctl start mailstack-backup-prune.service")
    assert backup.check_output("systemctl show -P Result mailstack-backup-prune.service") == "exit-code"
    status = json.loads(backup.check_output("mailstack-backup-server status"))["mx1.acme.test"]
    assert "12 snapshot(s) dated in the future" in status["problem"]
    if tool == "borg":
        assert f"{len(real)} snapshot(s) deleted by the client" in status["problem"]
    report = mailstack("backup-status", "inventory/lab.py", data=tool.data)
    assert report.returncode == 1
    assert re.search(r"mx1\.acme\.test .*backup\.acme\.test refused to prune", report.stdout)
    postmaster_gets(mx1, alice, "Backup verification on backup.acme.test failed", 120)

    # Nothing real was pruned: restic refused the deletion, Borg's append-only log
    # undoes it. A restore as of the last good backup works.
    if tool == "borg":
        backup.check_output(f"mailstack-backup-server rollback mx1.acme.test --to {before}")
        client.check_output("rm -rf /var/lib/mailstack-backup/borg /var/cache/mailstack-backup/borg")
    present = {s["id"] for s in server_snapshots(backup, "mx1.acme.test")}
    assert {s["id"] for s in real} <= present
    restored = json.loads(client.check_output(
        f"mailstack-backup restore-mailbox carol@acme.test --as-of {as_of}"))
    assert restored["snapshot_time"] == as_of
    # The operator removes the forgeries; pruning works again and keeps the real ones.
    forged = sorted(present - {s["id"] for s in real})
    if forged:
        backup.check_output(f"mailstack-backup-server forget mx1.acme.test {' '.join(forged)}")
    backup.check_output("mailstack-backup-server accept mx1.acme.test")
    backup.run_expect([0], "systemctl start mailstack-backup-prune.service")
    newest = max(real, key=lambda s: s["time"])["id"]
    assert newest in {s["id"] for s in server_snapshots(backup, "mx1.acme.test")}
    assert back_up(client) == "success"


def test_a_backup_run_while_the_backup_host_is_unreachable_fails_visibly_then_recovers(
        tool, hosts, mx1, mailbox):
    client, backup = hosts["mx1"], hosts["backup"]
    alice = mailbox("alice@acme.test")         # the postmaster's mailbox
    count = len(snapshots(client))
    backup.check_output("systemctl stop ssh")
    try:
        assert back_up(client) == "exit-code"
        assert client.service("mailstack-backup.service").is_running is False
        assert client.check_output("systemctl is-failed mailstack-backup.service") == "failed"
        status = json.loads(client.check_output("mailstack-backup status"))
        assert "backup.acme.test" in status["last_error"]
        # The other copy was still made.
        assert "last_error" not in status["targets"]["offsite"]
        assert status["targets"]["offsite"]["last_success"] >= status["last_attempt"]
        report = mailstack("backup-status", "inventory/lab.py", data=tool.data)
        assert report.returncode == 1
        assert re.search(r"mx1\.acme\.test .*backup\.acme\.test", report.stdout)
        postmaster_gets(mx1, alice, "Backup of mx1.acme.test failed", 60)
    finally:
        backup.check_output("systemctl start ssh")
    assert back_up(client) == "success"
    assert len(snapshots(client)) == count + 1
    backup.check_output("mailstack-backup-server check")      # nothing corrupted


def test_a_restore_with_the_wrong_passphrase_is_refused_clearly(tool, hosts):
    mx1 = hosts["mx1"]
    mx1.check_output("printf 'not-the-passphrase\\n' > /root/wrong-passphrase")
    result = mx1.run("mailstack-backup restore-mailbox carol@acme.test "
                     "--passphrase-file /root/wrong-passphrase")
    assert result.rc != 0
    assert "wrong passphrase" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_backup_host_applies_the_retention_and_checks_the_repositories(tool, hosts):
    mx1, backup = hosts["mx1"], hosts["backup"]
    assert back_up(mx1) == "success" and back_up(mx1) == "success"
    history = server_snapshots(backup, "mx1.acme.test")
    assert len(history) >= 2
    newest_each_day = {s["time"][:10]: s["id"] for s in sorted(history, key=lambda s: s["time"])}
    for job in ("prune", "check"):
        assert backup.service(f"mailstack-backup-{job}.timer").is_enabled
        assert backup.service(f"mailstack-backup-{job}.timer").is_running
        backup.run(f"systemctl start mailstack-backup-{job}.service")
        assert backup.check_output(f"systemctl show -P Result mailstack-backup-{job}.service") == "success"
    # keep daily 7 (and weekly, monthly), counted on the backup host's arrival times:
    # the newest snapshot of each day stays (the lab's all arrived today).
    expected = set(newest_each_day.values())
    assert {s["id"] for s in server_snapshots(backup, "mx1.acme.test")} == expected
    assert back_up(mx1) == "success"              # the host carries on after a prune


def everything_a_user_sees(mx1, hosts, lab):
    """Every mailbox: folders, each message's digest and flags over IMAP (from the
    Maildir for mailboxes without IMAP)."""
    state = {}
    for box in lab["mailboxes"]:
        if "imap" in box["protocols"]:
            imap = mx1.imap(box)
            state[box["address"]] = mailbox_state(imap)
            imap.logout()
        else:
            # POP3 shows INBOX only (Dovecot may add empty folders a POP3 user never sees).
            state[box["address"]] = maildir_state(hosts["mx1"], box["address"]).get("INBOX", [])
    return state


# Last for each tool: it destroys mx1.
def test_mx1_destroyed_and_rebuilt_from_its_backup_serves_the_same_mail_and_dkim_keys(
        tool, hosts, mx1, mailbox, lab):
    marker_id, marker = message("someone@example.test", "dave@globex.test", f"before the loss ({tool})")
    mx1.deliver(["dave@globex.test"], marker)
    for _, raw in odd_messages("someone@example.test", "dave@globex.test"):
        assert mx1.deliver(["dave@globex.test"], raw) == {}
    imap = mx1.imap(mailbox("dave@globex.test"))
    wait_for_message(imap, marker_id)
    imap.logout()
    # All of it delivered (none still in Postfix's queue) before the backup runs.
    wait_until(lambda: not hosts["mx1"].check_output("postqueue -j"), 60, "mail still queued on mx1")
    assert back_up(hosts["mx1"]) == "success"
    before = everything_a_user_sees(mx1, hosts, lab)
    dkim_before = hosts["mx1"].check_output("/usr/local/sbin/mailstack-dkim list")

    # The same restore onto the machine with a new, empty data disk: mail, DKIM keys
    # and the backup tool's own state are gone; the normal deploy makes new DKIM keys.
    # (A bare machine in its place: test_debian_upgrade.py's restore onto Debian 13,
    # which make test runs; a second bare rebuild here would add 3 minutes to each run.)
    hosts["mx1"].run_expect([0], "rm -rf /var/vmail/* /var/lib/rspamd/dkim "
                                 "/var/lib/mailstack-backup /var/cache/mailstack-backup")
    assert not hosts["mx1"].file("/var/vmail/acme.test").exists
    deploy(tool.data, "mx1.acme.test")
    # The operator restores the host from its side (secrets/ holds the passphrase).
    restored = mailstack("restore-host", "inventory/lab.py", "mx1.acme.test", data=tool.data)
    assert restored.returncode == 0, restored.stdout + restored.stderr

    assert everything_a_user_sees(mx1, hosts, lab) == before
    assert hosts["mx1"].check_output("/usr/local/sbin/mailstack-dkim list") == dkim_before
    # DNS already holds the restored keys (and the restored certificate's TLSA).
    published = mailstack("publish", "inventory/lab.py", data=tool.data)
    assert "published: 0 zone update(s) sent" in published.stdout, published.stdout + published.stderr
    # Mail signed now verifies against the record published before the loss.
    alice = mailbox("alice@acme.test")
    signed_id, signed = message("alice@acme.test", "friend@example.test", "after the restore")
    assert mx1.submit(alice, ["friend@example.test"], signed) == {}
    dkim = hosts["outside"].run(f"dkimverify < {received_on_outside(hosts['outside'], signed_id)}")
    assert dkim.rc == 0 and "signature ok" in dkim.stdout, dkim.stdout + dkim.stderr
    # The restored host matches its deploy, and its backups carry on.
    second = deploy(tool.data, "mx1.acme.test", json_out=True)
    assert [op["name"] for op in second if op["success"]] == []
    assert hosts["mx1"].service("mailstack-backup.timer").is_running
    count = len(snapshots(hosts["mx1"]))
    assert back_up(hosts["mx1"]) == "success"
    assert len(snapshots(hosts["mx1"])) == count + 1


# Only with restic, the lab's own tool: the tool fixture puts the clients on it.
@pytest.mark.parametrize("tool", ["restic"], indirect=True)
def test_with_the_operator_pruning_the_backup_host_holds_no_passphrase(tool, hosts, tmp_path):
    mx1, backup = hosts["mx1"], hosts["backup"]
    data = lab_variant(tmp_path / "mail.yml", ("tool: restic", "tool: restic\n  prune_from: operator"))
    # Only the backup host's deploy reads prune_from.
    deploy(data, "backup.acme.test")
    # A new start for the operator's ledger (an earlier run's is stale by now).
    shutil.rmtree(ROOT / "secrets" / "lab" / "backup" / "ledger", ignore_errors=True)
    try:
        assert backup.run(f"ls {SERVER_CONFIG}/*.passphrase").rc != 0
        for job in ("prune", "check"):
            assert not backup.service(f"mailstack-backup-{job}.timer").is_running
        for name in ("mx1", "mx2", "dns"):
            assert back_up(hosts[name]) == "success"
        pruned = mailstack("backup-prune", "inventory/lab.py", data=data)
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert "backup.acme.test: 3 repositories verified and pruned" in pruned.stdout
        checked = mailstack("backup-prune", "inventory/lab.py", "--check", data=data)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # The same verification as the backup host's: a forged date stops the prune.
        forge = f"{client_command('restic')} backup --host mx1.acme.test --time '2031-02-01 03:00:00' /etc/hostname"
        mx1.run_expect([0], f"timeout 120 sh -c {json.dumps(forge)}")
        refused = mailstack("backup-prune", "inventory/lab.py", data=data)
        assert refused.returncode == 1
        assert "mx1.acme.test: verification failed, not pruned: 1 snapshot(s) dated in the future" \
            in refused.stderr
    finally:
        deploy(DATA, "backup.acme.test")
    # Back to the backup host pruning: the forgery is its to remove.
    forged = [s["id"] for s in server_snapshots(backup, "mx1.acme.test") if s["time"].startswith("2031")]
    backup.check_output(f"mailstack-backup-server forget mx1.acme.test {' '.join(forged)}")
    backup.check_output("mailstack-backup-server accept mx1.acme.test")
    backup.run_expect([0], "systemctl start mailstack-backup-prune.service")

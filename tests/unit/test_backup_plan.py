"""What each host's backups hold, where they go, and how their state reads."""
import json

from mailstack.backup import account, clients, report, server_settings, settings
from mailstack.model import load_system

from .test_model import WITH_BACKUP_HOST


def test_every_mail_host_is_backed_up_with_what_rebuilding_it_needs(write_data):
    system = load_system(write_data(WITH_BACKUP_HOST.replace(
        "roles: [backup_mx]", "roles: [backup_mx]}\n  ns.example.org: {address: 192.0.2.13, roles: [dns]")))
    assert [h.fqdn for h in clients(system)] == ["mx1.example.org", "mx2.example.org", "ns.example.org"]
    mx1, mx2, ns = (settings(system, h) for h in clients(system))
    assert {"/var/vmail", "/var/lib/rspamd", "/etc/letsencrypt", "/etc/roundcube",
            "/var/lib/mailstack", "/var/backups/mailstack"} <= set(mx1["paths"])
    assert "/var/vmail" not in mx2["paths"] and "/etc/postfix" in mx2["paths"]
    assert {"/etc/knot", "/var/lib/knot"} <= set(ns["paths"])       # DNSSEC keys
    assert mx1["roundcube_database"] == "sqlite" and mx2["roundcube_database"] is None
    (target,) = mx1["targets"]
    assert target == {"host": "bk.example.org", "address": "192.0.2.12",
                      "user": "bk-mx1-example-org",
                      "repository": "/srv/mailstack-backup/mx1.example.org/restic"}


def test_a_backup_hosts_settings_name_it_its_postmaster_and_each_clients_repository(write_data):
    system = load_system(write_data("postmaster: ben@example.org\n" + WITH_BACKUP_HOST))
    secrets = {"mx2.example.org": {"passphrase": "p2"}, "mx1.example.org": {"passphrase": "p1"}}
    found = server_settings(system, "bk.example.org", secrets)
    assert (found["host"], found["postmaster"]) == ("bk.example.org", "ben@example.org")
    assert (found["tool"], found["keep"]) == ("restic", {"daily": 7, "weekly": 4, "monthly": 12})
    assert found["clients"] == [
        {"host": h, "user": account(h), "repository": f"/srv/mailstack-backup/{h}/restic"}
        for h in ("mx1.example.org", "mx2.example.org")]
    json.dumps(found)        # written as clients.json
    default = server_settings(load_system(write_data(WITH_BACKUP_HOST)), "bk.example.org", secrets)
    assert default["postmaster"] == "postmaster@example.org"


def test_backup_accounts_fit_in_a_user_name_and_stay_apart():
    long_a, long_b = "mail." + "a" * 40 + ".example", "mail." + "b" * 40 + ".example"
    assert len(account(long_a)) <= 32 and account(long_a) != account(long_b)


def test_status_report_flags_failed_and_never_run_hosts():
    ok = json.dumps({"tool": "borg", "last_success": "2026-11-22T03:00:00+00:00"})
    failed = json.dumps({"tool": "restic", "last_success": "2026-11-21T03:00:00+00:00",
                         "last_error": "backup.example.org: connection refused"})
    text, all_well = report({"a.example": ok + "\nMon 2026-11-23 03:10:00 UTC"})
    assert all_well and "Mon 2026-11-23 03:10:00 UTC" in text
    text, all_well = report({"a.example": ok + "\n", "b.example": failed + "\n", "c.example": "{}\n"})
    assert not all_well
    assert "connection refused" in text and "no backup yet" in text

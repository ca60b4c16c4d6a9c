"""The mail data model: valid data loads; every bad input names file, field, value."""
import pytest

from mailstack.model import DataError, load_system

from .conftest import HASH, VALID


def test_valid_data_loads_into_one_typed_model(write_data):
    system = load_system(write_data(VALID))
    assert [d.name for d in system.domains] == ["example.org", "example.net"]
    assert system.primary_mx.fqdn == "mx1.example.org"
    assert [h.fqdn for h in system.backup_mx] == ["mx2.example.org"]
    anna, ben = system.mailboxes
    assert anna.protocols == {"imap"} and anna.quota == 1024**3          # defaults
    assert ben.protocols == {"pop3"} and ben.quota == 2 * 1024**3
    assert anna.password_hash == HASH
    assert system.aliases[1].targets == ("anna@example.org", "ben@example.org",
                                         "someone@elsewhere.test")
    assert system.domain("example.net").catch_all == "anna@example.org"
    assert system.postmaster == "postmaster@example.org"
    assert system.webmail.database == "sqlite"                         # default
    assert load_system(write_data("webmail: {database: postgresql}\n" + VALID)
                       ).webmail.database == "postgresql"


def test_hashes_can_live_in_a_separate_file(write_data):
    write_data(f'anna@example.org: "{HASH}"\nben@example.org: "{HASH}"\n', "hashes.yml")
    text = VALID.replace(f'    password_hash: "{HASH}"\n', "")
    system = load_system(write_data("password_hashes_file: hashes.yml\n" + text))
    assert {m.password_hash for m in system.mailboxes} == {HASH}


WITH_BACKUP_HOST = VALID.replace(
    "hosts:\n", "hosts:\n  bk.example.org: {address: 192.0.2.12, roles: [backup]}\n")


def test_a_backup_host_turns_backups_on_with_defaults(write_data):
    backup = load_system(write_data(WITH_BACKUP_HOST)).backup
    assert (backup.tool, backup.targets, backup.schedule, backup.check) == (
        "restic", ("bk.example.org",), "daily", "weekly")
    assert backup.keep == {"daily": 7, "weekly": 4, "monthly": 12}
    assert load_system(write_data(VALID)).backup is None


def test_tls_quota_warnings_and_spam_scores_have_defaults_and_can_be_set(write_data):
    system = load_system(write_data(VALID))
    assert (system.tls.min_version, system.tls.versions) == ("TLSv1.2", ("TLSv1.2", "TLSv1.3"))
    assert system.quota_warnings == (95, 80)
    assert (system.spam.greylist, system.spam.junk, system.spam.reject) == (4, 6, 15)
    system = load_system(write_data("tls: {min_version: TLSv1.3}\nquota_warnings: [50, 90, 75]\n"
                                    "spam: {junk: 5, reject: 10.5}\n" + VALID))
    assert (system.tls.min_version, system.tls.versions) == ("TLSv1.3", ("TLSv1.3",))
    assert system.quota_warnings == (90, 75, 50)        # highest first, as Dovecot wants
    assert (system.spam.greylist, system.spam.junk, system.spam.reject) == (4, 5, 10.5)
    assert load_system(write_data("quota_warnings: []\n" + VALID)).quota_warnings == ()


def replace(old, new):
    assert old in VALID, old
    return VALID.replace(old, new, 1)


BAD = {
    "yaml syntax error": (
        replace("domains:\n", "domains: [\n"), "", "YAML syntax error at line"),
    "unknown key (typo)": (
        replace("    catch_all: anna", "    catchall: anna"),
        "domains[1].catchall", "unknown key 'catchall' (did you mean 'catch_all'?)"),
    "invalid domain": (
        replace("  - name: example.net", "  - name: exa_mple.net"),
        "domains[1].name", "'exa_mple.net' is not a valid domain name"),
    "invalid address": (
        replace("  - address: ben@example.org", "  - address: ben@@example.org"),
        "mailboxes[1].address", "'ben@@example.org' is not a valid email address"),
    "mailbox in an undeclared domain": (
        replace("  - address: ben@example.org", "  - address: ben@example.com"),
        "mailboxes[1].address", "'ben@example.com' is in domain 'example.com', which is not declared"),
    "duplicate mailbox": (
        replace("  - address: ben@example.org", "  - address: anna@example.org"),
        "mailboxes[1].address", "duplicate mailbox 'anna@example.org'"),
    "alias that loops": (
        VALID + "  - address: a@example.org\n    to: b@example.org\n"
                "  - address: b@example.org\n    to: a@example.org\n",
        "aliases[2].to", "alias loop: a@example.org -> b@example.org -> a@example.org"),
    "alias target that is a missing local address": (
        replace("    to: anna@example.org\n", "    to: anne@example.org\n"),
        "aliases[0].to[0]", "'anne@example.org' is a local address that is neither a mailbox nor an alias"),
    "alias shadowing a mailbox": (
        replace("  - address: team@example.org", "  - address: ben@example.org"),
        "aliases[1].address", "'ben@example.org' is already a mailbox; an alias would shadow it"),
    "plaintext password": (
        replace(f'    password_hash: "{HASH}"\n    protocols', '    password_hash: "hunter2"\n    protocols'),
        "mailboxes[1].password_hash", "'<not shown>' is not a password hash: plaintext is never stored"),
    "unknown hash scheme": (
        replace(f'    password_hash: "{HASH}"\n    protocols', '    password_hash: "{MD5}abc"\n    protocols'),
        "mailboxes[1].password_hash", "unknown password hash scheme 'MD5'"),
    "bad quota": (
        replace("    quota: 2G", "    quota: 10 gigs"),
        "mailboxes[1].quota", "'10 gigs' is not a size"),
    "unknown protocol": (
        replace("    protocols: [pop3]", "    protocols: [pop3, smtp]"),
        "mailboxes[1].protocols[1]", "unknown protocol 'smtp'"),
    "no primary MX host": (
        replace("roles: [primary_mx]", "roles: [backup]"),
        "hosts", "no host has the role primary_mx"),
    "same host primary and backup MX": (
        replace("roles: [primary_mx]", "roles: [primary_mx, backup_mx]"),
        "hosts.mx1.example.org.roles", "'mx1.example.org' cannot be both primary_mx and backup_mx"),
    "empty domain list": (
        VALID.split("domains:")[0] + "domains: []\n", "domains", "must not be empty"),
    "unknown host role": (
        replace("roles: [backup_mx]", "roles: [backupmx]"),
        "hosts.mx2.example.org.roles[0]", "unknown role 'backupmx'"),
    "host address that is not an IP": (
        replace("address: 192.0.2.11", "address: mx2"),
        "hosts.mx2.example.org.address", "'mx2' is not an IP address"),
    "bad retention": (
        replace("    quota: 2G", "    quota: 2G\n    retention: {trash: forever}"),
        "mailboxes[1].retention.trash", "'forever' is not a duration"),
    "unknown retention kind": (
        replace("    quota: 2G", "    quota: 2G\n    retention: {spam: 1d}"),
        "mailboxes[1].retention.spam", "unknown key 'spam'"),
    "ACME directory that is not https": (
        "tls: {acme_directory: 'http://ca.example.org/dir'}\n" + VALID,
        "tls.acme_directory", "'http://ca.example.org/dir' is not an https:// URL"),
    "invalid DMARC policy": (
        "dns: {dmarc_policy: block}\n" + VALID,
        "dns.dmarc_policy", "'block' is not a DMARC policy"),
    "DKIM key below 2048 bits": (
        "dns: {dkim_key_size: 1024}\n" + VALID,
        "dns.dkim_key_size", "'1024' is not a DKIM RSA key size (2048, 3072 or 4096)"),
    "unknown TSIG algorithm": (
        "dns: {publish: {server: ns1.example.org, tsig_algorithm: hmac-md5}}\n" + VALID,
        "dns.publish.tsig_algorithm", "unknown TSIG algorithm 'hmac-md5'"),
    "queue lifetime not a duration": (
        "queue: {lifetime: forever}\n" + VALID,
        "queue.lifetime", "'forever' is not a duration"),
    "queue retries shrinking": (
        "queue: {retry_min: 2h, retry_max: 1h}\n" + VALID,
        "queue.retry_min", "'2h' is longer than queue.retry_max"),
    "backup tool unknown": (
        "backup: {tool: rsync}\n" + WITH_BACKUP_HOST,
        "backup.tool", "'rsync' is not a backup tool"),
    "backup retention not a number": (
        "backup: {keep: {daily: seven}}\n" + WITH_BACKUP_HOST,
        "backup.keep.daily", "'seven' is not a positive number"),
    "backup schedule not a calendar": (
        "backup: {schedule: 'daily; rm -rf /'}\n" + WITH_BACKUP_HOST,
        "backup.schedule", "is not a systemd calendar expression"),
    "backup without a backup host": (
        "backup: {tool: borg}\n" + VALID,
        "backup", "no host has the role backup"),
    "backup repository URL for the wrong tool": (
        "backup: {tool: borg, repositories: [{name: box, url: 's3:https://s3.example/b/{host}'}]}\n"
        + WITH_BACKUP_HOST,
        "backup.repositories[0].url", "is not a borg repository URL"),
    "backup repository shared by every host": (
        "backup: {repositories: [{name: box, url: 'sftp:u@box.example:/mail'}]}\n" + WITH_BACKUP_HOST,
        "backup.repositories[0].url", "lacks {host}"),
    "webmail database unknown": (
        "webmail: {database: mysql}\n" + VALID,
        "webmail.database", "'mysql' is not a webmail database"),
    "TLS version too old": (
        "tls: {min_version: TLSv1.1}\n" + VALID,
        "tls.min_version", "'TLSv1.1' is not a TLS version (allowed: TLSv1.2, TLSv1.3)"),
    "quota warning over 99%": (
        "quota_warnings: [95, 100]\n" + VALID,
        "quota_warnings[1]", "'100' is not a percentage from 1 to 99"),
    "quota warning not a number": (
        "quota_warnings: [90%]\n" + VALID,
        "quota_warnings[0]", "'90%' is not a percentage from 1 to 99"),
    "quota warning twice": (
        "quota_warnings: [80, 80]\n" + VALID,
        "quota_warnings[1]", "duplicate level '80'"),
    "spam score not a number": (
        "spam: {reject: high}\n" + VALID,
        "spam.reject", "'high' is not a positive score"),
    "spam junk score above the default reject": (
        "spam: {junk: 20}\n" + VALID,
        "spam.junk", "'20' is not below spam.reject (15)"),
    "spam scores out of order": (
        "spam: {greylist: 3, junk: 8, reject: 7}\n" + VALID,
        "spam.reject", "'7' is not above spam.junk (8)"),
    "catch-all to a missing local address": (
        replace("    catch_all: anna@example.org", "    catch_all: nobody@example.org"),
        "domains[1].catch_all", "'nobody@example.org' is not a mailbox or alias"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_names_file_field_and_value(write_data, case):
    text, field, message = BAD[case]
    path = write_data(text)
    with pytest.raises(DataError) as err:
        load_system(path)
    assert err.value.file == str(path)
    assert err.value.where == field
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}: ")

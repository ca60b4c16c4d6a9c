"""A catalogue of bad inputs, malicious ones first: values that would reach a root
shell, a file name or a configuration file on the hosts. Each is refused while the
data loads, with one line naming the file, the field and the value."""
import pytest

from mailstack.model import DataError, load_system

from .conftest import HASH, VALID

WITH_BACKUP_HOST = VALID.replace(
    "hosts:\n", "hosts:\n  bk.example.org: {address: 192.0.2.12, roles: [backup]}\n")
LOCALPART_RULE = "(allowed: a-z, 0-9 and . _ + -"


def replace(old, new, text=VALID):
    assert old in text, old
    return text.replace(old, new, 1)


def mailbox(address):
    return replace("  - address: ben@example.org", f"  - address: {address}")


def repository(url, environment=None):
    env = f"\n      environment: {environment}" if environment else ""
    return (f"backup:\n  repositories:\n    - name: box\n      url: {url}{env}\n"
            + WITH_BACKUP_HOST)


# case: (data, field, the value as the message shows it, what the message says about it,
#        [the data file's directory: the system's name when the file has none])
BAD = {
    # Local parts: every character a shell, a path or a lookup table gives a meaning to.
    "backtick in a mailbox": (
        mailbox('"b`reboot`@example.org"'), "mailboxes[1].address", "b`reboot`@example.org",
        LOCALPART_RULE),
    "dollar in a mailbox": (
        mailbox('"b$(reboot)@example.org"'), "mailboxes[1].address", "b$(reboot)@example.org",
        LOCALPART_RULE),
    "pipe in an alias": (
        replace("  - address: team@example.org", '  - address: "team|sh@example.org"'),
        "aliases[1].address", "team|sh@example.org", LOCALPART_RULE),
    "ampersand in a remote alias target": (
        replace("someone@elsewhere.test", '"someone&reboot@elsewhere.test"'),
        "aliases[1].to[2]", "someone&reboot@elsewhere.test", LOCALPART_RULE),
    "quote in a catch-all": (
        replace("    catch_all: anna@example.org", "    catch_all: \"o'brien@example.org\""),
        "domains[1].catch_all", "o'brien@example.org", LOCALPART_RULE),
    "opening brace in the postmaster": (
        'postmaster: "post{master@example.org"\n' + VALID,
        "postmaster", "post{master@example.org", LOCALPART_RULE),
    "closing brace in the DMARC reports address": (
        'dns: {dmarc_reports: "dmarc}@example.org"}\n' + VALID,
        "dns.dmarc_reports", "dmarc}@example.org", LOCALPART_RULE),
    "slash in a mailbox (a path out of /var/vmail)": (
        mailbox('"ben/../../../etc@example.org"'), "mailboxes[1].address",
        "ben/../../../etc@example.org", LOCALPART_RULE),
    "hash sign in the ACME e-mail": (
        'tls: {acme_email: "ops#x@example.org"}\n' + VALID,
        "tls.acme_email", "ops#x@example.org", LOCALPART_RULE),
    "newline after a mailbox address": (
        mailbox('"ben@example.org\\nroot@example.org"'), "mailboxes[1].address",
        "ben@example.org\\nroot@example.org", "is not a valid email address"),
    "leading dash in a mailbox (an option)": (
        mailbox('"-rf@example.org"'), "mailboxes[1].address", "-rf@example.org", LOCALPART_RULE),
    "leading dot in a mailbox": (
        mailbox('".ben@example.org"'), "mailboxes[1].address", ".ben@example.org", LOCALPART_RULE),
    "trailing dot in a mailbox": (
        mailbox('"ben.@example.org"'), "mailboxes[1].address", "ben.@example.org", LOCALPART_RULE),
    "double dot in a remote alias target": (
        replace("someone@elsewhere.test", '"some..one@elsewhere.test"'),
        "aliases[1].to[2]", "some..one@elsewhere.test", LOCALPART_RULE),
    "local part of 65 characters": (
        mailbox("b" * 65 + "@example.org"), "mailboxes[1].address", "b" * 65 + "@example.org",
        "at most 64 characters"),
    # The system's name: config file comments, secrets/<name>/, the TSIG key's name.
    "newline in the name": (
        'name: "shop\\nmyhostname = evil.example"\n' + VALID,
        "name", "shop\\nmyhostname = evil.example", "is not a system name (allowed: a-z, 0-9 and -"),
    "slash in the name": (
        "name: ../../etc\n" + VALID, "name", "../../etc", "is not a system name"),
    "dot-dot as the name": (
        "name: '..'\n" + VALID, "name", "..", "is not a system name"),
    "name of 33 characters": (
        f"name: {'a' * 33}\n" + VALID, "name", "a" * 33, "at most 32 characters"),
    "directory name that is not a name": (
        VALID, "name", "Client_One", "is not a system name (from the data file's directory: set name:)",
        "Client_One"),
    # certbot's command line.
    "space in the ACME e-mail": (
        'tls: {acme_email: "ops -m x@example.org"}\n' + VALID,
        "tls.acme_email", "ops -m x@example.org", "is not a valid email address"),
    "semicolon in the ACME e-mail": (
        'tls: {acme_email: "ops;reboot@example.org"}\n' + VALID,
        "tls.acme_email", "ops;reboot@example.org", LOCALPART_RULE),
    "command substitution in the ACME directory": (
        'tls: {acme_directory: "https://ca.example.org/$(reboot)"}\n' + VALID,
        "tls.acme_directory", "https://ca.example.org/$(reboot)", "is not an https:// URL"),
    "quote in the ACME directory": (
        "tls: {acme_directory: \"https://ca.example.org/dir'\"}\n" + VALID,
        "tls.acme_directory", "https://ca.example.org/dir'", "is not an https:// URL"),
    "backtick in the ACME directory": (
        'tls: {acme_directory: "https://ca.example.org/`reboot`"}\n' + VALID,
        "tls.acme_directory", "https://ca.example.org/`reboot`", "is not an https:// URL"),
    # pyinfra's SSH connection.
    "ssh user with a space": (
        replace("roles: [backup_mx]}", "roles: [backup_mx], ssh: {user: 'root -oProxyCommand=sh'}}"),
        "hosts.mx2.example.org.ssh.user", "root -oProxyCommand=sh", "is not a user name"),
    "ssh port out of range": (
        replace("roles: [backup_mx]}", "roles: [backup_mx], ssh: {port: 70000}}"),
        "hosts.mx2.example.org.ssh.port", "70000", "is not a port (1 to 65535)"),
    "ssh port with a command": (
        replace("roles: [backup_mx]}", "roles: [backup_mx], ssh: {port: '22; reboot'}}"),
        "hosts.mx2.example.org.ssh.port", "22; reboot", "is not a port"),
    "ssh hostname with an option": (
        replace("roles: [backup_mx]}", "roles: [backup_mx], ssh: {hostname: '-oProxyCommand=sh'}}"),
        "hosts.mx2.example.org.ssh.hostname", "-oProxyCommand=sh", "is not a host name or IP address"),
    # Host names and addresses: /etc/hosts, main.cf, knot.conf, certbot's -d.
    "FQDN with an underscore": (
        replace("  mx2.example.org:", "  mx_2.example.org:"),
        "hosts.mx_2.example.org", "mx_2.example.org", "is not a valid domain name"),
    "FQDN in upper case": (
        replace("  mx2.example.org:", "  MX2.example.org:"),
        "hosts.MX2.example.org", "MX2.example.org", "is not a valid domain name (lower case"),
    "FQDN with a newline": (
        replace("  mx2.example.org:", '  "mx2.example.org\\nevil.example":'),
        "hosts.mx2.example.org\\nevil.example", "mx2.example.org\\nevil.example",
        "is not a valid domain name"),
    "domain with a trailing newline": (
        replace("  - name: example.net", '  - name: "example.net\\n"'),
        "domains[1].name", "example.net\\n", "is not a valid domain name"),
    "host address that is not an IP": (
        replace("address: 192.0.2.11", "address: mx2.example.org"),
        "hosts.mx2.example.org.address", "mx2.example.org", "is not an IP address"),
    "host address with a scope carrying a command": (
        replace("address: 192.0.2.11", "address: 'fe80::1%eth0;reboot'"),
        "hosts.mx2.example.org.address", "fe80::1%eth0;reboot", "is not an IP address"),
    "greylisting network with a command": (
        "greylisting: {exempt_networks: ['10.0.0.0/8; reboot']}\n" + VALID,
        "greylisting.exempt_networks[0]", "10.0.0.0/8; reboot", "is not a network"),
    "greylisting network with a scope and a quote": (
        "greylisting: {exempt_networks: ['fe80::%x\"/64']}\n" + VALID,
        "greylisting.exempt_networks[0]", 'fe80::%x"/64', "is not a network"),
    "DNS update server that is not an address": (
        "dns: {publish: {server: 'ns1.example.org; reboot'}}\n" + VALID,
        "dns.publish.server", "ns1.example.org; reboot", "is not an IP address"),
    "DNS update port out of range": (
        "dns: {publish: {server: 192.0.2.53, port: 70000}}\n" + VALID,
        "dns.publish.port", "70000", "is not a port (1 to 65535)"),
    "TSIG algorithm with a command": (
        "dns: {publish: {server: 192.0.2.53, tsig_algorithm: 'hmac-sha256; reboot'}}\n" + VALID,
        "dns.publish.tsig_algorithm", "hmac-sha256; reboot", "unknown TSIG algorithm"),
    # Backups: systemd units, the hosts' settings, secrets/.
    "backup schedule with a quote": (
        "backup: {schedule: \"daily'\"}\n" + WITH_BACKUP_HOST,
        "backup.schedule", "daily'", "is not a systemd calendar expression"),
    "backup check with a newline": (
        'backup: {check: "weekly\\nExecStart=/bin/sh"}\n' + WITH_BACKUP_HOST,
        "backup.check", "weekly\\nExecStart=/bin/sh", "is not a systemd calendar expression"),
    "repository URL with a quote": (
        repository("\"sftp:u@box.example:/m/{host}'\""),
        "backup.repositories[0].url", "sftp:u@box.example:/m/{host}'", "is not a repository URL"),
    "repository URL with a space": (
        repository('"sftp:u@box.example:/m/{host} -o ProxyCommand=sh"'),
        "backup.repositories[0].url", "sftp:u@box.example:/m/{host} -o ProxyCommand=sh",
        "is not a restic repository URL"),
    "repository URL with command substitution": (
        repository('"sftp:u@box.example:/m/$(reboot)/{host}"'),
        "backup.repositories[0].url", "sftp:u@box.example:/m/$(reboot)/{host}",
        "is not a repository URL (allowed: letters"),
    "repository environment that is a parent directory": (
        repository('"sftp:u@box.example:/m/{host}"', environment="'..'"),
        "backup.repositories[0].environment", "..", "is not a file name in secrets/<system>/backup/"),
    # Password hashes.
    "password hashes file above the data directory": (
        "password_hashes_file: ../hashes.yml\n" + VALID,
        "password_hashes_file", "../hashes.yml", "is not a file in the data file's directory"),
    "password hashes file by absolute path": (
        "password_hashes_file: /etc/passwd\n" + VALID,
        "password_hashes_file", "/etc/passwd", "is not a file in the data file's directory"),
    "password hashes file escaping through a subdirectory": (
        "password_hashes_file: sub/../../hashes.yml\n" + VALID,
        "password_hashes_file", "sub/../../hashes.yml", "is not a file in the data file's directory"),
    "password hashes file that is not a mapping": (
        "password_hashes_file: list.yml\n" + VALID,
        "password_hashes_file", "list.yml", "does not map addresses to hashes"),
    "placeholder password hash": (
        replace(f'    password_hash: "{HASH}"\n    protocols',
                '    password_hash: "{SHA512-CRYPT}$6$REPLACE-ME..."\n    protocols'),
        "mailboxes[1].password_hash", "{SHA512-CRYPT}$6$REPLACE-ME...",
        "is a placeholder: make a hash with `make hash-password`"),
    # Numbers YAML can spell that no configuration file takes.
    "spam score that is not a number (.nan)": (
        "spam: {junk: .nan}\n" + VALID, "spam.junk", "nan", "is not a positive score"),
    "spam score that is infinite": (
        "spam: {reject: .inf}\n" + VALID, "spam.reject", "inf", "is not a positive score"),
    "quota of nothing": (
        replace("    quota: 2G", "    quota: 0G"), "mailboxes[1].quota", "0G", "is not a size from 1 byte"),
    "quota beyond any disk": (
        replace("    quota: 2G", "    quota: 2000T"), "mailboxes[1].quota", "2000T",
        "is not a size from 1 byte to 1024T"),
    "TTL beyond DNS's range": (
        "dns: {ttl: 4294967296}\n" + VALID, "dns.ttl", "4294967296", "is more than 2147483647"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_refused_naming_file_field_and_value(write_data, case):
    text, field, value, rule, *directory = BAD[case]
    # Files a password_hashes_file could reach, were it allowed to.
    write_data(f'ben@example.org: "{HASH}"\n', "hashes.yml", directory=".")
    write_data("- a\n- b\n", "list.yml", *directory)
    path = write_data(text, "mail.yml", *directory)
    with pytest.raises(DataError) as err:
        load_system(path)
    message = str(err.value)
    assert (err.value.file, err.value.where) == (str(path), field)
    assert message.startswith(f"{path}: {field}: "), message
    assert f"'{value}'" in message, message
    assert rule in message, message
    assert "\n" not in message      # one line, whatever the value holds


def test_the_catalogue_covers_every_character_a_local_part_must_not_hold():
    refused = "".join(value.split("@")[0] for text, field, value, rule, *_ in BAD.values()
                      if rule == LOCALPART_RULE)
    assert set("`$|&'{}/#") <= set(refused)
    assert len(BAD) >= 25


def test_the_same_values_load_where_they_are_valid(write_data):
    """Not every refusal is a catch-all: close, valid variants of the cases load."""
    text = ("name: client-one\npostmaster: post.master@example.org\n"
            "tls: {acme_email: ops+acme@example.org, acme_directory: 'https://ca.example.org:14000/dir'}\n"
            "greylisting: {exempt_networks: ['10.0.0.0/8', '2001:db8::/32']}\n"
            "dns: {publish: {server: '2001:db8::53', port: 5300}, ttl: 3600}\n"
            "password_hashes_file: hashes/all.yml\n"
            + replace("address: 192.0.2.11, roles: [backup_mx]}",
                      "address: '2001:db8::11', roles: [backup_mx], "
                      "ssh: {hostname: mx2-admin, user: deploy_1, port: 2222}}",
                      replace("someone@elsewhere.test", "some.one+x@elsewhere.test"))
            .replace("ben@example.org", "b_e-n.1@example.org")
            + "  - address: post.master@example.org\n    to: anna@example.org\n")
    write_data(f'anna@example.org: "{HASH}"\n', "all.yml", directory="system/hashes")
    system = load_system(write_data(text))
    assert system.name == "client-one"
    assert system.hosts[1].ssh == {"hostname": "mx2-admin", "user": "deploy_1", "port": 2222}
    assert [m.address for m in system.mailboxes] == ["anna@example.org", "b_e-n.1@example.org"]
    assert system.dns.publish.server == "2001:db8::53"
    assert load_system(write_data(VALID, directory="client-2")).name == "client-2"


def test_secrets_stay_under_their_directory(tmp_path, monkeypatch):
    """Behind the model's checks: names that would leave secrets/ are refused."""
    from mailstack import secrets
    monkeypatch.setattr(secrets, "SECRETS", tmp_path / "secrets")
    for system, fqdn in (("../evil", "mx1.example.org"), ("..", "mx1.example.org"),
                         ("shop", "../../mx1.example.org")):
        with pytest.raises(ValueError):
            secrets.backup_secrets(system, fqdn)
    with pytest.raises(ValueError):
        secrets.backup_environment("shop", "../../tsig.json")
    assert not (tmp_path / "evil").exists()


def test_restore_mailbox_quotes_the_address_in_the_remote_command(monkeypatch):
    """The address was checked against the model; the shell still gets it quoted."""
    import types

    from mailstack import __main__, facts
    address = "x';reboot;'@example.org"        # what the model refuses, quoted anyway
    system = types.SimpleNamespace(stores=[types.SimpleNamespace(address=address)],
                                   primary_mx=types.SimpleNamespace(fqdn="mx1.example.org"),
                                   name="shop")
    monkeypatch.setattr(__main__, "inventory_system", lambda inventory: (system, {}))
    commands = []
    monkeypatch.setattr(facts, "run_here", lambda inv, limit, command: commands.append(command) or True)
    with pytest.raises(SystemExit):
        __main__.main(["restore-mailbox", "inv.py", address, "--as-of", "2026-01-01 10:00"])
    assert commands == ["mailstack-backup restore-mailbox 'x'\"'\"';reboot;'\"'\"'@example.org' "
                        "--as-of '2026-01-01 10:00'"]

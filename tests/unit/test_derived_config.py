"""What the roles render is derived from the model: DNS, Postfix maps, Dovecot files."""
import hashlib
import subprocess
from pathlib import Path

from mailstack.dns import zone_file, zone_records
from mailstack.dovecot import passwd_file, users_file
from mailstack.host.password import hash_password, parse_changes as password_changes
from mailstack.model import load_system

from mailstack.postfix import relay_recipients, virtual_aliases, virtual_mailboxes
from mailstack.queue import per_domain

from .conftest import HASH, VALID


def system(write_data):
    return load_system(write_data(VALID))


def test_mx_records_put_primary_at_10_and_backup_at_20(write_data):
    zones = zone_records(system(write_data))
    mx = sorted(r.value for r in zones["example.org"] if r.rtype == "MX")
    assert mx == ["10 mx1.example.org.", "20 mx2.example.org."]
    assert {(r.name, r.value) for r in zones["example.org"] if r.rtype == "A"} == {
        ("mx1.example.org.", "192.0.2.10"), ("mx2.example.org.", "192.0.2.11")}
    # example.net's mail hosts live in example.org: no A records of its own.
    assert not [r for r in zones["example.net"] if r.rtype in ("A", "AAAA")]


def test_every_domain_gets_spf_dmarc_mta_sts_tls_rpt_srv_and_client_names(write_data):
    s = system(write_data)
    by = {(r.name, r.rtype): r.value for r in zone_records(s)["example.net"]}
    assert by[("example.net.", "TXT")] == '"v=spf1 mx -all"'
    assert by[("_dmarc.example.net.", "TXT")] == '"v=DMARC1; p=reject; rua=mailto:postmaster@example.org"'
    assert by[("_smtp._tls.example.net.", "TXT")] == '"v=TLSRPTv1; rua=mailto:postmaster@example.org"'
    assert by[("_mta-sts.example.net.", "TXT")].startswith('"v=STSv1; id=')
    assert by[("mta-sts.example.net.", "CNAME")] == "mx1.example.org."
    assert by[("autoconfig.example.net.", "CNAME")] == "mx1.example.org."
    assert by[("_submissions._tcp.example.net.", "SRV")] == "0 1 465 mx1.example.org."
    assert by[("_imaps._tcp.example.net.", "SRV")] == "0 1 993 mx1.example.org."


def sts_ids(mail):
    """{domain: its _mta-sts TXT value}."""
    return {domain: r.value for domain, records in zone_records(mail).items()
            for r in records if r.name.startswith("_mta-sts.")}


def test_mta_sts_id_changes_only_with_the_policy(write_data):
    from mailstack.dns import mta_sts_policy
    enforce = ("version: STSv1\nmode: enforce\nmx: mx1.example.org\nmx: mx2.example.org\n"
               "max_age: 604800\n")
    s = system(write_data)
    assert mta_sts_policy(s) == enforce
    # Every domain serves that one policy, so all publish the same id: a hash of its text.
    enforce_id = f'"v=STSv1; id={hashlib.sha256(enforce.encode()).hexdigest()[:20]}"'
    assert sts_ids(s) == {"example.org": enforce_id, "example.net": enforce_id}
    # Another mailbox, alias or DMARC policy leaves the MTA-STS policy, and its id, as it was.
    other = load_system(write_data(
        "dns: {dmarc_policy: quarantine}\n" + VALID
        + "  - address: sales@example.org\n    to: anna@example.org\n"))
    assert sts_ids(other) == sts_ids(s)
    testing = load_system(write_data("dns: {mta_sts_mode: testing}\n" + VALID))
    assert mta_sts_policy(testing) == enforce.replace("mode: enforce", "mode: testing")
    testing_id = hashlib.sha256(enforce.replace("enforce", "testing").encode()).hexdigest()[:20]
    assert sts_ids(testing) == {"example.org": f'"v=STSv1; id={testing_id}"',
                                "example.net": f'"v=STSv1; id={testing_id}"'}


def test_dkim_and_tlsa_records_come_from_host_facts(write_data):
    key = "MII" + "A" * 390   # a 2048-bit key is longer than one TXT string
    zones = zone_records(system(write_data), facts={
        "dkim": {"example.net": {"ms202611": key}}, "tlsa": {"mx1.example.org": "ab" * 32}})
    dkim = [r for r in zones["example.net"] if r.name == "ms202611._domainkey.example.net."]
    assert len(dkim) == 1 and dkim[0].rtype == "TXT"
    strings = dkim[0].value.split('" "')
    assert all(len(x.strip('"')) <= 255 for x in strings)
    assert "".join(x.strip('"') for x in strings) == f"v=DKIM1; k=rsa; p={key}"
    tlsa = [r for r in zones["example.org"] if r.rtype == "TLSA"]
    assert [(r.name, r.value) for r in tlsa] == [("_25._tcp.mx1.example.org.", "3 1 1 " + "ab" * 32)]


def test_extra_zone_and_zone_file(write_data):
    zones = zone_records(system(write_data), {"example.test": {
        "mx": "mail.example.test", "hosts": {"mail.example.test": "192.0.2.20"},
        "txt": {"_mta-sts.example.test": "v=STSv1; id=1"}}})
    text = zone_file("example.test", zones["example.test"], "ns.example.org", "hostmaster@example.org")
    assert "@ IN SOA ns.example.org. hostmaster.example.org. 1 " in text
    assert "example.test. 300 IN MX 10 mail.example.test." in text
    assert "mail.example.test. 300 IN A 192.0.2.20" in text
    assert '_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"' in text



def knot_conf(mail, zones, key):
    import types

    import jinja2
    import yaml
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(
        Path(__file__).resolve().parents[2] / "templates" / "dns"),
        trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    text = env.get_template("etc/knot/knot.conf.j2").render(
        mail=mail, host=types.SimpleNamespace(data=types.SimpleNamespace(address="192.0.2.53")),
        zones=zones, mail_zones={d.name for d in mail.domains}, port=53, key=key, rrl_rate=200)
    return yaml.safe_load(text)


def test_knot_writes_published_records_back_to_a_mail_zones_file_and_only_there(write_data):
    """At every start Knot applies a zone file's difference to its journal: a mail
    zone's file must hold what publish sent, or a restart drops MX, DKIM, TLSA."""
    mail = system(write_data)
    mail_zones = sorted(d.name for d in mail.domains)
    for key in ({"name": "k", "algorithm": "hmac-sha256", "secret": "c2VjcmV0"}, None):
        conf = knot_conf(mail, mail_zones + ["example.test"], key)
        default, = conf["template"]
        for zone in conf["zone"]:
            mail_zone = zone["domain"] in mail_zones
            assert zone.get("zonefile-sync", default["zonefile-sync"]) == (0 if mail_zone else -1), zone
            assert ("acl" in zone) == (mail_zone and key is not None), zone


def test_postfix_knows_every_address_and_keeps_mailboxes_out_of_catch_all(write_data):
    s = system(write_data)
    assert virtual_mailboxes(s) == ("anna@example.org example.org/anna/\n"
                                    "ben@example.org example.org/ben/\n")
    aliases = virtual_aliases(s).splitlines()
    assert "team@example.org anna@example.org, ben@example.org, someone@elsewhere.test" in aliases
    assert "@example.net anna@example.org" in aliases


def test_catch_all_does_not_swallow_real_mailboxes(write_data):
    text = VALID.replace("  - name: example.org\n", "  - name: example.org\n    catch_all: anna@example.org\n")
    aliases = virtual_aliases(load_system(write_data(text))).splitlines()
    assert "ben@example.org ben@example.org" in aliases
    assert aliases.index("ben@example.org ben@example.org") < aliases.index("@example.org anna@example.org")


def test_each_protocol_lists_only_mailboxes_allowed_to_use_it(write_data):
    s = system(write_data)
    assert [line.split(":")[0] for line in passwd_file(s, "imap").splitlines()] == ["anna@example.org"]
    assert [line.split(":")[0] for line in passwd_file(s, "pop3").splitlines()] == ["ben@example.org"]
    assert len(passwd_file(s, "smtp").splitlines()) == 2
    assert "ben@example.org::5000:5000::/var/vmail/example.org/ben::userdb_quota_storage_size=2147483648B" \
        in users_file(s, "2.4").splitlines()
    # Dovecot 2.3 (Debian 12) named the quota field differently.
    assert "ben@example.org::5000:5000::/var/vmail/example.org/ben::userdb_quota_rule=*:storage=2147483648B" \
        in users_file(s, "2.3").splitlines()


def test_hash_password_makes_a_verifiable_sha512_crypt_hash():
    h = hash_password("s3cret pass")
    assert h.startswith("{SHA512-CRYPT}$6$")
    salt = h.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="s3cret pass",
                           capture_output=True, text=True, check=True).stdout.strip()
    assert "{SHA512-CRYPT}" + again == h
    assert hash_password("s3cret pass") != h   # random salt


def test_hash_password_command_prints_a_hash_the_model_accepts(write_data):
    out = subprocess.run([__import__("sys").executable, "-m", "mailstack", "hash-password"],
                         input="another one\n", capture_output=True, text=True, check=True).stdout.strip()
    text = VALID.replace(VALID.split('password_hash: "')[1].split('"')[0], out)
    assert load_system(write_data(text)).mailboxes[0].password_hash == out
    # It is a hash of what was typed (openssl's own SHA512-crypt with the same salt).
    salt = out.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="another one",
                           capture_output=True, text=True, check=True).stdout.strip()
    assert out == "{SHA512-CRYPT}" + again


def test_each_mailbox_sends_as_itself_and_the_aliases_that_reach_it(write_data):
    from mailstack.postfix import sender_logins
    text = VALID + "  - address: all@example.org\n    to: team@example.org\n"
    logins = sender_logins(load_system(write_data(text))).splitlines()
    assert "anna@example.org anna@example.org" in logins
    assert "postmaster@example.org anna@example.org" in logins
    assert "team@example.org anna@example.org, ben@example.org" in logins
    assert "all@example.org anna@example.org, ben@example.org" in logins   # through team@


def test_retention_inherits_defaults_domain_then_mailbox(write_data):
    from mailstack.dovecot import retention_file
    text = ("defaults:\n  retention: {trash: 7d}\n" + VALID
            .replace("  - name: example.org\n", "  - name: example.org\n    retention: {junk: 2w}\n")
            .replace("    quota: 2G\n", "    quota: 2G\n    retention: {pop3_deleted: 10s}\n"))
    lines = retention_file(load_system(write_data(text))).splitlines()
    day = 86400
    assert lines == [f"anna@example.org {30 * day} {15 * day} {7 * day} {14 * day}",
                     f"ben@example.org 10 {15 * day} {7 * day} {14 * day}"]


def test_backup_mx_accepts_exactly_what_the_primary_accepts(write_data):
    lines = relay_recipients(system(write_data)).splitlines()
    assert lines == ["@example.net OK", "anna@example.org OK", "ben@example.org OK",
                     "postmaster@example.org OK", "team@example.org OK"]
    # Neither an unknown address of a domain without catch-all, nor a foreign target.
    assert not any(line.startswith(("nobody@example.org", "someone@elsewhere.test")) for line in lines)


def test_queue_is_summed_per_recipient_domain():
    queue = "\n".join([
        '{"arrival_time": 1000, "recipients": [{"address": "a@acme.test", "delay_reason": "connect to mx1 refused"},'
        ' {"address": "b@ACME.test"}, {"address": "c@globex.test"}]}',
        '{"arrival_time": 1090, "recipients": [{"address": "d@globex.test"}]}',
    ])
    assert per_domain(queue, now=1100) == {
        "acme.test": {"messages": 1, "oldest": 100, "reason": "connect to mx1 refused"},
        "globex.test": {"messages": 2, "oldest": 100, "reason": ""}}


def test_a_password_changed_on_the_host_survives_until_the_data_changes(write_data):
    mail = system(write_data)
    # The host records the hash of the data's hash its change replaced (VALID's HASH).
    base = hashlib.sha256(HASH.encode()).hexdigest()
    changes = password_changes(f"anna@example.org {base} {{SHA512-CRYPT}}$6$new$hash\n")
    assert "anna@example.org:{SHA512-CRYPT}$6$new$hash\n" in passwd_file(mail, "imap", changes)
    # The operator gives anna a new hash in the data: the data wins.
    stale = password_changes("anna@example.org 00ff {SHA512-CRYPT}$6$new$hash\n")
    assert f"anna@example.org:{HASH}\n" in passwd_file(mail, "imap", stale)


def test_each_login_may_send_as_itself_and_the_aliases_that_reach_it(write_data):
    from mailstack.postfix import senders_by_login
    lines = senders_by_login(system(write_data)).splitlines()
    assert lines == ["anna@example.org anna@example.org postmaster@example.org team@example.org",
                     "ben@example.org ben@example.org team@example.org"]


def test_every_host_name_has_spf_for_what_it_sends_with_an_empty_sender(write_data):
    by = {(r.name, r.rtype): r.value for r in zone_records(system(write_data))["example.org"]}
    assert by[("mx1.example.org.", "TXT")] == '"v=spf1 a -all"'
    assert by[("mx2.example.org.", "TXT")] == '"v=spf1 a -all"'


def test_the_report_domain_authorizes_dmarc_reports_for_the_other_domains(write_data):
    zones = zone_records(system(write_data))
    authorizations = [(z, r.name, r.value) for z, records in zones.items() for r in records
                      if "._report._dmarc." in r.name]
    # RFC 7489 7.1: example.net's reports go to postmaster@example.org.
    assert authorizations == [("example.org", "example.net._report._dmarc.example.org.", '"v=DMARC1"')]

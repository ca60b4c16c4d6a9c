"""A smarthost (relay: in the data): the model checks it and its password file before
any host is touched, the password reaches the primary's sasl_passwd only, and Postfix's
configuration sends the primary's internet mail through it over verified TLS while
the backup MX keeps handing its mail to the primary."""
import types
from pathlib import Path

import jinja2
import pytest

from mailstack.inventory import inventory
from mailstack.model import DEFAULTS, DataError, load_system
from mailstack.postfix import sasl_passwords

from .conftest import VALID

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PASSWORD = "s3cret-Relay+pass"
RELAY = ("relay:\n  host: smtp.provider.example\n  username: agency@provider.example\n"
         "  password_file: relay-password\n")


def with_relay(write_data, relay=RELAY, password=PASSWORD + "\n"):
    if password is not None:
        write_data(password, "relay-password")
    return write_data(relay + VALID)


def test_a_smarthost_with_a_login_loads_with_its_default_port(write_data):
    path = with_relay(write_data)
    relay = load_system(path).relay
    assert (relay.host, relay.port, relay.username) == (
        "smtp.provider.example", DEFAULTS["relay.port"], "agency@provider.example")
    assert relay.port == 587 and relay.nexthop == "[smtp.provider.example]:587"
    # relative to the data file, resolved on the operator's machine
    assert relay.password_file == path.parent / "relay-password"
    assert PASSWORD not in repr(load_system(path))     # the model never holds the password


def test_the_password_file_may_be_absolute_and_the_login_left_out(write_data, tmp_path):
    secret = tmp_path / "elsewhere" / "pw"
    secret.parent.mkdir()
    secret.write_text(PASSWORD)                          # no final newline: the same password
    relay = load_system(with_relay(write_data, RELAY.replace("relay-password", str(secret))
                                   + "  port: 465\n", password=None)).relay
    assert (relay.password_file, relay.port) == (secret, 465)
    plain = load_system(with_relay(write_data, "relay: {host: relay.isp.example}\n",
                                   password=None)).relay
    assert (plain.username, plain.password_file, plain.port) == (None, None, 587)
    assert load_system(write_data(VALID)).relay is None


# (relay data, password file content (None: no file), field, the value as shown, the rule)
BAD = {
    "host that is an address": (
        "relay: {host: 192.0.2.25}\n", None, "relay.host", "192.0.2.25", "is not a host name"),
    "host in upper case": (
        "relay: {host: SMTP.provider.example}\n", None, "relay.host", "SMTP.provider.example",
        "is not a host name (lower case"),
    "host with a port in it": (
        "relay: {host: 'smtp.provider.example:587'}\n", None, "relay.host",
        "smtp.provider.example:587", "is not a host name"),
    "host carrying a second line": (
        'relay: {host: "smtp.provider.example\\nrelayhost = evil.example"}\n', None, "relay.host",
        "smtp.provider.example\\nrelayhost = evil.example", "is not a host name"),
    "no host": (
        "relay: {port: 587}\n", None, "relay.host", None, "is required"),
    "port zero": (
        "relay: {host: smtp.provider.example, port: 0}\n", None, "relay.port", "0",
        "is not a port (1 to 65535)"),
    "port out of range": (
        "relay: {host: smtp.provider.example, port: 65536}\n", None, "relay.port", "65536",
        "is not a port (1 to 65535)"),
    "port as text": (
        "relay: {host: smtp.provider.example, port: '587'}\n", None, "relay.port", "587",
        "is not a port"),
    "empty username": (
        RELAY.replace("agency@provider.example", "''"), PASSWORD, "relay.username", "",
        "is not a login name"),
    "username with a colon (sasl_passwd's separator)": (
        RELAY.replace("agency@provider.example", "'agency:x'"), PASSWORD, "relay.username",
        "agency:x", "no space or colon"),
    "username with a space": (
        RELAY.replace("agency@provider.example", "'agency x'"), PASSWORD, "relay.username",
        "agency x", "no space or colon"),
    "username without a password file": (
        "relay: {host: smtp.provider.example, username: agency}\n", None, "relay.password_file",
        None, "is required with relay.username"),
    "password file without a username": (
        "relay: {host: smtp.provider.example, password_file: relay-password}\n", PASSWORD,
        "relay.password_file", "relay-password", "is given without relay.username"),
    "password file that is missing": (
        RELAY, None, "relay.password_file", "relay-password", "cannot be read (No such file"),
    "password file that is empty": (
        RELAY, "\n", "relay.password_file", "relay-password", "is empty"),
    "password file of two lines": (
        RELAY, PASSWORD + "\nsecond line\n", "relay.password_file", "relay-password",
        "does not hold one password on one line"),
    "password with a space at its end": (
        RELAY, PASSWORD + " \n", "relay.password_file", "relay-password",
        "does not hold one password on one line"),
    "misspelt key": (
        RELAY.replace("password_file", "pasword_file"), PASSWORD, "relay.pasword_file", None,
        "did you mean 'password_file'?"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_smarthost_data_is_refused_naming_file_field_and_value(write_data, case):
    relay, password, field, value, rule = BAD[case]
    path = with_relay(write_data, relay, password)
    with pytest.raises(DataError) as err:
        load_system(path)
    message = str(err.value)
    assert (err.value.file, err.value.where) == (str(path), field), message
    assert message.startswith(f"{path}: {field}: "), message
    if value is not None:
        assert f"'{value}'" in message, message
    assert rule in message, message
    assert "\n" not in message
    # Whatever is wrong with it, the password itself is never shown.
    assert PASSWORD not in message and "second line" not in message


def test_a_missing_password_file_names_where_it_was_looked_for(write_data):
    path = with_relay(write_data, password=None)
    with pytest.raises(DataError) as err:
        load_system(path)
    assert f"'relay-password' ({path.parent / 'relay-password'}) cannot be read" in str(err.value)


def test_the_login_is_keyed_by_the_relayhost_itself(write_data):
    relay = load_system(with_relay(write_data)).relay
    assert sasl_passwords(relay, PASSWORD) == \
        f"[smtp.provider.example]:587 agency@provider.example:{PASSWORD}\n"


def test_the_password_reaches_the_primary_only(write_data):
    groups = inventory(with_relay(write_data))
    (_, primary), = groups["primary_mx"]
    (_, backup), = groups["backup_mx"]
    assert primary["relay_password"] == PASSWORD
    assert "relay_password" not in backup


# --- what Postfix is told ----------------------------------------------------------

def render(name, mail, primary, **context):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / "postfix"),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    fqdn = (mail.primary_mx if primary else mail.backup_mx[0]).fqdn
    return env.get_template(f"etc/postfix/{name}.j2").render(
        host=types.SimpleNamespace(data=types.SimpleNamespace(fqdn=fqdn)), mail=mail,
        primary=primary, **context)


def main_cf(mail, primary):
    text = render("main.cf", mail, primary, tls_cert="/c.pem", tls_key="/k.pem",
                  quota_status_port=12340, milter=types.SimpleNamespace(postfix="rspamd/milter.sock"),
                  backup_mx=[h.address for h in mail.backup_mx], tlsrpt_socket=None, closed=False,
                  sasl_passwd="sasl_passwd")
    settings = {}
    for line in text.replace("\n    ", " ").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            assert key not in settings, f"{key} set twice"
            settings[key] = value
    return settings


def master_cf(mail, primary):
    """{service name: [its -o options]}."""
    services, current = {}, None
    for line in render("master.cf", mail, primary, relay=mail.relay if primary else None).splitlines():
        if line.startswith("  -o "):
            services[current].append(line[5:])
        elif line and not line.startswith("#"):
            current = line.split()[0]
            services[current] = []
    return services


def test_the_primary_sends_through_the_smarthost_logged_in_over_verified_tls(write_data):
    mail = load_system(with_relay(write_data))
    main = main_cf(mail, primary=True)
    assert main["relayhost"] == "[smtp.provider.example]:587"
    assert main["default_transport"] == "smarthost"
    assert main["smtp_sasl_auth_enable"] == "yes"
    assert main["smtp_sasl_password_maps"] == "hash:/etc/postfix/sasl_passwd"
    assert main["smtp_sasl_security_options"] == "noanonymous"
    assert main["smtp_sasl_tls_security_options"] == "noanonymous"
    assert main["smtp_tls_CAfile"] == "/etc/ssl/certs/ca-certificates.crt"
    assert main["smtp_tls_mandatory_protocols"] == ">=TLSv1.2"
    # Its transport: TLS verified against the CAs and the name, no policy lookup that
    # could lower it; implicit TLS only on 465.
    smarthost = master_cf(mail, primary=True)["smarthost"]
    assert {"smtp_tls_security_level=secure", "smtp_tls_secure_cert_match=nexthop",
            "smtp_tls_policy_maps="} <= set(smarthost)
    assert "smtp_tls_wrappermode=yes" not in smarthost
    # DKIM signing (rspamd, the milter of every message) is as without a smarthost.
    plain = main_cf(load_system(write_data(VALID)), primary=True)
    assert {k: main[k] for k in ("smtpd_milters", "non_smtpd_milters", "milter_default_action")} == \
        {k: plain[k] for k in ("smtpd_milters", "non_smtpd_milters", "milter_default_action")}


def test_port_465_is_implicit_tls_and_no_login_means_no_sasl(write_data):
    mail = load_system(with_relay(write_data, "relay: {host: relay.isp.example, port: 465}\n",
                                  password=None))
    assert "smtp_tls_wrappermode=yes" in master_cf(mail, primary=True)["smarthost"]
    main = main_cf(mail, primary=True)
    assert main["relayhost"] == "[relay.isp.example]:465"
    assert not [k for k in main if k.startswith("smtp_sasl_")]


def test_the_backup_mx_and_a_system_without_smarthost_never_use_one(write_data):
    mail = load_system(with_relay(write_data))
    backup = main_cf(mail, primary=False)
    assert "relayhost" not in backup and "default_transport" not in backup
    assert not [k for k in backup if k.startswith("smtp_sasl_")]
    assert backup["relay_transport"] == "relay:[mx1.example.org]:25"
    assert "smarthost" not in master_cf(mail, primary=False)
    plain = load_system(write_data(VALID))
    assert "relayhost" not in main_cf(plain, primary=True)
    assert "smarthost" not in master_cf(plain, primary=True)
    # Without a smarthost, DANE and MTA-STS decide outbound TLS as before.
    assert main_cf(plain, primary=True)["smtp_tls_policy_maps"] == "socketmap:inet:127.0.0.1:8461:postfix"

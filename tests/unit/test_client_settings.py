"""Client settings (autoconfig, autodiscover, Apple profile) offer exactly what
each mailbox may use."""
import plistlib
import xml.etree.ElementTree as ET

from mailstack.clients import ADDRESS, client_settings
from mailstack.model import load_system

from .conftest import VALID

AD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def settings(write_data):
    return client_settings(load_system(write_data(VALID)))


def incoming(doc):
    return {(s.get("type"), s.findtext("port"), s.findtext("socketType"))
            for s in ET.fromstring(doc).iter("incomingServer")}


def test_autoconfig_offers_pop3_only_to_mailboxes_allowed_to_use_it(write_data):
    s = settings(write_data)
    assert incoming(s["mailboxes"]["anna@example.org"]["autoconfig"]) == {("imap", "993", "SSL")}
    assert incoming(s["mailboxes"]["ben@example.org"]["autoconfig"]) == {("pop3", "995", "SSL")}
    outgoing = {(o.findtext("hostname"), o.findtext("port"), o.findtext("socketType"))
                for o in ET.fromstring(s["mailboxes"]["anna@example.org"]["autoconfig"]).iter("outgoingServer")}
    assert outgoing == {("mx1.example.org", "465", "SSL"), ("mx1.example.org", "587", "STARTTLS")}


def test_autodiscover_names_the_login_and_the_protocols(write_data):
    doc = ET.fromstring(settings(write_data)["mailboxes"]["ben@example.org"]["autodiscover"])
    protocols = {(p.findtext(f"{AD}Type"), p.findtext(f"{AD}Port"), p.findtext(f"{AD}LoginName"),
                  p.findtext(f"{AD}SSL"), p.findtext(f"{AD}SPA")) for p in doc.iter(f"{AD}Protocol")}
    assert protocols == {("POP3", "995", "ben@example.org", "on", "off"),
                         ("SMTP", "465", "ben@example.org", "on", "off")}
    assert len(list(doc.iter(f"{AD}Account"))) == 1


def test_apple_profile_is_a_valid_stable_plist(write_data):
    first = settings(write_data)["mailboxes"]["anna@example.org"]["mobileconfig"]
    profile = plistlib.loads(first.encode())
    account = profile["PayloadContent"][0]
    assert profile["PayloadType"] == "Configuration"
    assert (account["EmailAccountType"], account["IncomingMailServerPortNumber"],
            account["IncomingMailServerUseSSL"]) == ("EmailTypeIMAP", 993, True)
    assert first == settings(write_data)["mailboxes"]["anna@example.org"]["mobileconfig"]


def test_unknown_address_gets_its_domains_settings(write_data):
    domain = settings(write_data)["domains"]["example.org"]
    assert incoming(domain["autoconfig"]) == {("imap", "993", "SSL"), ("pop3", "995", "SSL")}
    assert ADDRESS in domain["autodiscover"]

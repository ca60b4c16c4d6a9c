"""Mail client settings derived from the model (pure logic, no I/O): Thunderbird
autoconfig, Outlook autodiscover (POX) and Apple configuration profiles.

Each mailbox gets its own documents, offering IMAP (993) and POP3 (995) only where
the mailbox may use them, plus submission (465, and 587 where the format can say
STARTTLS). An address the model does not know gets its domain's document, with
ADDRESS standing for the address the client asked about.
"""
import plistlib
import uuid
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from xml.sax.saxutils import escape

from .model import MailSystem

ADDRESS = "@@ADDRESS@@"
INCOMING = {"imap": ("IMAP", 993, "EmailTypeIMAP"), "pop3": ("POP3", 995, "EmailTypePOP")}
NAMESPACE = uuid.UUID("6f1d9c2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f")


def autoconfig(domain, server, protocols):
    """Thunderbird's config-v1.1.xml (it fills %EMAILADDRESS% itself)."""
    def block(tag, kind, port, socket):
        return (f'    <{tag} type="{kind}">\n      <hostname>{server}</hostname>\n'
                f"      <port>{port}</port>\n      <socketType>{socket}</socketType>\n"
                "      <username>%EMAILADDRESS%</username>\n"
                f"      <authentication>password-cleartext</authentication>\n    </{tag}>\n")
    servers = "".join(block("incomingServer", p, INCOMING[p][1], "SSL") for p in ("imap", "pop3")
                      if p in protocols)
    servers += block("outgoingServer", "smtp", 465, "SSL") + block("outgoingServer", "smtp", 587, "STARTTLS")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">\n'
            f'  <emailProvider id="{domain}">\n    <domain>{domain}</domain>\n'
            f"    <displayName>{domain} mail</displayName>\n"
            f"    <displayShortName>{domain}</displayShortName>\n{servers}"
            "  </emailProvider>\n</clientConfig>\n")


def autodiscover(address, server, protocols):
    """Outlook's POX answer: every protocol in one Account; implicit TLS ports only
    (Outlook reads SSL=on as TLS from the first byte)."""
    login = escape(address)

    def block(kind, port):
        return (f"      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{server}</Server>\n"
                f"        <Port>{port}</Port>\n        <DomainRequired>off</DomainRequired>\n"
                f"        <LoginName>{login}</LoginName>\n        <SPA>off</SPA>\n"
                f"        <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n")
    blocks = "".join(block(*INCOMING[p][:2]) for p in ("imap", "pop3") if p in protocols)
    blocks += block("SMTP", 465)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">\n'
            '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">\n'
            f"    <User>\n      <DisplayName>{login}</DisplayName>\n    </User>\n"
            "    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n"
            f"{blocks}    </Account>\n  </Response>\n</Autodiscover>\n")


def mobileconfig(address, domain, server, protocols):
    """An Apple configuration profile: one account, IMAP if allowed, else POP3.
    UUIDs are derived from the address, so the same input gives the same bytes."""
    kind = "imap" if "imap" in protocols else "pop3"
    _, port, account_type = INCOMING[kind]
    ident = ".".join(reversed(domain.split("."))) + ".mailstack." + address.split("@")[0]
    account = {
        "EmailAccountDescription": address, "EmailAccountName": address,
        "EmailAccountType": account_type, "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": server, "IncomingMailServerPortNumber": port,
        "IncomingMailServerUseSSL": True, "IncomingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": server, "OutgoingMailServerPortNumber": 465,
        "OutgoingMailServerUseSSL": True, "OutgoingMailServerUsername": address,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDescription": f"Mail account {address}",
        "PayloadDisplayName": f"{kind.upper()} account ({address})",
        "PayloadIdentifier": ident + ".account", "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": str(uuid.uuid5(NAMESPACE, address + "/account")).upper(), "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [account], "PayloadDescription": f"Mail settings for {domain}",
        "PayloadDisplayName": address, "PayloadIdentifier": ident, "PayloadOrganization": domain,
        "PayloadRemovalDisallowed": False, "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(NAMESPACE, address)).upper(), "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, sort_keys=False).decode()


def documents(address, domain, server, protocols):
    return {"autoconfig": autoconfig(domain, server, protocols),
            "autodiscover": autodiscover(address, server, protocols),
            "mobileconfig": mobileconfig(address, domain, server, protocols)}


def client_settings(system: MailSystem) -> dict:
    """{"mailboxes": {address: docs}, "domains": {domain: docs}}; a domain's docs
    offer what any of its mailboxes may use."""
    server = system.primary_mx.fqdn
    out = {"mailboxes": {}, "domains": {}}
    for m in system.mailboxes:
        out["mailboxes"][m.address] = documents(m.address, m.domain, server, m.protocols)
    for d in system.domains:
        protocols = {p for m in system.mailboxes if m.domain == d.name for p in m.protocols} or {"imap"}
        out["domains"][d.name] = documents(ADDRESS, d.name, server, protocols)
    return out


def settings_text(system: MailSystem, address: str) -> str:
    """What a new user (or the operator setting up their device) needs, as text:
    the same servers and ports the documents above offer this mailbox."""
    m = next(m for m in system.mailboxes if m.address == address)
    server, domain = system.primary_mx.fqdn, m.domain
    lines = [f"Mail settings for {address}:", f"  user name   {address} (and its password)"]
    lines += [f"  {INCOMING[p][0]:11} {server}, port {INCOMING[p][1]}, TLS"
              for p in ("imap", "pop3") if p in m.protocols]
    lines += [f"  SMTP        {server}, port 465, TLS (or 587, STARTTLS)",
              f"  webmail     https://webmail.{domain}/",
              f"  Thunderbird finds these itself (https://autoconfig.{domain}/mail/config-v1.1.xml)",
              f"  Apple       https://autoconfig.{domain}/mailstack.mobileconfig?emailaddress={address}"]
    return "\n".join(lines)


def welcome_message(system: MailSystem, address: str) -> EmailMessage:
    """The mail a new person finds first: their settings, from the postmaster (never
    the password: they have that from whoever gave it to them)."""
    m = next(m for m in system.mailboxes if m.address == address)
    message = EmailMessage()
    message["From"] = formataddr((f"Postmaster of {m.domain}", system.postmaster))
    message["To"] = formataddr((m.name or "", address))
    message["Subject"] = f"Welcome: your mailbox {address}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid("welcome", domain=m.domain)
    message["Auto-Submitted"] = "auto-generated"        # RFC 3834: no vacation reply to it
    message.set_content(
        f"Hello{' ' + m.name if m.name else ''},\n\n"
        f"your mailbox {address} is ready. Sign in with this address and the password\n"
        "you were given; change it in webmail (Settings, Password) whenever you like.\n\n"
        f"{settings_text(system, address)}\n\n"
        "Most mail apps set themselves up from the address alone (Thunderbird, Outlook;\n"
        "on an iPhone or a Mac open the Apple link above on the device).\n\n"
        f"Questions: write to {system.postmaster}.\n")
    return message

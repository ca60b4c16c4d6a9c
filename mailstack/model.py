"""The mail system model: one YAML file in, one validated, typed object out.

Every role reads only this model. Loading happens before pyinfra contacts any host;
any bad input raises DataError naming the file, the field and the value.
"""
from __future__ import annotations

import datetime
import difflib
import ipaddress
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from .host.backup_tools import TOOLS

# libyaml's loader where PyYAML has it (python3-yaml and the wheels do): the same
# documents, read 7x faster (a 1,000-mailbox system: 36 ms instead of 255 ms).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PROTOCOLS = ("imap", "pop3")
HOST_ROLES = ("primary_mx", "backup_mx", "backup", "dns", "monitoring")
# Dovecot schemes we accept; the value after the prefix must look like that scheme.
HASH_SCHEMES = {
    "SHA512-CRYPT": r"\$6\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}",
    "SHA256-CRYPT": r"\$5\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}",
    "BLF-CRYPT": r"\$2[aby]\$[0-9][0-9]\$[./0-9A-Za-z]{53}",
    "ARGON2ID": r"\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[+/0-9A-Za-z]+\$[+/0-9A-Za-z]+",
}
CRYPT_PREFIX = {"$6$": "SHA512-CRYPT", "$5$": "SHA256-CRYPT", "$2y$": "BLF-CRYPT",
                "$2b$": "BLF-CRYPT", "$2a$": "BLF-CRYPT", "$argon2id$": "ARGON2ID"}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# Patterns are used with fullmatch: `$` would also match before a final newline.
LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_RE = re.compile(rf"(?=.{{1,253}}\Z)({LABEL}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]")
# A host name or FQDN to reach a host at (ssh.hostname): one label is enough.
HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}\Z){LABEL}(\.{LABEL})*")
# Local parts end up in file names (/var/vmail/<domain>/<local part>), lookup tables
# and command lines run as root: RFC 5321's dot-atom without every character a
# shell, a path or a config file gives a meaning to. No leading `-` either: the
# address is an argument of mailstack's commands and must never read as an option.
LOCALPART_RE = re.compile(r"[a-z0-9_+][a-z0-9_+-]*(\.[a-z0-9_+-]+)*")
LOCALPART_ALLOWED = ("a-z, 0-9 and . _ + -; not starting with . or -, not ending with ., "
                     "no .., at most 64 characters")
# The system's name: secrets/<name>/, the TSIG key's name, comments in config files.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
# A person's name on a mailbox (greetings, lists): letters of any script, digits,
# spaces and . ' - only; nothing a header or a terminal would read as syntax.
PERSON_RE = re.compile(r"\w[\w .'-]{0,63}")
# A shared mailbox's folder: a plain name (no hierarchy, no leading dot: Maildir++
# keeps folders as ".name" directories), shown as is in every client.
FOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,63}")
# What a member of a shared mailbox may do, each level with the one before it:
# read it, file mail in it (IMAP's MOVE is a copy and an expunge), add and remove
# its folders. Dovecot's ACL rights per level: mailstack/dovecot.py.
SHARED_RIGHTS = ("read", "write", "delete")
SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# An https URL without anything a shell or a config file would read as syntax.
HTTPS_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/:@+=,-]*)?")
# A smarthost's login: what providers hand out (a name, an address, an API key id);
# no space or colon (Postfix's sasl_passwd map reads "user:password").
RELAY_USER_RE = re.compile(r"[A-Za-z0-9._%+=@/~-]{1,255}")
# Password hash values standing for "put a real hash here" (the example's).
PLACEHOLDER_RE = re.compile(r"REPLACE|\.\.\.|<|>", re.I)
PORT_MAX = 65535
SIZE_MAX = 1024**5   # 1024T: anything bigger is a typo
WEBMAIL_DATABASES = ("sqlite", "postgresql")
BACKUP_TOOLS = tuple(TOOLS)
PRUNE_FROM = ("backup_host", "operator")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
DMARC_POLICIES = ("none", "quarantine", "reject")
MTA_STS_MODES = ("enforce", "testing", "none")
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")   # oldest first

# --- settings ------------------------------------------------------------------
# Every optional setting of the mail data and its default, written as in mail.yml:
# the parser reads a default exactly as it reads the file's own value. README.md
# shows the same defaults in its option tables (tests/unit/test_settings_documented.py
# fails when the two differ).
DEFAULTS = {
    # Mailbox options: under defaults:, on a domain (for its mailboxes), on a mailbox.
    "defaults.protocols": ["imap"],            # access protocols a mailbox may log in with
    "defaults.quota": "1G",                    # storage limit of each mailbox
    "defaults.retention.pop3_deleted": "30d",  # deleted by a POP3 client: still there for IMAP and webmail
    "defaults.retention.expunged": "15d",      # expunged over IMAP: recoverable by the operator
    "defaults.retention.trash": "30d",         # in Trash: expunged after
    "defaults.retention.junk": "30d",          # in Junk: expunged after
    "domains[].greylisting": True,             # new senders to a domain are greylisted
    # The whole mail system.
    "limits.message_size": "50M",              # largest message accepted or sent
    "limits.recipients": 100,                  # recipients of one message
    "limits.messages_per_minute": 60,          # messages a minute from one connecting client
    "quota_warnings": [95, 80],                # % of its quota at which a mailbox gets a warning mail
    "dnsbls": [],                              # DNS blocklists `mailstack status` asks about the MX addresses
    "tls.min_version": "TLSv1.2",              # oldest TLS of Postfix (in and out), Dovecot and nginx
    "tls.acme_directory": LETS_ENCRYPT,        # the ACME CA the certificates come from
    "greylisting.delay": "5m",                 # a new sender's retry is accepted after this
    "greylisting.exempt_networks": [],         # clients never greylisted (CIDR)
    "firewall.ssh_from": ["0.0.0.0/0", "::/0"],  # who may reach SSH (the operator; CIDR)
    "fail2ban.maxretry": 5,                    # failed logins from one client before a ban
    "fail2ban.findtime": "10m",                # ... counted over this window
    "fail2ban.bantime": "1h",                  # a banned client is refused on every port this long
    "fail2ban.ignore": [],                     # clients never banned (CIDR), besides the system's hosts
    "spam.reject": 15,                         # rspamd score above which mail is refused at SMTP time
    "spam.junk": 6,                            # ... above which it is marked as spam (filed in Junk)
    "spam.greylist": 4,                        # ... above which a new sender is greylisted
    "queue.lifetime": "7d",                    # a backup MX holds mail this long, then bounces it
    "queue.retry_min": "5m",                   # its first retry to the primary
    "queue.retry_max": "1h",                   # retries back off up to this
    "queue.warn_messages": 100,                # status names a host whose queue holds more
    "webmail.database": "sqlite",              # Roundcube's own database (or postgresql)
    "backup.tool": "restic",                   # restic or borg (mailstack/host/backup_tools.py)
    "backup.schedule": "daily",                # systemd OnCalendar of the backup run
    "backup.randomized_delay": "1h",           # backup runs spread over this window
    "backup.keep": {"daily": 7, "weekly": 4, "monthly": 12},  # snapshots kept (pruned on the backup host)
    "backup.check": "weekly",                  # OnCalendar of the repository check (backup host)
    "backup.prune_from": "backup_host",        # backup_host, or operator: the backup host never holds passphrases
    "backup.repositories": [],                 # more copies, at the operator's storage providers
    "dns.ttl": 300,                            # TTL of the published records (seconds)
    "dns.dmarc_policy": "reject",              # DMARC p=
    "dns.dkim_key_size": 2048,                 # DKIM RSA key bits
    "dns.mta_sts_mode": "enforce",             # mode of our MTA-STS policy
    "dns.publish.port": 53,                    # port of the RFC 2136 server
    "dns.publish.tsig_algorithm": "hmac-sha256",  # TSIG algorithm of the updates
    "relay.port": 587,                         # the smarthost's submission port (465: implicit TLS)
    "monitoring.interval": "1m",               # how often the monitoring host reads every host's metrics
    "monitoring.alert_after": "5m",            # a fault lasting this long mails the postmaster
    "offboarding.keep": "90d",                 # an offboarded mailbox's mail stays on the primary this long
}
RETENTION_DEFAULTS = {key.rsplit(".", 1)[1]: value for key, value in DEFAULTS.items()
                      if key.startswith("defaults.retention.")}


class DataError(Exception):
    """Bad mail data: the message names the file, the field and the value."""

    def __init__(self, file, where, message):
        self.file, self.where = str(file), _printable(where)
        super().__init__(_printable(f"{file}: {where}: {message}" if where else f"{file}: {message}"))


def _printable(text):
    """`text` with control characters escaped (a newline as \\n): an error stays one
    line, and a value cannot write to the operator's terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(text))


@dataclass(frozen=True)
class Host:
    fqdn: str
    address: str
    roles: tuple[str, ...]
    ssh: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Retention:
    """Seconds each kind of removed mail is kept."""
    pop3_deleted: int
    expunged: int
    trash: int
    junk: int


@dataclass(frozen=True)
class Greylisting:
    delay: int                        # seconds a new sender must wait before a retry
    exempt_networks: tuple[str, ...]  # clients never greylisted (CIDR)


@dataclass(frozen=True)
class Queue:
    """How a backup MX holds mail while the primary is away (seconds)."""
    lifetime: int     # then it is returned to the sender
    retry_min: int    # first retry after a failed attempt
    retry_max: int    # retries back off up to this
    warn_messages: int = 100   # more waiting in a host's queue needs attention (status)


@dataclass(frozen=True)
class Domain:
    name: str
    quota: int
    protocols: frozenset[str]
    retention: Retention
    catch_all: str | None = None
    greylisting: bool = True


@dataclass(frozen=True)
class Mailbox:
    address: str
    password_hash: str  # always with its {SCHEME} prefix
    quota: int
    protocols: frozenset[str]
    retention: Retention
    name: str | None = None   # the person's name (mailstack mailbox add --name)

    @property
    def domain(self):
        return self.address.split("@", 1)[1]

    @property
    def localpart(self):
        return self.address.split("@", 1)[0]


@dataclass(frozen=True)
class Offboarded:
    """A mailbox taken out of use by `mailstack mailbox offboard`: its mail waits on
    the primary (mailstack/host/offboarded.py) until keep_until, then a timer deletes
    it; `mailstack mailbox restore` brings it back before then. `mailbox` is the
    entry's other settings as written (password_hash included where the entry kept
    it), for the restore."""
    address: str
    date: datetime.date          # when it was offboarded
    keep_until: datetime.date    # its mail is deleted after this day
    mailbox: dict


@dataclass(frozen=True)
class SharedMailbox:
    """A role mailbox (sales@) its members open beside their own: mail to the address
    lands in it, nobody logs in as it. members: ((mailbox address, right), ...)."""
    address: str
    members: tuple[tuple[str, str], ...]
    folders: tuple[str, ...]
    quota: int
    retention: Retention

    def senders(self):
        """Members who may send as the address: those who may file its mail."""
        return [m for m, right in self.members if right != "read"]


@dataclass(frozen=True)
class Alias:
    address: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    message_size: int
    recipients: int
    messages_per_minute: int


@dataclass(frozen=True)
class TLS:
    acme_directory: str
    acme_email: str
    min_version: str = DEFAULTS["tls.min_version"]   # one of TLS_VERSIONS

    @property
    def versions(self) -> tuple[str, ...]:
        """Every TLS version allowed, oldest first (nginx lists them)."""
        return TLS_VERSIONS[TLS_VERSIONS.index(self.min_version):]

    # TLS 1.2 suites where a client must use TLS (submission, IMAP, POP3, HTTPS):
    # forward secret and AEAD only (TLS 1.3's are all of that kind). Port 25 keeps
    # OpenSSL's wider list: an old sender with CBC is better off than in plaintext.
    ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"


@dataclass(frozen=True)
class Spam:
    """rspamd's action thresholds (scores), lowest to highest."""
    greylist: float = DEFAULTS["spam.greylist"]
    junk: float = DEFAULTS["spam.junk"]
    reject: float = DEFAULTS["spam.reject"]


@dataclass(frozen=True)
class Webmail:
    database: str   # Roundcube's own database: sqlite or postgresql (on the same host)


@dataclass(frozen=True)
class Repository:
    """A repository the operator provides (S3, SFTP, a storage box...): {host} in the
    URL becomes each backed-up host's FQDN."""
    name: str
    url: str
    environment: str | None         # a file in secrets/<system>/backup/ (credentials)


@dataclass(frozen=True)
class Backup:
    """Encrypted backups of every mail host to the hosts with the role `backup`."""
    tool: str                       # restic or borg
    targets: tuple[str, ...]        # FQDNs of the backup hosts (append-only over SSH)
    schedule: str                   # systemd OnCalendar expression
    randomized_delay: int           # seconds
    keep: dict                      # {"daily": 7, "weekly": 4, "monthly": 12}
    check: str                      # OnCalendar of the repository check (backup host)
    repositories: tuple[Repository, ...] = ()   # more copies, e.g. another provider
    prune_from: str = "backup_host"  # who prunes: the backup host, or the operator's machine


@dataclass(frozen=True)
class Publishing:
    """Where DNS records go by RFC 2136 (None: records are only printed)."""
    server: str
    port: int
    tsig_algorithm: str


@dataclass(frozen=True)
class MailDNS:
    ttl: int
    dmarc_policy: str
    dmarc_reports: str
    dkim_key_size: int
    mta_sts_mode: str
    publish: Publishing | None


@dataclass(frozen=True)
class Relay:
    """A smarthost: the primary hands it every message to the internet (for hosts whose
    provider blocks port 25 outbound), over verified TLS, logged in with SASL when
    the data gives a username. The password stays in a file on the operator's machine
    (read at deploy time, relay_password()), never in the model or the data."""
    host: str
    port: int
    username: str | None = None
    password_file: Path | None = None   # absolute, on the operator's machine

    @property
    def nexthop(self):
        """Postfix's name for it (relayhost, sasl_passwd): no MX lookup, this port."""
        return f"[{self.host}]:{self.port}"


def relay_password(relay: Relay) -> str:
    """The smarthost's password from relay.password_file: one line (a final newline
    is not part of it). ValueError says what is wrong without showing any of it."""
    try:
        text = relay.password_file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot be read ({getattr(e, 'strerror', None) or e})") from None
    password = text[:-1] if text.endswith("\n") else text
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise ValueError("is empty (the file holds the smarthost's password, one line)")
    if any(c in password for c in "\r\n\0") or password != password.strip():
        raise ValueError("does not hold one password on one line (no other line, no "
                         "space at either end)")
    return password


def _default_seconds(key):
    """A duration in DEFAULTS ("10m"), in seconds."""
    return int(DEFAULTS[key][:-1]) * DURATION_UNITS[DEFAULTS[key][-1]]


@dataclass(frozen=True)
class Firewall:
    """nftables on every host: only what the host serves is open; SSH from ssh_from.
    fail2ban bans a client after maxretry failed logins within findtime (seconds),
    for bantime (seconds)."""
    ssh_from: tuple[str, ...] = tuple(DEFAULTS["firewall.ssh_from"])
    maxretry: int = DEFAULTS["fail2ban.maxretry"]
    findtime: int = _default_seconds("fail2ban.findtime")
    bantime: int = _default_seconds("fail2ban.bantime")
    ignore: tuple[str, ...] = tuple(DEFAULTS["fail2ban.ignore"])


@dataclass(frozen=True)
class Monitoring:
    """Prometheus on the hosts with the monitoring role (seconds)."""
    interval: int = _default_seconds("monitoring.interval")
    alert_after: int = _default_seconds("monitoring.alert_after")
    alert_to: tuple[str, ...] = ()      # who is mailed: the postmaster when empty


@dataclass(frozen=True)
class MailSystem:
    name: str
    hosts: tuple[Host, ...]
    domains: tuple[Domain, ...]
    mailboxes: tuple[Mailbox, ...]
    aliases: tuple[Alias, ...]
    limits: Limits
    postmaster: str
    tls: TLS
    dns: MailDNS
    greylisting: Greylisting
    queue: Queue
    webmail: Webmail = Webmail(DEFAULTS["webmail.database"])
    backup: Backup | None = None
    # Quota percentages that send the user a warning mail, highest first (Dovecot
    # runs only the first level crossed).
    quota_warnings: tuple[int, ...] = tuple(DEFAULTS["quota_warnings"])
    spam: Spam = Spam()
    firewall: Firewall = Firewall()
    relay: Relay | None = None       # a smarthost for all mail to the internet
    offboarded: tuple[Offboarded, ...] = ()
    offboarding_keep: int = 90 * 86400      # seconds (offboarding.keep)
    shared_mailboxes: tuple[SharedMailbox, ...] = ()
    dnsbls: tuple[str, ...] = ()     # blocklist zones (mailstack status)
    monitoring: Monitoring = Monitoring()

    @property
    def stores(self):
        """Every address Dovecot keeps mail for: the mailboxes, then the shared ones
        (these have no password: nobody logs in as them)."""
        return self.mailboxes + self.shared_mailboxes

    def hosts_with(self, role):
        return [h for h in self.hosts if role in h.roles]

    @property
    def primary_mx(self) -> Host:
        return self.hosts_with("primary_mx")[0]

    @property
    def backup_mx(self) -> list[Host]:
        return self.hosts_with("backup_mx")

    def domain(self, name) -> Domain:
        return next(d for d in self.domains if d.name == name)

    @cached_property
    def _local(self):
        """(mailbox addresses, {alias: targets}): made once, asked per address."""
        return ({m.address for m in self.mailboxes},
                {a.address: a.targets for a in self.aliases}
                | {s.address: tuple(s.senders()) for s in self.shared_mailboxes})

    def owners(self, address) -> list[str]:
        """Mailboxes that may send as `address`: itself, or the local mailboxes an
        alias delivers to (through other aliases too), or a shared mailbox's members
        who may file its mail."""
        mailboxes, aliases = self._local
        found, todo, seen = [], [address], set()
        while todo:
            a = todo.pop(0)
            if a in seen:
                continue
            seen.add(a)
            if a in mailboxes:
                found.append(a)
            todo += aliases.get(a, ())
        return found


# --- parsing helpers -----------------------------------------------------------

class _Reader:
    """Walks the YAML tree, keeping the path of each value for error messages."""

    def __init__(self, file, placeholders=False):
        self.file = file
        self.placeholders = placeholders   # placeholder hashes pass (see load_system)

    def fail(self, where, message):
        raise DataError(self.file, where, message)

    def mapping(self, value, where, required=(), optional=()):
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {value!r}")
        allowed = list(required) + list(optional)
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
                self.fail(_join(where, key), f"unknown key '{key}'{hint}")
        for key in required:
            if key not in value or value[key] is None:
                self.fail(_join(where, key), "is required")
        return value

    def setting(self, raw, key, check=None):
        """The value raw gives the last part of `key` (a key of DEFAULTS), else its
        default; check(value, key) validates and converts it."""
        value = raw.get(key.split(".")[-1], DEFAULTS[key])
        return check(value, key) if check else value

    def listof(self, value, where, allow_empty=True):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(where, f"expected a list, got {value!r}")
        if not value and not allow_empty:
            self.fail(where, "must not be empty")
        return value

    def domain(self, value, where):
        if not isinstance(value, str) or not DOMAIN_RE.fullmatch(value):
            self.fail(where, f"'{value}' is not a valid domain name (lower case, e.g. example.org)")
        return value

    def address(self, value, where):
        """A mail address, local or remote: the same strict rules for both."""
        if not isinstance(value, str) or value.count("@") != 1:
            self.fail(where, f"'{value}' is not a valid email address (e.g. anna@example.org)")
        local, dom = value.split("@")
        if not LOCALPART_RE.fullmatch(local) or len(local) > 64:
            self.fail(where, f"'{value}' is not a valid email address: local part '{local}' "
                             f"(allowed: {LOCALPART_ALLOWED})")
        if not DOMAIN_RE.fullmatch(dom):
            self.fail(where, f"'{value}' is not a valid email address: '{dom}' is not a valid "
                             "domain name (lower case, e.g. anna@example.org)")
        return value

    def ip(self, value, where):
        # A scoped IPv6 address (fe80::1%eth0) would carry any text after the %.
        try:
            if not isinstance(value, str) or "%" in value:
                raise ValueError
            ipaddress.ip_address(value)
        except ValueError:
            self.fail(where, f"'{value}' is not an IP address (e.g. 192.0.2.10 or 2001:db8::10)")
        return value

    def network(self, value, where):
        try:
            if not isinstance(value, str) or "%" in value:
                raise ValueError
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.fail(where, f"'{value}' is not a network (e.g. 192.0.2.0/24)")
        return value

    def port(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PORT_MAX:
            self.fail(where, f"'{value}' is not a port (1 to {PORT_MAX})")
        return value

    def https_url(self, value, where):
        if not isinstance(value, str) or not HTTPS_URL_RE.fullmatch(value):
            self.fail(where, f"'{value}' is not an https:// URL (allowed after the host: "
                             "letters, digits and . _ ~ % / : @ + = , -)")
        return value

    def size(self, value, where):
        m = re.fullmatch(r"\s*([0-9]+)\s*([KMGT]?)B?\s*", str(value), re.I)
        if isinstance(value, bool) or not m:
            self.fail(where, f"'{value}' is not a size (use a number with K, M, G or T, e.g. 10G)")
        size = int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
        if not 0 < size <= SIZE_MAX:
            self.fail(where, f"'{value}' is not a size from 1 byte to 1024T")
        return size

    def duration(self, value, where):
        m = re.fullmatch(r"\s*([0-9]+)\s*([smhdw])\s*", str(value))
        if isinstance(value, bool) or not m or int(m.group(1)) == 0:
            self.fail(where, f"'{value}' is not a duration (a number with s, m, h, d or w, e.g. 30d)")
        return int(m.group(1)) * DURATION_UNITS[m.group(2)]

    def date(self, value, where):
        """A day: YAML's own date (2026-12-03), or the same as a string."""
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
        try:
            if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
                return datetime.date.fromisoformat(value)
        except ValueError:
            pass
        self.fail(where, f"'{value}' is not a date (YYYY-MM-DD, e.g. 2026-12-03)")

    def retention(self, value, where, inherited):
        self.mapping(value, where, optional=tuple(RETENTION_DEFAULTS))
        return Retention(**{k: self.duration(value[k], f"{where}.{k}") if k in value
                            else getattr(inherited, k) for k in RETENTION_DEFAULTS})

    def positive(self, value, where, maximum=2**31 - 1):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(where, f"'{value}' is not a positive number")
        if value > maximum:
            self.fail(where, f"'{value}' is more than {maximum}")
        return value

    def protocols(self, value, where):
        value = self.listof(value, where, allow_empty=False)
        for i, p in enumerate(value):
            if p not in PROTOCOLS:
                self.fail(f"{where}[{i}]", f"unknown protocol '{p}' (allowed: {', '.join(PROTOCOLS)})")
        return frozenset(value)

    def password_hash(self, value, where):
        if not isinstance(value, str) or not value:
            self.fail(where, "is required (make one with: make hash-password)")
        shown = value if value.startswith(("{", "$")) else "<not shown>"
        m = re.fullmatch(r"\{([A-Z0-9-]+)\}(.*)", value)
        scheme, rest = (m.group(1), m.group(2)) if m else (None, value)
        if scheme is None:
            scheme = next((s for p, s in CRYPT_PREFIX.items() if value.startswith(p)), None)
        if scheme is None:
            self.fail(where, f"'{shown}' is not a password hash: plaintext is never stored "
                             "(make a hash with: make hash-password)")
        if scheme not in HASH_SCHEMES:
            self.fail(where, f"unknown password hash scheme '{scheme}' "
                             f"(allowed: {', '.join(HASH_SCHEMES)})")
        if not re.fullmatch(HASH_SCHEMES[scheme], rest):
            if PLACEHOLDER_RE.search(rest):
                if self.placeholders:
                    return value
                self.fail(where, f"'{shown}' is a placeholder: make a hash with `make hash-password`")
            self.fail(where, f"'{shown}' is not a well-formed {scheme} hash")
        return f"{{{scheme}}}{rest}"

    def data_file(self, value, where):
        """A file beside the data file, or under its directory: never above it."""
        parts = value.split("/") if isinstance(value, str) else []
        if not parts or not all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", p) for p in parts):
            self.fail(where, f"'{value}' is not a file in the data file's directory (a relative "
                             "path: letters, digits and . _ -, no '..', not starting with /)")
        return value


def parse_duration(value, where="duration"):
    """Seconds in a duration like 30d or 12h; DataError names `where` if invalid."""
    return _Reader("input").duration(value, where)


def _join(where, key):
    return f"{where}.{key}" if where else str(key)


# --- loading -------------------------------------------------------------------

def load_system(path, text=None, hashes_text=None, placeholders=False) -> MailSystem:
    """Load and validate one mail system's YAML file.

    text and hashes_text stand for the content of the file and of its
    password_hashes_file (a change mailstack checks before writing it); errors
    still name `path`. placeholders: accept the example's placeholder hashes (a
    change to a file whose hashes are not all made yet; check and deploy refuse them).
    """
    path = Path(path)
    try:
        raw = yaml.load(path.read_text() if text is None else text, Loader=SAFE_LOADER)
    except FileNotFoundError:
        raise DataError(path, "", "file not found")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise DataError(path, "", f"YAML syntax error at {at}: {getattr(e, 'problem', e)}")
    except ValueError as e:
        # YAML reads 2026-13-03 as a date and cannot make one.
        raise DataError(path, "", f"YAML: {e}: a value is not a date (YYYY-MM-DD)")
    return parse_system(raw, path, hashes_text, placeholders)


def parse_system(raw, path, hashes_text=None, placeholders=False) -> MailSystem:
    r = _Reader(path, placeholders)
    r.mapping(raw, "", required=("hosts", "domains"),
              optional=("name", "defaults", "limits", "mailboxes", "aliases",
                        "password_hashes_file", "postmaster", "tls", "dns", "greylisting", "queue",
                        "webmail", "backup", "quota_warnings", "spam", "firewall", "fail2ban",
                        "relay", "offboarding", "offboarded", "shared_mailboxes", "dnsbls", "monitoring"))
    name = _name(r, raw, path)
    hosts = _hosts(r, raw["hosts"])
    defaults = r.mapping(raw.get("defaults") or {}, "defaults",
                         optional=("quota", "protocols", "retention"))
    default_quota = r.setting(defaults, "defaults.quota", r.size)
    default_protocols = r.setting(defaults, "defaults.protocols", r.protocols)
    builtin = Retention(**{k: r.duration(v, "") for k, v in RETENTION_DEFAULTS.items()})
    default_retention = r.retention(defaults.get("retention") or {}, "defaults.retention", builtin)
    domains = _domains(r, raw["domains"], default_quota, default_protocols, default_retention)
    names = {d.name for d in domains}

    hashes = {}
    if raw.get("password_hashes_file"):
        hashes_file = r.data_file(raw["password_hashes_file"], "password_hashes_file")
        try:
            if hashes_text is None:
                hashes_text = (path.parent / hashes_file).read_text()
            hashes = yaml.load(hashes_text, Loader=SAFE_LOADER) or {}
        except (OSError, yaml.YAMLError) as e:
            r.fail("password_hashes_file", f"cannot read '{hashes_file}': {e}")
        if not isinstance(hashes, dict):
            r.fail("password_hashes_file", f"'{hashes_file}' does not map addresses to hashes")
    mailboxes = _mailboxes(r, raw.get("mailboxes") or [], {d.name: d for d in domains}, hashes)
    shared = _shared_mailboxes(r, raw.get("shared_mailboxes") or [], {d.name: d for d in domains},
                               {m.address: m for m in mailboxes})
    stored = {m.address for m in mailboxes} | {s.address for s in shared}
    aliases = _aliases(r, raw.get("aliases") or [], names, stored)

    local = stored | {a.address for a in aliases}
    for i, (d, raw_d) in enumerate(zip(domains, raw["domains"])):
        if d.catch_all and d.catch_all.split("@")[1] in names and d.catch_all not in local:
            r.fail(f"domains[{i}].catch_all", f"'{d.catch_all}' is not a mailbox or alias")

    limits_raw = r.mapping(raw.get("limits") or {}, "limits",
                           optional=("message_size", "recipients", "messages_per_minute"))
    limits = Limits(r.setting(limits_raw, "limits.message_size", r.size),
                    r.setting(limits_raw, "limits.recipients", r.positive),
                    r.setting(limits_raw, "limits.messages_per_minute", r.positive))

    postmaster = r.address(raw.get("postmaster", f"postmaster@{domains[0].name}"), "postmaster")
    if postmaster.split("@")[1] in names and postmaster not in local:
        r.fail("postmaster", f"'{postmaster}' is not a mailbox or alias")
    tls_raw = r.mapping(raw.get("tls") or {}, "tls",
                        optional=("acme_directory", "acme_email", "min_version"))
    # Both go into certbot's command line.
    directory = r.setting(tls_raw, "tls.acme_directory", r.https_url)
    min_version = r.setting(tls_raw, "tls.min_version")
    if min_version not in TLS_VERSIONS:
        r.fail("tls.min_version", f"'{min_version}' is not a TLS version "
                                  f"(allowed: {', '.join(TLS_VERSIONS)})")
    tls = TLS(directory, r.address(tls_raw.get("acme_email", postmaster), "tls.acme_email"),
              min_version)
    grey = r.mapping(raw.get("greylisting") or {}, "greylisting",
                     optional=("delay", "exempt_networks"))
    networks = r.listof(grey.get("exempt_networks") or DEFAULTS["greylisting.exempt_networks"],
                        "greylisting.exempt_networks")
    for i, n in enumerate(networks):
        r.network(n, f"greylisting.exempt_networks[{i}]")
    greylisting = Greylisting(r.setting(grey, "greylisting.delay", r.duration), tuple(networks))
    q = r.mapping(raw.get("queue") or {}, "queue", optional=("lifetime", "retry_min", "retry_max",
                                                                 "warn_messages"))
    queue = Queue(r.setting(q, "queue.lifetime", r.duration),
                  r.setting(q, "queue.retry_min", r.duration),
                  r.setting(q, "queue.retry_max", r.duration),
                  r.setting(q, "queue.warn_messages", r.positive))
    if queue.retry_min > queue.retry_max:
        r.fail("queue.retry_min", f"'{q.get('retry_min')}' is longer than queue.retry_max")
    w = r.mapping(raw.get("webmail") or {}, "webmail", optional=("database",))
    database = r.setting(w, "webmail.database")
    if database not in WEBMAIL_DATABASES:
        r.fail("webmail.database", f"'{database}' is not a webmail database "
                                   f"(allowed: {', '.join(WEBMAIL_DATABASES)})")
    backup = _backup(r, raw.get("backup"), hosts)
    _backup_strings(r, backup)
    offboarding = r.mapping(raw.get("offboarding") or {}, "offboarding", optional=("keep",))
    return MailSystem(name, hosts, domains, mailboxes, aliases, limits, postmaster, tls,
                      _dns(r, raw.get("dns") or {}, postmaster), greylisting, queue,
                      Webmail(database), backup,
                      _quota_warnings(r, raw), _spam(r, raw.get("spam") or {}),
                      _firewall(r, raw.get("firewall") or {}, raw.get("fail2ban") or {}),
                      _relay(r, raw.get("relay"), path),
                      _offboarded(r, raw.get("offboarded") or [], {d.name: d for d in domains},
                                  stored, hashes),
                      r.setting(offboarding, "offboarding.keep", r.duration), shared,
                      tuple(r.domain(z, f"dnsbls[{i}]")
                            for i, z in enumerate(r.setting(raw, "dnsbls", r.listof))),
                      _monitoring(r, raw.get("monitoring") or {}, postmaster, local))


def _relay(r, raw, path):
    """relay: the smarthost. Its password file must be there and hold a password now:
    a deploy never begins without it."""
    if raw is None:
        return None
    raw = r.mapping(raw, "relay", required=("host",), optional=("port", "username", "password_file"))
    host = raw["host"]
    if not isinstance(host, str) or not DOMAIN_RE.fullmatch(host):
        r.fail("relay.host", f"'{host}' is not a host name (lower case, e.g. smtp.provider.example; "
                             "its certificate must carry this name)")
    port = r.setting(raw, "relay.port", r.port)
    username, password_file = raw.get("username"), raw.get("password_file")
    if username is not None and (not isinstance(username, str) or not RELAY_USER_RE.fullmatch(username)):
        r.fail("relay.username", f"'{username}' is not a login name (1 to 255 letters, digits "
                                 "and . _ % + = @ / ~ -; no space or colon)")
    if username is None:
        if password_file is not None:
            r.fail("relay.password_file", f"'{password_file}' is given without relay.username")
        return Relay(host, port)
    if password_file is None:
        r.fail("relay.password_file", "is required with relay.username (a file on this machine "
                                      "holding the password, kept out of git)")
    if not isinstance(password_file, str) or not password_file.strip() \
            or any(not c.isprintable() for c in password_file):
        r.fail("relay.password_file", f"'{password_file}' is not a file name")
    relay = Relay(host, port, username,
                  (Path(path).parent / Path(password_file).expanduser()).resolve())
    try:
        relay_password(relay)
    except ValueError as e:
        resolved = "" if str(relay.password_file) == password_file else f" ({relay.password_file})"
        r.fail("relay.password_file", f"'{password_file}'{resolved} {e}")
    return relay


def _networks(r, raw, key):
    """A list of networks (CIDR) under `key` of DEFAULTS."""
    where = key
    networks = r.listof(r.setting(raw, key), where)
    for i, n in enumerate(networks):
        r.network(n, f"{where}[{i}]")
    return tuple(str(n) for n in networks)


def _firewall(r, fw, f2b):
    r.mapping(fw, "firewall", optional=("ssh_from",))
    r.mapping(f2b, "fail2ban", optional=("maxretry", "findtime", "bantime", "ignore"))
    return Firewall(_networks(r, fw, "firewall.ssh_from"),
                    r.setting(f2b, "fail2ban.maxretry", r.positive),
                    r.setting(f2b, "fail2ban.findtime", r.duration),
                    r.setting(f2b, "fail2ban.bantime", r.duration),
                    _networks(r, f2b, "fail2ban.ignore"))


def _name(r, raw, path):
    """The system's name, from the file or else its directory: it names
    secrets/<name>/ and the TSIG key and is written into config files."""
    if raw.get("name") is not None:
        value, source = raw["name"], ""
    else:
        value, source = Path(path).resolve().parent.name, " (from the data file's directory: set name:)"
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        r.fail("name", f"'{value}' is not a system name{source} (allowed: a-z, 0-9 and -, "
                       "starting with a letter or digit, at most 32 characters)")
    return value


def _backup_strings(r, backup):
    """What _backup lets through that reaches the hosts' settings and secrets/: a
    repository URL is read by root programs and a tool's own parsers (restic's
    sftp.command, Borg's ssh), an environment is a file name."""
    for i, repo in enumerate(backup.repositories if backup else ()):
        where = f"backup.repositories[{i}]"
        if not re.fullmatch(r"[A-Za-z0-9._~:/@%+=,\[\]-]+", repo.url.replace("{host}", "")):
            r.fail(f"{where}.url", f"'{repo.url}' is not a repository URL (allowed: letters, "
                                   "digits, . _ ~ : / @ % + = , [ ] - and {host})")
        if repo.environment is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*",
                                                             repo.environment):
            r.fail(f"{where}.environment", f"'{repo.environment}' is not a file name in "
                                           "secrets/<system>/backup/ (letters, digits and . _ -)")


def _quota_warnings(r, raw):
    levels = r.setting(raw, "quota_warnings", r.listof)
    for i, level in enumerate(levels):
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 99:
            r.fail(f"quota_warnings[{i}]", f"'{level}' is not a percentage from 1 to 99")
        if level in levels[:i]:
            r.fail(f"quota_warnings[{i}]", f"duplicate level '{level}'")
    return tuple(sorted(levels, reverse=True))


def _monitoring(r, raw, postmaster, local):
    r.mapping(raw, "monitoring", optional=("interval", "alert_after", "alert_to"))
    to = tuple(r.address(a, f"monitoring.alert_to[{i}]")
               for i, a in enumerate(r.listof(raw.get("alert_to") or [postmaster], "monitoring.alert_to")))
    for i, a in enumerate(to):
        # Alertmanager hands its mail to the primary's port 25, which relays for nobody.
        if a != postmaster and a not in local:
            r.fail(f"monitoring.alert_to[{i}]", f"'{a}' is not a mailbox or alias of this system "
                                                f"(make an alias that forwards there)")
    return Monitoring(r.setting(raw, "monitoring.interval", r.duration),
                      r.setting(raw, "monitoring.alert_after", r.duration), to)


def _spam(r, raw):
    r.mapping(raw, "spam", optional=("greylist", "junk", "reject"))
    scores, below = {}, None
    for key in ("greylist", "junk", "reject"):      # lowest first: each above the one before
        value = r.setting(raw, f"spam.{key}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:     # YAML has .nan and .inf
            r.fail(f"spam.{key}", f"'{value}' is not a positive score")
        if below and value <= scores[below]:
            # Blame the one the file sets (the other is the default).
            if key in raw or below not in raw:
                r.fail(f"spam.{key}", f"'{value}' is not above spam.{below} ({scores[below]})")
            r.fail(f"spam.{below}", f"'{scores[below]}' is not below spam.{key} ({value})")
        scores[key], below = value, key
    return Spam(**scores)


def _backup(r, raw, hosts):
    targets = [h.fqdn for h in hosts if "backup" in h.roles]
    if raw is None and not targets:
        return None
    raw = r.mapping(raw or {}, "backup", optional=("tool", "schedule", "randomized_delay",
                                                   "keep", "check", "repositories", "prune_from"))
    if not targets:
        r.fail("backup", "no host has the role backup (the backups' destination)")
    tool = r.setting(raw, "backup.tool")
    if tool not in BACKUP_TOOLS:
        r.fail("backup.tool", f"'{tool}' is not a backup tool (allowed: {', '.join(BACKUP_TOOLS)})")
    repositories = []
    repositories_raw = raw.get("repositories") or DEFAULTS["backup.repositories"]
    for i, repo in enumerate(r.listof(repositories_raw, "backup.repositories")):
        where = f"backup.repositories[{i}]"
        r.mapping(repo, where, required=("name", "url"), optional=("environment",))
        name, url, env = repo["name"], repo["url"], repo.get("environment")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name) \
                or name in targets or name in [x.name for x in repositories]:
            r.fail(f"{where}.name", f"'{name}' is not a new repository name (a-z, 0-9, -)")
        if not isinstance(url, str) or not re.fullmatch(TOOLS[tool].url, url):
            r.fail(f"{where}.url", f"'{url}' is not a {tool} repository URL")
        if "{host}" not in url:
            r.fail(f"{where}.url", f"'{url}' lacks {{host}} (each host needs its own repository)")
        if env is not None and (not isinstance(env, str) or not re.fullmatch(r"[\w.-]+", env)):
            r.fail(f"{where}.environment", f"'{env}' is not a file name in secrets/<system>/backup/")
        repositories.append(Repository(name, url, env))
    schedules = {}
    for key in ("schedule", "check"):
        value = r.setting(raw, f"backup.{key}")
        # An OnCalendar expression: letters, digits and *-:,./~ and spaces only.
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9*:,./~ -]{1,64}", value):
            r.fail(f"backup.{key}", f"'{value}' is not a systemd calendar expression "
                                    "(e.g. daily, or *-*-* 03:00)")
        schedules[key] = value
    keep_defaults = DEFAULTS["backup.keep"]
    keep_raw = r.mapping(raw.get("keep") or {}, "backup.keep", optional=tuple(keep_defaults))
    keep = {k: r.positive(keep_raw.get(k, v), f"backup.keep.{k}") for k, v in keep_defaults.items()}
    return Backup(tool, tuple(targets), schedules["schedule"],
                  r.setting(raw, "backup.randomized_delay", r.duration),
                  keep, schedules["check"], tuple(repositories), _prune_from(r, raw))


def _prune_from(r, raw):
    value = r.setting(raw, "backup.prune_from")
    if value not in PRUNE_FROM:
        r.fail("backup.prune_from", f"'{value}' is not who prunes (allowed: {', '.join(PRUNE_FROM)})")
    return value


def _dns(r, raw, postmaster):
    r.mapping(raw, "dns", optional=("ttl", "dmarc_policy", "dmarc_reports", "dkim_key_size",
                                    "mta_sts_mode", "publish"))
    policy = r.setting(raw, "dns.dmarc_policy")
    if policy not in DMARC_POLICIES:
        r.fail("dns.dmarc_policy", f"'{policy}' is not a DMARC policy (allowed: {', '.join(DMARC_POLICIES)})")
    key_size = r.setting(raw, "dns.dkim_key_size")
    if key_size not in (2048, 3072, 4096):
        r.fail("dns.dkim_key_size", f"'{key_size}' is not a DKIM RSA key size (2048, 3072 or 4096)")
    mode = r.setting(raw, "dns.mta_sts_mode")
    if mode not in MTA_STS_MODES:
        r.fail("dns.mta_sts_mode", f"'{mode}' is not an MTA-STS mode (allowed: {', '.join(MTA_STS_MODES)})")
    publish = None
    if raw.get("publish") is not None:
        p = r.mapping(raw["publish"], "dns.publish", required=("server",),
                      optional=("port", "tsig_algorithm"))
        algorithm = r.setting(p, "dns.publish.tsig_algorithm")
        if algorithm not in TSIG_ALGORITHMS:
            r.fail("dns.publish.tsig_algorithm",
                   f"unknown TSIG algorithm '{algorithm}' (allowed: {', '.join(TSIG_ALGORITHMS)})")
        # dnspython (mailstack publish, rotate-dkim) takes an address, not a name.
        publish = Publishing(r.ip(p["server"], "dns.publish.server"),
                             r.setting(p, "dns.publish.port", r.port), algorithm)
    return MailDNS(r.setting(raw, "dns.ttl", r.positive), policy,
                   r.address(raw.get("dmarc_reports", postmaster), "dns.dmarc_reports"),
                   key_size, mode, publish)


def _hosts(r, raw):
    if not isinstance(raw, dict) or not raw:
        r.fail("hosts", "must map each host's FQDN to its address and roles")
    hosts = []
    for fqdn, h in raw.items():
        where = f"hosts.{fqdn}"
        r.domain(fqdn, where)
        r.mapping(h, where, required=("address", "roles"), optional=("ssh",))
        r.ip(h["address"], f"{where}.address")
        roles = r.listof(h["roles"], f"{where}.roles", allow_empty=False)
        for i, role in enumerate(roles):
            if role not in HOST_ROLES:
                r.fail(f"{where}.roles[{i}]", f"unknown role '{role}' (allowed: {', '.join(HOST_ROLES)})")
        if "primary_mx" in roles and "backup_mx" in roles:
            r.fail(f"{where}.roles", f"'{fqdn}' cannot be both primary_mx and backup_mx")
        ssh = _ssh(r, h.get("ssh") or {}, f"{where}.ssh")
        hosts.append(Host(fqdn, h["address"], tuple(roles), ssh))
    primaries = [h.fqdn for h in hosts if "primary_mx" in h.roles]
    if not primaries:
        r.fail("hosts", "no host has the role primary_mx")
    if len(primaries) > 1:
        r.fail("hosts", f"only one primary_mx is allowed, got {', '.join(primaries)}")
    return tuple(hosts)


def _ssh(r, raw, where):
    """pyinfra's connection to a host (ssh_hostname, ssh_user, ssh_port)."""
    r.mapping(raw, where, optional=("hostname", "user", "port"))
    if "hostname" in raw:
        hostname = raw["hostname"]
        if not isinstance(hostname, str) or not (HOSTNAME_RE.fullmatch(hostname) or _is_ip(hostname)):
            r.fail(f"{where}.hostname", f"'{hostname}' is not a host name or IP address "
                                        "(lower case, e.g. mx1.example.org)")
    if "user" in raw and (not isinstance(raw["user"], str) or not SSH_USER_RE.fullmatch(raw["user"])):
        r.fail(f"{where}.user", f"'{raw['user']}' is not a user name (allowed: a-z, 0-9, _ and -, "
                                "starting with a letter or _, at most 32 characters)")
    if "port" in raw:
        r.port(raw["port"], f"{where}.port")
    return raw


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value


def _domains(r, raw, default_quota, default_protocols, default_retention):
    raw = r.listof(raw, "domains", allow_empty=False)
    domains, seen = [], set()
    for i, d in enumerate(raw):
        where = f"domains[{i}]"
        if isinstance(d, str):
            d = {"name": d}
        r.mapping(d, where, required=("name",),
                  optional=("quota", "protocols", "catch_all", "retention", "greylisting"))
        greylisting = r.setting(d, "domains[].greylisting")
        if not isinstance(greylisting, bool):
            r.fail(f"{where}.greylisting", f"'{d['greylisting']}' is not true or false")
        name = r.domain(d["name"], f"{where}.name")
        if name in seen:
            r.fail(f"{where}.name", f"duplicate domain '{name}'")
        seen.add(name)
        catch_all = d.get("catch_all")
        if catch_all is not None:
            r.address(catch_all, f"{where}.catch_all")
        domains.append(Domain(
            name,
            r.size(d["quota"], f"{where}.quota") if "quota" in d else default_quota,
            r.protocols(d["protocols"], f"{where}.protocols") if "protocols" in d else default_protocols,
            r.retention(d.get("retention") or {}, f"{where}.retention", default_retention),
            catch_all, greylisting))
    return tuple(domains)


def _mailboxes(r, raw, domains, hashes):
    mailboxes, seen = [], set()
    for i, m in enumerate(r.listof(raw, "mailboxes")):
        where = f"mailboxes[{i}]"
        r.mapping(m, where, required=("address",),
                  optional=("name", "password_hash", "quota", "protocols", "retention"))
        address, domain = _local_address(r, m["address"], f"{where}.address", domains)
        if address in seen:
            r.fail(f"{where}.address", f"duplicate mailbox '{address}'")
        seen.add(address)
        mailboxes.append(_mailbox(r, address, m, where, domain, hashes))
    return tuple(mailboxes)


def _local_address(r, value, where, domains):
    """(address, its Domain): an address of one of the system's domains."""
    address = r.address(value, where)
    domain = domains.get(address.split("@")[1])
    if domain is None:
        r.fail(where, f"'{address}' is in domain '{address.split('@')[1]}', "
                      "which is not declared under domains")
    return address, domain


def _mailbox(r, address, m, where, domain, hashes):
    """A mailbox entry's settings (m, at `where`), its domain's where it has none."""
    return Mailbox(
        address,
        r.password_hash(m.get("password_hash") or hashes.get(address), f"{where}.password_hash"),
        r.size(m["quota"], f"{where}.quota") if "quota" in m else domain.quota,
        r.protocols(m["protocols"], f"{where}.protocols") if "protocols" in m else domain.protocols,
        r.retention(m.get("retention") or {}, f"{where}.retention", domain.retention),
        _person(r, m.get("name"), f"{where}.name"))


def _offboarded(r, raw, domains, mailbox_addresses, hashes):
    """The records of offboarded mailboxes: what the primary keeps aside, until when,
    and the entry a restore puts back (checked as a mailbox entry is)."""
    records = []
    for i, o in enumerate(r.listof(raw, "offboarded")):
        where = f"offboarded[{i}]"
        r.mapping(o, where, required=("address", "date", "keep_until"), optional=("mailbox",))
        address, domain = _local_address(r, o["address"], f"{where}.address", domains)
        if address in mailbox_addresses:
            r.fail(f"{where}.address", f"'{address}' is a mailbox again: its offboarded mail "
                                       "would be lost (restore it with `mailstack mailbox restore`, "
                                       "or remove this record)")
        if any(x.address == address for x in records):
            r.fail(f"{where}.address", f"duplicate offboarded mailbox '{address}'")
        date, keep_until = r.date(o["date"], f"{where}.date"), r.date(o["keep_until"], f"{where}.keep_until")
        if keep_until < date:
            r.fail(f"{where}.keep_until", f"'{keep_until}' is before its date '{date}'")
        entry = r.mapping(o.get("mailbox") or {}, f"{where}.mailbox",
                          optional=("name", "password_hash", "quota", "protocols", "retention"))
        _mailbox(r, address, entry, f"{where}.mailbox", domain, hashes)   # as a restore would read it
        records.append(Offboarded(address, date, keep_until, dict(entry)))
    return tuple(records)


def _shared_mailboxes(r, raw, domains, mailbox_addresses):
    """Role mailboxes: an address of the system that is no mailbox, members that are
    mailboxes using IMAP (a member offboarded or removed must leave the list first:
    its rights would name nobody), a right per member, plain folder names.
    mailbox_addresses: {address: Mailbox}."""
    shared = []
    for i, s in enumerate(r.listof(raw, "shared_mailboxes")):
        where = f"shared_mailboxes[{i}]"
        r.mapping(s, where, required=("address", "members"), optional=("folders", "quota"))
        address, domain = _local_address(r, s["address"], f"{where}.address", domains)
        if address in mailbox_addresses:
            r.fail(f"{where}.address", f"'{address}' is already a mailbox")
        if any(x.address == address for x in shared):
            r.fail(f"{where}.address", f"duplicate shared mailbox '{address}'")
        members = s["members"]
        if not isinstance(members, dict) or not members:
            r.fail(f"{where}.members", f"'{members}' is not a map of mailboxes to rights "
                                       f"({', '.join(SHARED_RIGHTS)})")
        for member, right in members.items():
            at = f"{where}.members.{member}"
            if r.address(member, at) not in mailbox_addresses:
                r.fail(at, f"'{member}' is not a mailbox of this system (a member who leaves "
                           "or is offboarded comes out of this list first)")
            if "imap" not in mailbox_addresses[member].protocols:
                r.fail(at, f"'{member}' cannot use IMAP (protocols: "
                           f"{', '.join(sorted(mailbox_addresses[member].protocols))}), "
                           "which is how members open a shared mailbox")
            if right not in SHARED_RIGHTS:
                r.fail(at, f"'{right}' is not a right (allowed: {', '.join(SHARED_RIGHTS)})")
        folders = r.listof(s.get("folders") or [], f"{where}.folders")
        for j, folder in enumerate(folders):
            if not isinstance(folder, str) or not FOLDER_RE.fullmatch(folder) \
                    or folder.upper() == "INBOX":
                r.fail(f"{where}.folders[{j}]", f"'{folder}' is not a plain folder name (letters, "
                                               "digits, spaces, _ and -, at most 64, not INBOX)")
            if folder in folders[:j]:
                r.fail(f"{where}.folders[{j}]", f"duplicate folder '{folder}'")
        shared.append(SharedMailbox(
            address, tuple(sorted(members.items())), tuple(folders),
            r.size(s["quota"], f"{where}.quota") if "quota" in s else domain.quota,
            domain.retention))
    return tuple(shared)


def _person(r, value, where):
    if value is not None and (not isinstance(value, str) or not PERSON_RE.fullmatch(value)):
        r.fail(where, f"'{value}' is not a person's name (allowed: letters, digits, spaces "
                      "and . ' -, starting with a letter or digit, at most 64 characters)")
    return value


def _aliases(r, raw, domain_names, mailbox_addresses):
    aliases = []
    for i, a in enumerate(r.listof(raw, "aliases")):
        where = f"aliases[{i}]"
        r.mapping(a, where, required=("address", "to"))
        address = r.address(a["address"], f"{where}.address")
        if address.split("@")[1] not in domain_names:
            r.fail(f"{where}.address", f"'{address}' is in domain '{address.split('@')[1]}', "
                                       "which is not declared under domains")
        if address in mailbox_addresses:
            r.fail(f"{where}.address", f"'{address}' is already a mailbox; an alias would shadow it")
        if any(x.address == address for x in aliases):
            r.fail(f"{where}.address", f"duplicate alias '{address}'")
        targets = r.listof(a["to"], f"{where}.to", allow_empty=False)
        for j, t in enumerate(targets):
            r.address(t, f"{where}.to[{j}]")
        aliases.append(Alias(address, tuple(targets)))

    alias_map = {a.address: a for a in aliases}
    for i, a in enumerate(aliases):
        for j, t in enumerate(a.targets):
            local = t.split("@")[1] in domain_names
            if local and t not in mailbox_addresses and t not in alias_map:
                r.fail(f"aliases[{i}].to[{j}]", f"'{t}' is a local address that is neither a mailbox nor an alias")
        loop = _find_loop(a.address, alias_map, [])
        if loop:
            r.fail(f"aliases[{i}].to", f"alias loop: {' -> '.join(loop)}")
    return tuple(aliases)


def _find_loop(address, alias_map, path):
    if address in path:
        return path[path.index(address):] + [address]
    if address not in alias_map:
        return None
    for t in alias_map[address].targets:
        loop = _find_loop(t, alias_map, path + [address])
        if loop:
            return loop
    return None

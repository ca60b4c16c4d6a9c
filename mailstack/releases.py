"""The Debian releases mailstack deploys to, and everything that differs between
them in one table: package names, versions that appear in paths, and what a
release's software can do. A host's release is read from the host (roles.release());
its configuration files differ only where a template has a release-named variant
beside it (templates/<service>/<path>.<codename>.j2, see roles.Service.template).

Pure data: the roles, the host programs, the lab and the tests import it."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    codename: str            # bookworm, trixie: lab boxes, apt sources, template variants
    major: int
    php: str                 # in package and unit names and under /etc/php/
    dovecot: str             # 2.4 changed the configuration format
    nginx: str               # bookworm's nginx-light is an empty transitional package in trixie
    tlsrpt: bool             # Postfix built with libtlsrpt: it can report TLS failures (RFC 8460)
    archiver: str            # 7-Zip's /usr/bin/7z (offboarding exports): p7zip became a transitional package
    postfix_unit: str        # the unit that runs Postfix (12's postfix.service only starts its instance)
    sshd_penalties: bool     # OpenSSH 9.8+ blocks addresses by itself (PerSourcePenalties)

    @property
    def php_fpm(self):
        return f"php{self.php}-fpm"


RELEASES = {r.codename: r for r in (
    Release("bookworm", 12, php="8.2", dovecot="2.3", nginx="nginx-light", tlsrpt=False,
            archiver="p7zip-full", postfix_unit="postfix@-", sshd_penalties=False),
    Release("trixie", 13, php="8.4", dovecot="2.4", nginx="nginx", tlsrpt=True,
            archiver="7zip", postfix_unit="postfix", sshd_penalties=True),
)}
DEFAULT = "trixie"            # Debian's stable release


def named(codename):
    """The release called `codename`; a clear error for any other."""
    try:
        return RELEASES[codename]
    except KeyError:
        supported = ", ".join(f"{r.major} ({r.codename})" for r in RELEASES.values())
        raise ValueError(f"Debian release {codename!r} is not supported (supported: {supported})") from None

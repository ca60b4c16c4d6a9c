"""Lab only: the rest of the internet. A plain Postfix for the outside domain
(example.test) that delivers to MX hosts found in DNS, like any sender out there,
and keeps every message it receives in one Maildir (user `catchall`)."""
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from roles import template
from roles.postfix import DEBCONF  # noqa: F401  (same package, same answers)

# dkimpy and pyspf check what mailstack's mail looks like to a receiver.
PACKAGES = ["postfix", "swaks", "python3-dkim", "python3-spf"]


def apply():
    server.user(name="outside: catchall user", user="catchall", shell="/usr/sbin/nologin")
    changed = [
        files.put(name="outside: /etc/mailname", src=StringIO(host.data.fqdn + "\n"),
                  dest="/etc/mailname"),
        template("outside", "/etc/postfix/main.cf"),
        template("outside", "/etc/aliases"),
    ]
    server.shell(name="outside: newaliases", commands=["newaliases"], _if=changed[-1].did_change)
    server.shell(name="outside: check postfix configuration", commands=["postfix check"],
                 _if=any_changed(*changed))
    systemd.service(name="outside: postfix", service="postfix", running=True, enabled=True,
                    restarted=True, _if=any_changed(*changed))

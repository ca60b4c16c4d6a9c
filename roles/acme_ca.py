"""Lab only: the ACME CA, Debian's pebble, on the outside machine.

It validates HTTP-01 challenges against the lab DNS like Let's Encrypt validates
against the real one. Pebble makes a new root at every start, so it is restarted
only when its configuration changes.
"""
from pyinfra import host
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from roles import template

PACKAGES = ["pebble"]


def apply():
    changed = [
        files.put(name="acme_ca: API certificate", src=host.data.acme_api_cert,
                  dest="/etc/pebble/api-cert.pem", mode="644"),
        files.put(name="acme_ca: API key", src=host.data.acme_api_key,
                  dest="/etc/pebble/api-key.pem", mode="640", group="root"),
        template("acme_ca", "/etc/pebble/pebble-config.json"),
        template("acme_ca", "/etc/systemd/system/pebble.service"),
    ]
    systemd.service(name="acme_ca: pebble", service="pebble", running=True, enabled=True,
                    restarted=True, daemon_reload=True, _if=any_changed(*changed))

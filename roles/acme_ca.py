"""Lab only: the ACME CA, Debian's pebble, on the outside machine.

It validates HTTP-01 challenges against the lab DNS like Let's Encrypt validates
against the real one. Pebble makes a new root at every start, so it is restarted
only when its configuration changes.
"""
from pyinfra import host
from pyinfra.operations import files

from roles import Service


class AcmeCA(Service):
    name = "acme_ca"
    PACKAGES = ("pebble",)

    def configure(self):
        self.changed += [
            files.put(name="acme_ca: API certificate", src=host.data.acme_api_cert,
                      dest="/etc/pebble/api-cert.pem", mode="644"),
            files.put(name="acme_ca: API key", src=host.data.acme_api_key,
                      dest="/etc/pebble/api-key.pem", mode="640", group="root"),
            self.template("/etc/pebble/pebble-config.json", watch=False),
        ]
        self.changed += self.units("pebble.service")

    def activate(self):
        self.restart_on_change("pebble")


acme_ca = AcmeCA()

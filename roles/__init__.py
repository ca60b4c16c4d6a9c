"""One module per service. Each role has:

PACKAGES   Debian packages it needs (deploy.py installs them all in one apt run);
           a role whose packages depend on the data has packages() instead
DEBCONF    debconf answers to seed before installing (optional)
apply()    configure the service from host.data.mail and (re)start it on change
"""
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template(role, dest, mode="644", user="root", group="root", **context):
    """Render templates/<role><dest>.j2 (the template mirrors the target path)."""
    return files.template(
        name=f"{role}: {dest}",
        src=str(TEMPLATES / role / (dest.lstrip("/") + ".j2")),
        dest=dest, mode=mode, user=user, group=group,
        jinja_env_kwargs={"trim_blocks": True, "lstrip_blocks": True},
        mail=host.data.mail, **context)

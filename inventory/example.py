"""An example production inventory: the hosts, roles and mail data are all in
inventory/example/mail.yml.

    .venv/bin/pyinfra -y inventory/example.py deploy.py
"""
from pathlib import Path

from mailstack.inventory import inventory

globals().update(inventory(
    Path(__file__).resolve().parent / "example" / "mail.yml",
    # Production hosts resolve with their own resolver; set `resolvers=[...]`
    # here to pin one.
))

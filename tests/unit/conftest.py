import textwrap

import pytest

from mailstack.host.password import hash_password

HASH = hash_password("correct horse")

# A small, valid mail system; each bad-input test breaks one thing in it.
VALID = f"""\
hosts:
  mx1.example.org: {{address: 192.0.2.10, roles: [primary_mx]}}
  mx2.example.org: {{address: 192.0.2.11, roles: [backup_mx]}}
domains:
  - name: example.org
  - name: example.net
    catch_all: anna@example.org
mailboxes:
  - address: anna@example.org
    password_hash: "{HASH}"
  - address: ben@example.org
    password_hash: "{HASH}"
    protocols: [pop3]
    quota: 2G
aliases:
  - address: postmaster@example.org
    to: anna@example.org
  - address: team@example.org
    to: [anna@example.org, ben@example.org, someone@elsewhere.test]
"""


@pytest.fixture
def write_data(tmp_path):
    """Writes a data file into `directory`, whose name is the system's name when the
    file sets none (pytest's own directory names are not valid names)."""
    def write(text, name="mail.yml", directory="system"):
        path = tmp_path / directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path
    return write

"""Shared role mailboxes in the model and in what the roles render from it: Dovecot
knows them as users without a password, Postfix and the backup MX take their mail,
members who may file their mail may send as them, and bad data names its field."""
import json

import pytest

from mailstack.dovecot import SHARED_ACL, passwd_file, retention_file, shared_settings, users_file
from mailstack.host.password import SERVICES
from mailstack.model import DataError, load_system
from mailstack.postfix import relay_recipients, sender_logins, senders_by_login, virtual_mailboxes

from .conftest import HASH, VALID

SHARED = """\
shared_mailboxes:
  - address: support@example.org
    members: {anna@example.org: write, carl@example.net: read}
    folders: [New, In Progress, Completed]
"""
CARL = f'  - address: carl@example.net\n    password_hash: "{HASH}"\n'
DATA = VALID.replace("aliases:\n", CARL + "aliases:\n", 1) + SHARED


@pytest.fixture
def system(write_data):
    return load_system(write_data(DATA))


def test_the_model_reads_a_shared_mailbox_with_its_domains_quota(system):
    (shared,) = system.shared_mailboxes
    assert shared.address == "support@example.org"
    assert shared.members == (("anna@example.org", "write"), ("carl@example.net", "read"))
    assert shared.folders == ("New", "In Progress", "Completed")
    assert shared.quota == 1024**3 and shared.senders() == ["anna@example.org"]


def test_dovecot_stores_its_mail_but_nobody_logs_in_as_it(system):
    assert "support@example.org::5000:5000::/var/vmail/example.org/support::" in users_file(system)
    assert "support@example.org " in retention_file(system)
    for service in SERVICES:
        assert "support@example.org" not in passwd_file(system, service)


def test_postfix_and_the_backup_mx_take_its_mail(system):
    assert "support@example.org example.org/support/\n" in virtual_mailboxes(system)
    assert "support@example.org OK\n" in relay_recipients(system)


def test_only_members_who_may_file_its_mail_may_send_as_it(system):
    assert "support@example.org anna@example.org\n" in sender_logins(system)
    by_login = dict(line.split(" ", 1) for line in senders_by_login(system).splitlines())
    assert "support@example.org" in by_login["anna@example.org"].split()
    assert "support@example.org" not in by_login["carl@example.net"].split()


def test_each_right_includes_the_one_before_and_only_write_and_delete_may_move_mail(system):
    assert set(SHARED_ACL["read"]) < set(SHARED_ACL["write"]) < set(SHARED_ACL["delete"])
    assert "expunge" not in SHARED_ACL["read"] and "insert" not in SHARED_ACL["read"]
    assert "admin" not in SHARED_ACL["delete"]     # nobody may change the rights over IMAP
    settings = json.loads(shared_settings(system))
    assert settings == [{"address": "support@example.org", "folders": ["New", "In Progress", "Completed"],
                         "members": {"anna@example.org": list(SHARED_ACL["write"]),
                                     "carl@example.net": list(SHARED_ACL["read"])}}]


@pytest.mark.parametrize("old, new, where, says", [
    ("  - address: support@example.org", "  - address: anna@example.org",
     "shared_mailboxes[0].address", "'anna@example.org' is already a mailbox"),
    ("  - address: support@example.org", "  - address: support@elsewhere.test",
     "shared_mailboxes[0].address", "which is not declared under domains"),
    ("carl@example.net: read", "nobody@example.net: read",
     "shared_mailboxes[0].members.nobody@example.net", "is not a mailbox of this system"),
    ("carl@example.net: read", "ben@example.org: read",
     "shared_mailboxes[0].members.ben@example.org", "cannot use IMAP (protocols: pop3)"),
    ("carl@example.net: read", "carl@example.net: admin",
     "shared_mailboxes[0].members.carl@example.net", "'admin' is not a right (allowed: read, write, delete)"),
    ("members: {anna@example.org: write, carl@example.net: read}", "members: {}",
     "shared_mailboxes[0].members", "is not a map of mailboxes to rights"),
    ("[New, In Progress, Completed]", "[New, ../../etc]",
     "shared_mailboxes[0].folders[1]", "'../../etc' is not a plain folder name"),
    ("[New, In Progress, Completed]", "[New, .hidden]",
     "shared_mailboxes[0].folders[1]", "'.hidden' is not a plain folder name"),
    ("[New, In Progress, Completed]", "[inbox]",
     "shared_mailboxes[0].folders[0]", "'inbox' is not a plain folder name"),
    ("[New, In Progress, Completed]", "[New, New]",
     "shared_mailboxes[0].folders[1]", "duplicate folder 'New'"),
], ids=["a-mailbox", "foreign-domain", "unknown-member", "pop3-only-member", "unknown-right",
        "no-members", "path-folder", "dot-folder", "inbox-folder", "duplicate-folder"])
def test_bad_shared_mailbox_data_names_the_field(write_data, old, new, where, says):
    assert old in DATA
    path = write_data(DATA.replace(old, new, 1))
    with pytest.raises(DataError) as e:
        load_system(path)
    assert f"{path}: {where}: " in str(e.value) and says in str(e.value), str(e.value)


def test_an_alias_may_deliver_to_a_shared_mailbox_but_not_take_its_address(write_data):
    help_desk = "  - address: help@example.org\n    to: support@example.org\n"
    system = load_system(write_data(DATA.replace("aliases:\n", "aliases:\n" + help_desk, 1)))
    assert next(a for a in system.aliases if a.address == "help@example.org").targets == ("support@example.org",)
    taken = "  - address: support@example.org\n    to: anna@example.org\n"
    with pytest.raises(DataError, match=r"aliases\[0\]\.address: 'support@example.org' is already a mailbox"):
        load_system(write_data(DATA.replace("aliases:\n", "aliases:\n" + taken, 1)))

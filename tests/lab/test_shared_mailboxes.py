"""The support team's shared mailbox (README "Shared mailboxes"): mail to support@
lands in it; alice (delete), erin (write) and grace (read) open it beside their own
mailbox over IMAP and in webmail, each with what their right allows; nobody else
sees it, and nobody can widen their rights."""
import smtplib
import time
import urllib.parse

import pytest
from selenium.webdriver.common.by import By

from .conftest import LAB_DATA, deploy, lab_variant
from .mailclient import Server, message, wait_for_message
from .test_webmail import WEBMAIL, browser, log_in, logged_in, wait  # noqa: F401 (fixture)

SHARED = "support@acme.test"
ROOT = f"shared/{SHARED}"
FOLDERS = ("New", "In Progress", "Completed")


def quoted(folder):
    return f'"{ROOT}/{folder}"'


def uid_of(imap, message_id, folder="INBOX"):
    """The message's UID in the shared folder (it must be there)."""
    wait_for_message(imap, message_id, mailbox=f"{ROOT}/{folder}")
    return imap.uid("SEARCH", None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]


def holds(imap, message_id, folder):
    imap.select(quoted(folder))
    return bool(imap.search(None, "HEADER", "Message-ID", message_id)[1][0])


def flags(imap, message_id, folder="INBOX"):
    imap.select(quoted(folder))
    (number,) = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()
    return imap.fetch(number, "(FLAGS)")[1][0].decode()


@pytest.fixture
def delivered(mx1):
    """A new message delivered to support@ over port 25, as the world sends it."""
    message_id, text = message("customer@example.test", SHARED, f"Order {time.time_ns()}",
                               "Where is my order?")
    assert mx1.deliver([SHARED], text) == {}
    return message_id


def test_mail_to_the_shared_address_reaches_every_member_with_its_folders(mx1, mailbox, delivered):
    for member in ("alice@acme.test", "erin@acme.test", "grace@acme.test"):
        imap = mx1.imap(mailbox(member))
        assert b"Where is my order?" in wait_for_message(imap, delivered, mailbox=f"{ROOT}/INBOX")
        # Subscribed for them (clients and webmail show subscribed folders only).
        subscribed = b"\n".join(imap.lsub()[1]).decode()
        for folder in FOLDERS:
            assert f'"/" "{ROOT}/{folder}"' in subscribed or f'"/" {ROOT}/{folder}' in subscribed, \
                (member, subscribed)
        imap.logout()


def test_a_member_who_may_write_files_mail_into_in_progress(mx1, mailbox, delivered):
    erin, alice = mx1.imap(mailbox("erin@acme.test")), mx1.imap(mailbox("alice@acme.test"))
    uid = uid_of(erin, delivered)
    assert erin.uid("MOVE", uid, quoted("In Progress"))[0] == "OK"
    assert holds(alice, delivered, "In Progress") and not holds(alice, delivered, "INBOX")
    erin.logout()
    alice.logout()


def test_a_read_only_member_cannot_move_copy_flag_or_grant_themselves_more(mx1, mailbox, delivered):
    grace, alice = mx1.imap(mailbox("grace@acme.test")), mx1.imap(mailbox("alice@acme.test"))
    uid = uid_of(grace, delivered)
    typ, data = grace.uid("MOVE", uid, quoted("In Progress"))
    assert typ == "NO" and b"[NOPERM]" in data[0], data
    typ, data = grace.uid("COPY", uid, quoted("Completed"))
    assert typ == "NO" and b"[NOPERM]" in data[0], data
    # A flag she has no right to is dropped (RFC 4314), not stored for the others.
    grace.uid("STORE", uid, "+FLAGS", r"(\Deleted \Flagged)")
    grace.expunge()
    with pytest.raises(grace.error, match="Unknown command"):
        grace.setacl(quoted("INBOX"), "grace@acme.test", "lrswipkxtea")
    assert holds(alice, delivered, "INBOX") and not holds(alice, delivered, "Completed")
    assert "\\Deleted" not in flags(alice, delivered) and "\\Flagged" not in flags(alice, delivered)
    # Reading it marks it read for her alone: \Seen is each member's own.
    grace.select(quoted("INBOX"))
    grace.uid("FETCH", uid, "(RFC822)")
    assert "\\Seen" in flags(grace, delivered) and "\\Seen" not in flags(alice, delivered)
    grace.logout()
    alice.logout()


def test_someone_who_is_not_a_member_cannot_open_or_list_it(mx1, mailbox, delivered):
    carol = mx1.imap(mailbox("carol@acme.test"))
    typ, data = carol.select(quoted("INBOX"))
    assert typ == "NO", data
    listed = b"\n".join(carol.list()[1]).decode()
    assert "In Progress" not in listed and "New" not in listed, listed
    carol.logout()


def test_only_members_who_may_file_its_mail_may_send_as_the_shared_address(mx1, mailbox):
    dave = mailbox("dave@globex.test")
    message_id, text = message(SHARED, dave["address"], "Your order has shipped")
    assert mx1.submit(mailbox("erin@acme.test"), [dave["address"]], text, sender=SHARED) == {}
    imap = mx1.imap(dave)
    wait_for_message(imap, message_id)
    imap.logout()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        mx1.submit(mailbox("grace@acme.test"), [dave["address"]], text, sender=SHARED)
    code, reply = refused.value.recipients[dave["address"]]
    assert code == 553 and b"not owned by user grace@acme.test" in reply


def test_mail_for_the_shared_address_through_the_backup_mx_lands_in_it(lab, lab_ca, mx1, mailbox):
    mx2 = Server(lab["hosts"]["mx2"]["address"], lab["hosts"]["mx2"]["fqdn"], lab_ca)
    message_id, text = message("customer@example.test", SHARED, "Through the backup MX")
    assert mx2.deliver([SHARED], text) == {}
    imap = mx1.imap(mailbox("alice@acme.test"))
    wait_for_message(imap, message_id, mailbox=f"{ROOT}/INBOX", timeout=120)
    imap.logout()


def test_a_member_sees_the_shared_folders_in_webmail_and_opens_its_mail(browser, mailbox, delivered):  # noqa: F811
    log_in(browser, mailbox("alice@acme.test"))
    logged_in(browser)
    folders = browser.find_element(By.ID, "mailboxlist").text
    assert SHARED in folders and all(f in folders for f in FOLDERS), folders
    browser.get(f"https://{WEBMAIL}/?_task=mail&_mbox={urllib.parse.quote(ROOT + '/INBOX', safe='')}")
    subject = wait(browser).until(lambda d: next(
        (row.text for row in d.find_elements(By.CSS_SELECTOR, "#messagelist tbody tr")
         if "Order" in row.text), None))
    assert subject
    browser.find_element(By.CSS_SELECTOR, "a.logout").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "rcmloginuser"))


def test_a_member_taken_out_of_the_data_loses_the_mailbox_at_the_next_deploy(
        mx1, mailbox, delivered, tmp_path):
    # grace leaves the team, erin may only read now.
    changed = lab_variant(tmp_path / "mail.yml", ("      erin@acme.test: write\n      grace@acme.test: read\n",
                                                  "      erin@acme.test: read\n"))
    deploy(changed, "mx1.acme.test")
    try:
        grace, erin = mx1.imap(mailbox("grace@acme.test")), mx1.imap(mailbox("erin@acme.test"))
        assert grace.select(quoted("INBOX"))[0] == "NO"
        uid = uid_of(erin, delivered)
        typ, data = erin.uid("MOVE", uid, quoted("Completed"))
        assert typ == "NO" and b"[NOPERM]" in data[0], data
        grace.logout()
        erin.logout()
    finally:
        deploy(LAB_DATA, "mx1.acme.test")
    grace = mx1.imap(mailbox("grace@acme.test"))
    assert grace.select(quoted("INBOX"))[0] == "OK"
    grace.logout()

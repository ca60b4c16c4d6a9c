"""Every mailbox gets the special-use folders, and its retention policies end
with the mail removed: Trash and Junk after their days, expunged mail after the
recovery window (erin@acme.test has 10 s retentions in the lab)."""
import time

from .mailclient import message, wait_for_message

SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Junk": "\\Junk",
               "Trash": "\\Trash", "Archive": "\\Archive"}


def test_special_use_folders_exist_and_are_subscribed(mx1, mailbox):
    imap = mx1.imap(mailbox("dave@globex.test"))
    listed = {line.decode().rsplit(" ", 1)[-1].strip('"'): line.decode()
              for line in imap.list()[1]}
    subscribed = {line.decode().rsplit(" ", 1)[-1].strip('"') for line in imap.lsub()[1]}
    imap.logout()
    for folder, flag in SPECIAL_USE.items():
        assert flag in listed[folder], listed
        assert folder in subscribed


def put(mx1, erin, folder):
    message_id, text = message("someone@example.test", erin["address"], f"for {folder}")
    assert mx1.deliver([erin["address"]], text) == {}
    imap = mx1.imap(erin)
    wait_for_message(imap, message_id)
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]
    if folder != "INBOX":
        assert imap.copy(uid, folder)[0] == "OK"
        imap.store(uid, "+FLAGS", "\\Deleted")
        imap.expunge()
    imap.logout()
    return message_id


def present(mx1, erin, folder, message_id):
    imap = mx1.imap(erin)
    imap.select(folder)
    found = imap.search(None, "HEADER", "Message-ID", message_id)[1] != [b""]
    imap.logout()
    return found


def test_trash_and_junk_are_emptied_after_their_retention(mx1, hosts, mailbox):
    erin = mailbox("erin@acme.test")
    in_trash, in_junk = put(mx1, erin, "Trash"), put(mx1, erin, "Junk")
    hosts["mx1"].run_expect([0], "systemctl start mailstack-expire.service")
    assert present(mx1, erin, "Trash", in_trash) and present(mx1, erin, "Junk", in_junk)
    time.sleep(11)
    hosts["mx1"].run_expect([0], "systemctl start mailstack-expire.service")
    assert not present(mx1, erin, "Trash", in_trash)
    assert not present(mx1, erin, "Junk", in_junk)


def test_expunged_mail_cannot_be_recovered_after_the_window(mx1, hosts, mailbox):
    erin = mailbox("erin@acme.test")
    message_id = put(mx1, erin, "Archive")          # copied there, expunged from INBOX
    imap = mx1.imap(erin)
    imap.select("Archive")
    uid = imap.search(None, "HEADER", "Message-ID", message_id)[1][0].split()[-1]
    imap.store(uid, "+FLAGS", "\\Deleted")
    imap.expunge()
    imap.logout()
    time.sleep(11)
    hosts["mx1"].run_expect([0], "systemctl start mailstack-expire.service")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    hosts["mx1"].run_expect([0], f"mailstack-undelete {erin['address']} {today}")
    assert not present(mx1, erin, "Archive", message_id)
    assert not present(mx1, erin, "INBOX", message_id)

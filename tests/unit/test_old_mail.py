"""The old provider's mail for the migration scenario (tests/lab/old_mail.py): the
same from the same seed, and holding everything a migration must carry over."""
import datetime

from tests.lab.old_mail import FOLDERS, KEYWORD, fill, from_utf7, messages, utf7

LARGE = (4_000_000, 5_500_000, 7_000_000)


def test_the_same_seed_makes_the_same_mail_and_another_address_other_mail():
    a = messages(7, "peter@initech.test", 300, LARGE[:1])
    assert a == messages(7, "peter@initech.test", 300, LARGE[:1])
    assert [m.raw for m in a] != [m.raw for m in messages(7, "milton@initech.test", 300, LARGE[:1])]
    assert [m.raw for m in a] != [m.raw for m in messages(8, "peter@initech.test", 300, LARGE[:1])]


def test_the_mail_holds_what_a_migration_must_carry_over():
    batch = messages(7, "peter@initech.test", 1500, LARGE)
    assert len(batch) == 1503
    assert {m.folder for m in batch} == {name for name, _ in FOLDERS}
    assert any("/" in m.folder and not m.folder.isascii() for m in batch)
    flags = {f for m in batch for f in m.flags}
    assert flags == {"\\Seen", "\\Flagged", "\\Answered", KEYWORD}
    years = {datetime.datetime.fromtimestamp(m.received, datetime.timezone.utc).year for m in batch}
    assert len(years) >= 10
    eight_bit = [m for m in batch if b"Content-Transfer-Encoding: 8bit" in m.raw]
    assert eight_bit and all(not m.raw.split(b"\r\n\r\n")[0].isascii() for m in eight_bit)
    assert any(b"Message-ID:" not in m.raw for m in batch)
    large = sorted(len(m.raw) for m in batch if len(m.raw) > 1_000_000)
    assert len(large) == 3 and 5_000_000 <= large[0] and large[-1] <= 10_000_000
    assert len({m.digest for m in batch}) == len(batch)


def test_folder_names_go_to_imap_in_modified_utf7():
    assert utf7("Projects.Bücher & Co") == "Projects.B&APw-cher &- Co"
    assert utf7("INBOX") == "INBOX"
    assert utf7("日本語") == "&ZeVnLIqe-"
    for name in ("Projects.Bücher & Co", "INBOX", "日本語", "a&b/ü&"):
        assert from_utf7(utf7(name)) == name


class FakeIMAP:
    def __init__(self):
        self.calls = []

    def list(self, ref, pattern):
        return "OK", [b'(\\Noselect) "." ""']

    def create(self, name):
        self.calls.append(("create", name))
        return "OK", [b"done"]

    def subscribe(self, name):
        self.calls.append(("subscribe", name))

    def append(self, name, flags, date, raw):
        self.calls.append(("append", name, flags))
        return "OK", [b"done"]


def test_fill_makes_each_folder_once_with_the_servers_separator():
    imap = FakeIMAP()
    batch = messages(7, "samir@initech.test", 200)
    fill(imap, batch)
    creates = [c[1] for c in imap.calls if c[0] == "create"]
    assert len(creates) == len(set(creates)) == len({m.folder for m in batch} - {"INBOX"})
    assert '"Projects.B&APw-cher &- Co"' in creates and '"Archive.2019"' in creates
    assert len([c for c in imap.calls if c[0] == "append"]) == 200

"""mailstack-password: hashing, the password-changes format, and changing a password
in Dovecot's per-service passwd files."""
import io
import os
import stat
import subprocess

import pytest

from mailstack.host import password
from mailstack.host.password import (SERVICES, change, current_hash, fingerprint, format_changes,
                                     hash_password, parse_changes, parse_request)

OLD = "{SHA512-CRYPT}$6$old$anna"
BEN = "{SHA512-CRYPT}$6$old$ben"


@pytest.fixture(autouse=True)
def not_root_safe(monkeypatch):
    if os.geteuid() != 0:
        monkeypatch.setattr(os, "chown", lambda *args: None)


@pytest.fixture
def fast_hash(monkeypatch):
    """A predictable hash (the real one is tested on its own)."""
    monkeypatch.setattr(password, "hash_password", lambda p: "{PLAIN}" + p)


def test_hash_password_is_sha512_crypt_that_openssl_verifies():
    h = hash_password("correct horse")
    assert h.startswith("{SHA512-CRYPT}$6$")
    salt = h.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "correct horse"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert h == "{SHA512-CRYPT}" + again
    wrong = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "wrong horse"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert h != "{SHA512-CRYPT}" + wrong


def test_hash_password_salts_each_hash():
    assert hash_password("same") != hash_password("same")


# --- requests ----------------------------------------------------------------------------

def test_parse_request_of_a_good_line():
    assert parse_request("anna@example.org:new: pass word\n") == ("anna@example.org", "new: pass word")


@pytest.mark.parametrize("line", [
    "anna@example.org\n",             # no colon
    "anna@example.org:\n",            # empty password
    "anna:secret\n",                  # no domain
    "anna smith@example.org:secret",  # space in the address
    "@example.org:secret",
    "anna@exa mple.org:secret",
    "",
])
def test_parse_request_rejects_bad_lines(line):
    with pytest.raises(ValueError, match="expected 'address:password' on stdin"):
        parse_request(line)


# --- the changes file --------------------------------------------------------------------

def test_changes_round_trip():
    changes = {"ben@example.org": ("f" * 64, BEN), "anna@example.org": ("a" * 64, OLD)}
    text = format_changes(changes)
    assert text == f"anna@example.org {'a' * 64} {OLD}\nben@example.org {'f' * 64} {BEN}\n"
    assert parse_changes(text) == changes


def test_parse_changes_skips_blank_lines():
    assert parse_changes(f"\nanna@example.org x {OLD}\n  \n") == {"anna@example.org": ("x", OLD)}


def test_fingerprint_is_sha256_of_the_hash():
    assert fingerprint("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_current_hash_change_wins_while_the_data_keeps_the_replaced_hash():
    changes = {"anna@example.org": (fingerprint(OLD), "{PLAIN}new")}
    assert current_hash("anna@example.org", OLD, changes) == "{PLAIN}new"


def test_current_hash_data_wins_once_it_changes():
    changes = {"anna@example.org": (fingerprint(OLD), "{PLAIN}new")}
    assert current_hash("anna@example.org", "{SHA512-CRYPT}$6$op$newer", changes) == \
        "{SHA512-CRYPT}$6$op$newer"


def test_current_hash_without_changes_is_the_data():
    assert current_hash("anna@example.org", OLD, None) == OLD
    assert current_hash("ben@example.org", BEN, {"anna@example.org": (fingerprint(BEN), "x")}) == BEN


# --- change() ----------------------------------------------------------------------------

def age(*paths):
    """Written well before now: change() need not wait for a new second."""
    for p in paths:
        if os.path.exists(p):
            os.utime(p, (os.path.getmtime(p) - 10, os.path.getmtime(p) - 10))


@pytest.fixture
def dovecot(tmp_path):
    """passwd files as the deploy writes them: anna everywhere, ben without pop3."""
    files = {
        "imap": f"anna@example.org:{OLD}\nben@example.org:{BEN}\n",
        "pop3": f"anna@example.org:{OLD}\n",
        "smtp": f"anna@example.org:{OLD}\nben@example.org:{BEN}\n",
        "sieve": f"ben@example.org:{BEN}\n",
    }
    for service, text in files.items():
        (tmp_path / f"passwd.{service}").write_text(text)
        os.chmod(tmp_path / f"passwd.{service}", 0o640)
    age(*(tmp_path / f"passwd.{s}" for s in files))
    return {"passwd": str(tmp_path / "passwd.{service}"), "changes_file": str(tmp_path / "changes")}


def passwd(tmp_path, service):
    return (tmp_path / f"passwd.{service}").read_text()


def test_change_replaces_the_hash_in_every_file_that_has_it(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "s3cret", **dovecot)
    assert passwd(tmp_path, "imap") == f"anna@example.org:{{PLAIN}}s3cret\nben@example.org:{BEN}\n"
    assert passwd(tmp_path, "pop3") == "anna@example.org:{PLAIN}s3cret\n"
    assert passwd(tmp_path, "smtp") == f"anna@example.org:{{PLAIN}}s3cret\nben@example.org:{BEN}\n"
    assert passwd(tmp_path, "sieve") == f"ben@example.org:{BEN}\n"


def test_change_keeps_the_files_private(tmp_path, dovecot, fast_hash):
    gid = os.stat(tmp_path / "passwd.imap").st_gid
    change("anna@example.org", "s3cret", **dovecot)
    assert stat.S_IMODE(os.stat(tmp_path / "passwd.imap").st_mode) == 0o640
    assert os.stat(tmp_path / "passwd.imap").st_gid == gid
    assert stat.S_IMODE(os.stat(tmp_path / "changes").st_mode) == 0o600
    assert not list(tmp_path.glob("*.new"))


def test_change_records_the_replaced_hash(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "s3cret", **dovecot)
    assert parse_changes((tmp_path / "changes").read_text()) == {
        "anna@example.org": (fingerprint(OLD), "{PLAIN}s3cret")}


def test_a_second_change_keeps_the_first_base(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "first", **dovecot)
    age(*tmp_path.iterdir())
    change("anna@example.org", "second", **dovecot)
    assert parse_changes((tmp_path / "changes").read_text())["anna@example.org"] == \
        (fingerprint(OLD), "{PLAIN}second")
    assert passwd(tmp_path, "pop3") == "anna@example.org:{PLAIN}second\n"


def test_changes_of_two_mailboxes_are_both_kept(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "a", **dovecot)
    age(*tmp_path.iterdir())
    change("ben@example.org", "b", **dovecot)
    assert parse_changes((tmp_path / "changes").read_text()) == {
        "anna@example.org": (fingerprint(OLD), "{PLAIN}a"), "ben@example.org": (fingerprint(BEN), "{PLAIN}b")}
    assert passwd(tmp_path, "sieve") == "ben@example.org:{PLAIN}b\n"


def test_the_deploy_keeps_a_change_while_the_data_is_unchanged(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "s3cret", **dovecot)
    changes = parse_changes((tmp_path / "changes").read_text())
    assert current_hash("anna@example.org", OLD, changes) == "{PLAIN}s3cret"


def test_change_of_an_unknown_address(tmp_path, dovecot, fast_hash):
    before = {s: passwd(tmp_path, s) for s in SERVICES}
    with pytest.raises(LookupError, match="no mailbox carl@example.org"):
        change("carl@example.org", "x", **dovecot)
    assert {s: passwd(tmp_path, s) for s in SERVICES} == before
    assert not (tmp_path / "changes").exists()


@pytest.mark.parametrize("present", [("smtp", "sieve"), ("sieve",), ("pop3", "sieve")])
def test_change_works_with_files_for_only_some_services(tmp_path, fast_hash, present):
    for service in present:
        (tmp_path / f"passwd.{service}").write_text(f"anna@example.org:{OLD}\n")
        age(tmp_path / f"passwd.{service}")
    change("anna@example.org", "s3cret", passwd=str(tmp_path / "passwd.{service}"),
           changes_file=str(tmp_path / "changes"))
    for service in present:
        assert passwd(tmp_path, service) == "anna@example.org:{PLAIN}s3cret\n"
    assert sorted(p.name for p in tmp_path.glob("passwd.*")) == sorted(f"passwd.{s}" for s in present)
    assert parse_changes((tmp_path / "changes").read_text())["anna@example.org"][0] == fingerprint(OLD)


def test_change_with_the_real_hash(tmp_path, dovecot):
    change("anna@example.org", "correct horse", **dovecot)
    new = passwd(tmp_path, "imap").splitlines()[0].split(":", 1)[1]
    salt = new.split("$")[2]
    expected = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "correct horse"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert new == "{SHA512-CRYPT}" + expected


def test_a_change_after_the_operator_changed_the_hash_survives_the_next_deploy(tmp_path, dovecot, fast_hash):
    change("anna@example.org", "first", **dovecot)
    # The operator gives anna a new hash; the deploy writes it (the data wins).
    newer = "{SHA512-CRYPT}$6$op$newer"
    for service in ("imap", "pop3", "smtp"):
        text = passwd(tmp_path, service).replace("{PLAIN}first", newer)
        (tmp_path / f"passwd.{service}").write_text(text)
    age(*tmp_path.iterdir())
    change("anna@example.org", "second", **dovecot)
    changes = parse_changes((tmp_path / "changes").read_text())
    assert current_hash("anna@example.org", newer, changes) == "{PLAIN}second"


# --- main() ------------------------------------------------------------------------------

def test_main_rejects_a_bad_request():
    with pytest.raises(SystemExit) as e:
        password.main([], stdin=io.StringIO("no colon here\n"))
    assert e.value.code == "mailstack-password: expected 'address:password' on stdin"


def test_main_changes_under_the_lock(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(password, "LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(password, "change", lambda a, p: calls.append((a, p)))
    password.main([], stdin=io.StringIO("anna@example.org:s3:cret\n"))
    assert calls == [("anna@example.org", "s3:cret")]
    assert (tmp_path / "lock").exists()


def test_main_unknown_mailbox(tmp_path, monkeypatch):
    def unknown(address, pw):
        raise LookupError(f"no mailbox {address}")
    monkeypatch.setattr(password, "LOCK", str(tmp_path / "lock"))
    monkeypatch.setattr(password, "change", unknown)
    with pytest.raises(SystemExit) as e:
        password.main([], stdin=io.StringIO("carl@example.org:x\n"))
    assert e.value.code == "mailstack-password: no mailbox carl@example.org"


# --- poppassd: what Roundcube (and anything else as www-data) speaks ------------------------

def session(*lines, check=lambda address, password, peer: password == "right", applied=None):
    """Run one poppassd session; the server's replies and what it logged."""
    out, log = io.StringIO(), io.StringIO()
    password.poppassd(io.StringIO("".join(f"{line}\r\n" for line in lines)), out, "127.0.0.1",
                      check=check, apply=lambda a, p: applied.append((a, p)), log=log)
    return [r[:3] for r in out.getvalue().splitlines()], log.getvalue()


def test_poppassd_changes_with_the_current_password():
    applied = []
    replies, log = session("user anna@example.org", "pass right", "newpass new secret 1",
                           "quit", applied=applied)
    assert replies == ["200", "200", "200", "200", "200"]
    assert applied == [("anna@example.org", "new secret 1")]
    assert "password of anna@example.org changed" in log


def test_poppassd_refuses_without_the_current_password_and_logs_it():
    applied = []
    replies, log = session("user anna@example.org", "pass wrong", "newpass taken over",
                           applied=applied)
    assert replies == ["200", "200", "500"] and applied == []
    assert "refused: wrong current password for anna@example.org from 127.0.0.1" in log


@pytest.mark.parametrize("lines", [
    ["newpass x"],                                   # no user, no current password
    ["user anna@example.org", "newpass x"],          # no current password
    ["pass right", "newpass x"],                     # no user
])
def test_poppassd_refuses_out_of_order_commands(lines):
    applied = []
    replies, _ = session(*lines, applied=applied)
    assert replies[-1] == "500" and applied == []


def test_poppassd_refuses_a_new_password_the_files_cannot_hold():
    applied = []
    replies, _ = session("user anna@example.org", "pass right", "newpass ", applied=applied)
    assert replies[-1] == "500" and applied == []


def test_the_current_password_is_checked_by_dovecots_auth_protocol(tmp_path):
    """A fake auth-client socket: the request is Dovecot's AUTH PLAIN for service sieve,
    secured, with the client's address; OK and FAIL are told apart."""
    import base64
    import socket
    import threading
    path = str(tmp_path / "auth-client")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(2)
    seen = []

    def answer():
        for reply in ("OK\t1\tuser=anna@example.org\n", "FAIL\t1\tuser=anna@example.org\n"):
            conn, _ = server.accept()
            with conn:
                data = b""
                while b"AUTH" not in data or not data.endswith(b"\n"):
                    data += conn.recv(4096)
                seen.append(data.decode())
                conn.sendall(b"VERSION\t1\t2\nSPID\t1\nDONE\n" + reply.encode())
    thread = threading.Thread(target=answer)
    thread.start()
    assert password.authenticates("anna@example.org", "right", "10.0.0.9", auth=path) is True
    assert password.authenticates("anna@example.org", "wrong", "10.0.0.9", auth=path) is False
    thread.join(5)
    auth = next(line for line in seen[0].splitlines() if line.startswith("AUTH"))
    fields = auth.split("\t")
    assert fields[:3] == ["AUTH", "1", "PLAIN"]
    assert {"service=sieve", "secured", "rip=10.0.0.9"} <= set(fields)
    resp = next(f for f in fields if f.startswith("resp="))[5:]
    assert base64.b64decode(resp) == b"\0anna@example.org\0right"

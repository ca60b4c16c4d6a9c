"""mailstack-dkim: keys made, listed, rotated, activated and retired, with a fake
keygen, public key and clock."""
import datetime
import json
import os
import stat

import pytest

from mailstack.host import dkim
from mailstack.host.dkim import Keys

T0 = 1_800_000_000      # 2027-01-15 08:00:00 UTC


def selector_at(t):
    return "ms" + datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def made():
    return []


@pytest.fixture
def keys(tmp_path, clock, made):
    def keygen(path, domain, selector, bits):
        made.append((domain, selector, bits))
        with open(path, "w") as f:
            f.write(f"PRIVATE {domain} {selector} {bits}\n")
    return Keys(directory=str(tmp_path / "dkim"), bits=1024, keygen=keygen,
                pubkey=lambda path: "PUB-" + os.path.basename(path), chown=lambda path: None,
                clock=clock)


def files(keys):
    return sorted(os.listdir(keys.dir))


def read(keys, name):
    with open(os.path.join(keys.dir, name)) as f:
        return f.read()


S0 = selector_at(T0)


def test_selector_is_the_clocks_utc_time():
    assert S0 == "ms20270115080000"


def test_ensure_makes_a_key_per_domain_and_the_selectors_map(keys, made):
    keys.ensure(["b.example", "a.example"])
    assert made == [("b.example", S0, 1024), ("a.example", S0, 1024)]
    assert files(keys) == ["a.example.active", f"a.example.{S0}.key", "b.example.active",
                           f"b.example.{S0}.key", "selectors.map"]
    assert read(keys, "selectors.map") == f"a.example {S0}\nb.example {S0}\n"
    assert read(keys, "a.example.active") == f"{S0}\n"
    assert stat.S_IMODE(os.stat(os.path.join(keys.dir, f"a.example.{S0}.key")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(keys.dir, "selectors.map")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(keys.dir).st_mode) == 0o750


def test_ensure_makes_keys_only_for_domains_without_one(keys, made, clock):
    keys.ensure(["a.example"])
    clock.now += 60
    keys.ensure(["a.example", "c.example"])
    assert made == [("a.example", S0, 1024), ("c.example", selector_at(T0 + 60), 1024)]
    assert read(keys, f"a.example.{S0}.key") == f"PRIVATE a.example {S0} 1024\n"
    assert read(keys, "selectors.map") == f"a.example {S0}\nc.example {selector_at(T0 + 60)}\n"


def test_ensure_gives_the_keys_to_rspamd(tmp_path, clock):
    owned = []
    keys = Keys(directory=str(tmp_path / "dkim"), keygen=lambda p, d, s, b: open(p, "w").close(),
                pubkey=str, chown=owned.append, clock=clock)
    keys.ensure(["a.example"])
    assert owned == [keys.dir, os.path.join(keys.dir, f"a.example.{S0}.key")]


def test_missing_lists_domains_without_keys(keys):
    keys.ensure(["a.example"])
    assert keys.missing(["a.example", "b.example", "c.example"]) == ["b.example", "c.example"]


def test_list_shows_active_and_standby_keys(keys, clock):
    keys.ensure(["a.example", "b.example"])
    clock.now += 3600
    standby = keys.new_key("a.example")
    assert keys.list() == [
        ("a.example", S0, "active", f"PUB-a.example.{S0}.key"),
        ("a.example", standby, "standby", f"PUB-a.example.{standby}.key"),
        ("b.example", S0, "active", f"PUB-b.example.{S0}.key")]


def test_rotate_does_not_change_the_active_key(keys, clock):
    keys.ensure(["a.example"])
    clock.now += 3600
    keys.new_key("a.example")
    assert keys.active("a.example") == S0
    assert read(keys, "selectors.map") == f"a.example {S0}\n"


def test_activate_switches_and_schedules_the_old_key(keys, clock):
    keys.ensure(["a.example", "b.example"])
    clock.now += 3600
    new = keys.new_key("a.example")
    keys.activate("a.example", new, 86400)
    assert keys.active("a.example") == new
    assert read(keys, "selectors.map") == f"a.example {new}\nb.example {S0}\n"
    assert read(keys, f"a.example.{S0}.retire") == f"{T0 + 3600 + 86400}\n"
    assert f"a.example.{S0}.key" in files(keys)


def test_activate_the_active_key_schedules_nothing(keys):
    keys.ensure(["a.example"])
    keys.activate("a.example", S0, 86400)
    assert not [f for f in files(keys) if f.endswith(".retire")]


def test_activate_unknown_selector(keys):
    keys.ensure(["a.example"])
    with pytest.raises(LookupError, match="no key a.example.msnope"):
        keys.activate("a.example", "msnope", 60)
    assert keys.active("a.example") == S0


def test_retire_due_only_after_the_overlap(keys, clock):
    keys.ensure(["a.example"])
    clock.now += 3600
    new = keys.new_key("a.example")
    keys.activate("a.example", new, 86400)
    clock.now += 86399
    assert keys.retire_due() == []
    assert f"a.example.{S0}.key" in files(keys)
    clock.now += 1
    assert keys.retire_due() == [f"a.example.{S0}"]
    assert files(keys) == ["a.example.active", f"a.example.{new}.key", "selectors.map"]
    assert keys.retire_due() == []


def test_activating_an_old_key_again_cancels_its_retirement(keys, clock):
    keys.ensure(["a.example"])
    clock.now += 3600
    new = keys.new_key("a.example")
    keys.activate("a.example", new, 86400)
    keys.activate("a.example", S0, 86400)        # the operator rolls the rotation back
    clock.now += 86400
    keys.retire_due()
    assert f"a.example.{S0}.key" in files(keys)   # the active key must stay


# --- main() ------------------------------------------------------------------------------

def test_main_ensure_and_missing(keys, capsys):
    dkim.main(["ensure", "a.example"], keys=keys)
    dkim.main(["missing", "a.example", "b.example"], keys=keys)
    assert capsys.readouterr().out == "b.example\n"


def test_main_list(keys, capsys):
    keys.ensure(["a.example"])
    dkim.main(["list"], keys=keys)
    assert capsys.readouterr().out == f"a.example {S0} active PUB-a.example.{S0}.key\n"


def test_main_rotate_prints_the_new_selector(keys, clock, capsys):
    keys.ensure(["a.example"])
    clock.now += 60
    dkim.main(["rotate", "a.example"], keys=keys)
    assert capsys.readouterr().out == selector_at(T0 + 60) + "\n"
    assert keys.active("a.example") == S0


def test_main_activate_and_retire_due(keys, clock, capsys):
    keys.ensure(["a.example"])
    clock.now += 60
    new = keys.new_key("a.example")
    dkim.main(["activate", "a.example", new, "120"], keys=keys)
    assert keys.active("a.example") == new
    clock.now += 120
    dkim.main(["retire-due"], keys=keys)
    assert capsys.readouterr().out == f"retired a.example.{S0}\n"


def test_main_activate_unknown_key_exits_with_the_message(keys):
    keys.ensure(["a.example"])
    with pytest.raises(SystemExit) as e:
        dkim.main(["activate", "a.example", "msnope", "60"], keys=keys)
    assert e.value.code == "mailstack-dkim: no key a.example.msnope"


def test_main_reads_the_key_size_from_settings(tmp_path, monkeypatch):
    made = {}

    class Recording(Keys):
        def __init__(self, **kwargs):
            made.update(kwargs)

        def missing(self, domains):
            return []
    monkeypatch.setattr(dkim, "Keys", Recording)
    (tmp_path / "dkim.json").write_text(json.dumps({"key_size": 4096}))
    dkim.main(["missing", "a.example"], settings_file=str(tmp_path / "dkim.json"))
    assert made == {"bits": 4096}


# --- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["ensure", "a.example", "b.example"], {"command": "ensure", "domains": ["a.example", "b.example"]}),
    (["ensure"], {"command": "ensure", "domains": []}),
    (["missing", "a.example"], {"command": "missing", "domains": ["a.example"]}),
    (["list"], {"command": "list"}),
    (["rotate", "a.example"], {"command": "rotate", "domain": "a.example"}),
    (["activate", "a.example", "ms1", "3600"],
     {"command": "activate", "domain": "a.example", "selector": "ms1", "overlap": 3600}),
    (["retire-due"], {"command": "retire-due"}),
])
def test_dkim_arguments(argv, expected):
    assert vars(dkim.parser().parse_args(argv)) == expected


@pytest.mark.parametrize("argv", [
    [], ["rotate"], ["rotate", "a.example", "b.example"], ["activate", "a.example", "ms1"],
    ["activate", "a.example", "ms1", "soon"], ["list", "a.example"], ["retire-due", "x"], ["delete"],
])
def test_dkim_bad_invocations_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        dkim.parser().parse_args(argv)
    assert e.value.code == 2
    assert "usage: mailstack-dkim" in capsys.readouterr().err


def test_two_keys_made_in_one_second_get_different_selectors(keys, made):
    keys.ensure(["a.example"])
    second = keys.new_key("a.example")
    assert second != S0 and keys.active("a.example") == S0
    assert read(keys, f"a.example.{S0}.key").startswith(f"PRIVATE a.example {S0}")

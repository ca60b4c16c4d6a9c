"""Every setting has one default (model.DEFAULTS): the README's option tables show
exactly those values, and data that leaves a setting out gets exactly that value."""
import re
from pathlib import Path

import pytest
import yaml

from mailstack.model import DEFAULTS, load_system

from .conftest import VALID

README = Path(__file__).resolve().parents[2] / "README.md"
PROSE = object()   # a default the README words (e.g. "the postmaster"), not a value


def documented():
    """(option, default shown) of every row of the README's option tables: tables
    headed `| option | default |` (full keys) or `| mailbox option | default |` (keys
    under defaults:). A default in backticks is read as YAML."""
    rows, prefix = [], None
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            prefix = None
        elif prefix is None and cells[1:2] == ["default"] and cells[0] in ("option", "mailbox option"):
            prefix = "defaults." if cells[0] == "mailbox option" else ""
        elif prefix is not None and not set(line) <= set("|-: "):
            shown = re.fullmatch(r"`([^`]+)`", cells[1])
            for option in re.findall(r"`([^`]+)`", cells[0]):
                rows.append((prefix + option, yaml.safe_load(shown.group(1)) if shown else PROSE))
    return rows


def plain(value):
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def test_the_readme_has_option_tables():
    options = [option for option, _ in documented()]
    assert "defaults.quota" in options and "tls.min_version" in options
    assert len(options) == len(set(options)), "an option is documented twice"


@pytest.mark.parametrize("option, shown", documented(), ids=[o for o, _ in documented()])
def test_each_documented_default_is_the_models(option, shown):
    if shown is PROSE:
        assert option not in DEFAULTS, f"README words the default of {option}; show `{DEFAULTS[option]}`"
    else:
        assert option in DEFAULTS, f"README documents {option}, which has no default in model.DEFAULTS"
        assert shown == plain(DEFAULTS[option]), (
            f"README shows {option} = {shown!r}, the model's default is {DEFAULTS[option]!r}")


def test_every_default_is_documented():
    missing = set(DEFAULTS) - {option for option, _ in documented()}
    assert not missing, f"not in the README's option tables: {sorted(missing)}"


# Data with every optional part present (a backup host, RFC 2136 publishing, a
# smarthost) but no setting: the settings come only from the defaults.
BARE = VALID.replace("hosts:\n", "hosts:\n  bk.example.org: {address: 192.0.2.12, roles: [backup]}\n")
BARE = "dns: {publish: {server: 192.0.2.53}}\nrelay: {host: smtp.provider.example}\n" + BARE


def test_leaving_a_setting_out_is_writing_its_default(write_data):
    raw = yaml.safe_load(BARE)
    for key, value in DEFAULTS.items():
        if key.startswith("domains[]."):
            for i, d in enumerate(raw["domains"]):
                if isinstance(d, str):
                    raw["domains"][i] = d = {"name": d}
                d[key.split(".", 1)[1]] = value
            continue
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    written = load_system(write_data(yaml.safe_dump(raw), "written.yml"))
    assert load_system(write_data(BARE)) == written

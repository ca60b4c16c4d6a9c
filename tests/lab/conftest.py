"""Lab scenarios share one lab: brought up and deployed once per run (only when the
tree changed since the last deploy), then each test reads it over SSH and real
mail protocols."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dns.resolver
import pytest
import testinfra

from .logs import Collector
from .mailclient import Server

ROOT = Path(__file__).resolve().parents[2]
LABCTL = [sys.executable, str(ROOT / "lab" / "labctl")]
LAB_JSON = ROOT / ".lab" / "lab.json"
LAB_DATA = ROOT / "inventory" / "lab" / "mail.yml"


def lab_variant(path, *replacements, append=""):
    """The lab's mail data with (old, new) replacements, written to `path`, with the
    lab's password hashes beside it (password_hashes_file is never outside the data
    file's directory)."""
    text = LAB_DATA.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text + append)
    shutil.copyfile(ROOT / ".lab" / "password-hashes.yml", path.parent / "password-hashes.yml")
    return path


def deploy(data, *limit, json_out=False):
    """pyinfra's deploy of the lab from the mail data `data` (inventory/lab.py reads
    MAILSTACK_LAB_DATA); with json_out, its operation results."""
    cmd = [str(ROOT / ".venv" / "bin" / "pyinfra"), "-y", *(["--json"] if json_out else []),
           *[a for h in limit for a in ("--limit", h)], "inventory/lab.py", "deploy.py"]
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "MAILSTACK_LAB_DATA": str(data)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)["results"]["operations"] if json_out else None


@pytest.fixture(scope="session")
def lab():
    if not LAB_JSON.exists():
        subprocess.run(LABCTL + ["up"], check=True)
    subprocess.run(LABCTL + ["ensure-deployed"], check=True)
    return json.loads(LAB_JSON.read_text())


@pytest.fixture(scope="session")
def hosts(lab):
    """name -> testinfra host over the lab's SSH config (one control master each)."""
    return {name: testinfra.get_host(f"ssh://{name}", ssh_config=lab["ssh_config"], sudo=True)
            for name in lab["hosts"]}


@pytest.fixture(scope="session")
def mailbox(lab):
    by_address = {m["address"]: m for m in lab["mailboxes"]}
    return by_address.__getitem__


@pytest.fixture(scope="session")
def lab_ca(lab):
    """PEM of the lab ACME CA's root (labctl writes it after each deploy)."""
    return Path(lab["ca_certificate"]).read_text()


@pytest.fixture(scope="session")
def resolver(lab):
    """The lab resolver, as every lab host uses it."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [lab["resolver"]]
    r.lifetime = 5
    return r


@pytest.fixture(scope="session")
def session_start(hosts):
    """mx1's clock when the scenarios began (after the deploy)."""
    return int(hosts["mx1"].check_output("date +%s"))


@pytest.fixture(scope="session")
def mx1(lab, lab_ca, session_start):
    return Server(lab["hosts"]["mx1"]["address"], lab["hosts"]["mx1"]["fqdn"], lab_ca)


# When each test ran: {node id: [(start, end)]} (seconds since the epoch), so
# that a log line a scenario provokes is allowed only while that scenario ran.
WINDOWS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.time()
    yield
    WINDOWS.setdefault(item.nodeid, []).append((start, time.time()))


@pytest.fixture(scope="session", autouse=True)
def logs(hosts):
    """Every lab host's logs from here on (tests/lab/logs.py); a test that rebuilds
    a host reads its logs first."""
    return Collector(hosts, time.time())


def lab_releases():
    """{machine: Debian release} as labctl makes the lab (lab/hosts.yml and the
    MAILSTACK_RELEASE / MAILSTACK_MACHINE_RELEASES variables)."""
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader
    loader = SourceFileLoader("labctl", str(ROOT / "lab" / "labctl"))
    labctl = module_from_spec(spec_from_loader("labctl", loader))
    loader.exec_module(labctl)
    return labctl.machine_releases()


def pytest_collection_modifyitems(config, items):
    """Tests marked `after_all` read what every other test left behind: run them last.
    Tests marked `mail_hosts_on(release)` need mx1 and mx2 made from that Debian
    release (the upgrade from 12, TLS-RPT on 13): deselected, and said so, elsewhere."""
    releases = lab_releases()
    here = {releases["mx1"], releases["mx2"]}
    other = [i for i in items if i.get_closest_marker("mail_hosts_on")
             and {i.get_closest_marker("mail_hosts_on").args[0]} != here]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]
        print(f"\n{len(other)} scenario(s) for another Debian release deselected (mx1 and mx2 "
              f"run {'/'.join(sorted(here))} here; `make test` runs each on its release)")
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "after_all: run after every other test")
    config.addinivalue_line("markers", "mail_hosts_on(release): needs mx1 and mx2 on this Debian release")


# Seconds per scenario module (setup, call and teardown), printed after the run and
# kept in .lab/artifacts/suite-times.txt: the slowest scenarios, visible.
MODULE_SECONDS = {}


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::")[0]
    MODULE_SECONDS[module] = MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not MODULE_SECONDS:
        return
    lines = [f"{seconds:8.1f} s  {module}" for module, seconds in
             sorted(MODULE_SECONDS.items(), key=lambda kv: -kv[1])]
    lines.append(f"{sum(MODULE_SECONDS.values()):8.1f} s  in all")
    terminalreporter.write_sep("=", "seconds per scenario module")
    for line in lines:
        terminalreporter.write_line(line)
    artifacts = ROOT / ".lab" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "suite-times.txt").write_text("\n".join(lines) + "\n")

"""mailstack/host as the deploy installs it: launchers, and programs that need
nothing but Debian's python3 and its standard library."""
import importlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import mailstack.host
from mailstack.host import INSTALL, PROGRAMS, launcher

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
needs_system_python = pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK),
                                         reason="no /usr/bin/python3")


def test_launcher_runs_main_of_the_installed_module_isolated():
    text = launcher("backup_server")
    assert text.splitlines() == [
        "#!/usr/bin/python3 -I",
        "import sys",
        "sys.path.insert(0, '/usr/local/lib/mailstack')",
        "from mailstack.host.backup_server import main",
        "sys.exit(main())"]
    compile(text, "mailstack-backup-server", "exec")
    assert INSTALL == "/usr/local/lib/mailstack"


@pytest.mark.parametrize("program, module", sorted(PROGRAMS.items()))
def test_every_program_names_a_module_with_main(program, module):
    assert program.startswith("mailstack-")
    assert callable(importlib.import_module(f"mailstack.host.{module}").main)


def test_every_host_module_except_the_shared_ones_is_a_program():
    modules = {p.stem for p in (ROOT / "mailstack" / "host").glob("*.py")} - {"__init__"}
    assert modules - set(PROGRAMS.values()) == {"backup_tools", "mail"}


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The package copied as roles/base.py does, and a launcher per program."""
    lib, sbin = tmp_path / "lib", tmp_path / "sbin"
    (lib / "mailstack" / "host").mkdir(parents=True)
    shutil.copy(ROOT / "mailstack" / "__init__.py", lib / "mailstack" / "__init__.py")
    for path in (ROOT / "mailstack" / "host").glob("*.py"):
        shutil.copy(path, lib / "mailstack" / "host" / path.name)
    monkeypatch.setattr(mailstack.host, "INSTALL", str(lib))
    sbin.mkdir()
    for program, module in PROGRAMS.items():
        (sbin / program).write_text(launcher(module))
        (sbin / program).chmod(0o755)
    return lib, sbin


def run(argv, **kwargs):
    # A bare environment, away from the repository: only the installed copy can be found.
    return subprocess.run(argv, capture_output=True, text=True, cwd="/",
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}, **kwargs)


@needs_system_python
@pytest.mark.parametrize("program", ["mailstack-backup", "mailstack-backup-server", "mailstack-dkim"])
def test_installed_program_shows_its_usage(installed, program):
    _, sbin = installed
    result = run([str(sbin / program), "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {program} ")


@needs_system_python
def test_installed_password_program_rejects_a_bad_request(installed):
    _, sbin = installed
    result = run([str(sbin / "mailstack-password")], input="no colon\n")
    assert result.returncode == 1
    assert result.stderr == "mailstack-password: expected 'address:password' on stdin\n"


@needs_system_python
def test_installed_programs_import_only_the_standard_library(installed):
    lib, _ = installed
    # Only what importing the programs adds (site may load its own helpers first).
    code = ("import json, sys\n"
            "before = set(sys.modules)\n"
            f"sys.path.insert(0, {str(lib)!r})\n"
            f"for m in {sorted(PROGRAMS.values())!r}: __import__('mailstack.host.' + m)\n"
            "print(json.dumps([n for n in set(sys.modules) - before\n"
            "                  if n.split('.')[0] not in sys.stdlib_module_names]))\n"
            "print(sys.modules['mailstack.host'].__file__)\n")
    result = run([SYSTEM_PYTHON, "-I", "-c", code])
    assert result.returncode == 0, result.stderr
    found, origin = result.stdout.splitlines()
    assert set(json.loads(found)) == {"mailstack", "mailstack.host"} | {
        f"mailstack.host.{m}" for m in [*PROGRAMS.values(), "backup_tools", "mail"]}
    assert origin == str(lib / "mailstack" / "host" / "__init__.py")

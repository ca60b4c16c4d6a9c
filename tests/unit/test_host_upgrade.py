"""mailstack-upgrade (mailstack/host/upgrade.py): what it changes in apt's sources and
how it reads the host's release; the package steps run in the lab's upgrade scenario."""
import subprocess

from mailstack.host import upgrade


def test_every_suite_of_the_old_release_moves_to_the_new_one():
    text = ("deb http://deb.example/debian bookworm main\n"
            "deb http://deb.example/debian bookworm-updates main\n"
            "deb http://security.example/debian-security bookworm-security main\n"
            "Suites: bookworm bookworm-backports\n")
    assert upgrade.switch_sources(text) == (
        "deb http://deb.example/debian trixie main\n"
        "deb http://deb.example/debian trixie-updates main\n"
        "deb http://security.example/debian-security trixie-security main\n"
        "Suites: trixie trixie-backports\n")


def test_words_that_only_contain_the_name_stay():
    assert upgrade.switch_sources("deb http://x/bookworms notbookworm main\n") == \
        "deb http://x/bookworms notbookworm main\n"


def test_the_release_is_read_from_os_release(tmp_path):
    path = tmp_path / "os-release"
    path.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert upgrade.release(str(path)) == "bookworm"


def test_wrong_use_is_refused(capsys):
    assert upgrade.main(["now"]) == 2
    assert "usage: mailstack-upgrade prepare|finish" in capsys.readouterr().err


def test_during_the_package_step_only_sshd_may_start(tmp_path):
    policy = tmp_path / "policy-rc.d"
    policy.write_text(upgrade.POLICY_SCRIPT)
    policy.chmod(0o755)
    for service, code in (("ssh", 0), ("dovecot", 101), ("postfix", 101), ("php8.4-fpm", 101)):
        assert subprocess.run([str(policy), service, "start"]).returncode == code, service


def drained(monkeypatch, load, timeout=120):
    """Run drain() with the host's probe replaced by `load` (one figure per look)
    and a clock that moves one second per look; returns (left, what happened in
    order: each command run, and "look: N" for each look)."""
    events, looks, now = [], iter(load), [0.0]
    monkeypatch.setattr(upgrade, "run", lambda argv, input=None: events.append(
        " ".join(argv) + (f" < {input}" if input else "")))

    def look():
        events.append(f"look: {(n := next(looks))}")
        return n
    left = upgrade.drain(busy=look, timeout=timeout, clock=lambda: now[0],
                         sleep=lambda s: now.__setitem__(0, now[0] + s))
    return left, events


def test_postfix_refuses_new_sessions_lets_open_ones_end_then_closes_its_listeners(monkeypatch):
    left, events = drained(monkeypatch, [3, 2, 1, 0, 5])
    assert left == 0
    assert events == ["nft -f - < " + upgrade.REFUSE_NEW, "look: 3", "look: 2", "look: 1", "look: 0",
                      "postconf -e master_service_disable = inet", "postfix reload",
                      "nft -f - < " + upgrade.REFUSE_NEW_END]
    assert "tcp dport { 25, 465, 587 } ct state new reject" in upgrade.REFUSE_NEW


def test_sessions_that_never_end_are_cut_after_the_timeout(monkeypatch, capsys):
    left, events = drained(monkeypatch, [1] * 10, timeout=5)
    assert left == 1 and events[-2:] == ["postfix reload", "nft -f - < " + upgrade.REFUSE_NEW_END]
    assert "1 session(s) or deliveries cut" in capsys.readouterr().out


def test_module_links_whose_package_left_are_found_and_the_others_kept(tmp_path):
    enabled, available = tmp_path / "modules-enabled", tmp_path / "modules-available"
    enabled.mkdir(), available.mkdir()
    (available / "mod-stream.conf").write_text("load_module x;\n")
    (enabled / "50-mod-stream.conf").symlink_to(available / "mod-stream.conf")
    (enabled / "50-mod-http-echo.conf").symlink_to(available / "mod-http-echo.conf")  # package gone
    assert upgrade.dangling_links(str(enabled)) == [str(enabled / "50-mod-http-echo.conf")]


def resume(tmp_path, status_lines):
    """RESUME run by sh with dpkg-query, apt-get and dpkg that only log their
    arguments (dpkg-query prints `status_lines`); returns what ran, in order."""
    bin_dir, log = tmp_path / "bin", tmp_path / "ran"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text(f"#!/bin/sh\nprintf '%s' '{status_lines}'\n")
    for tool in ("apt-get", "dpkg"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n'
                                    '[ "$1" = download ] && shift && for p in "$@"; do touch "$p.deb"; done\nexit 0\n')
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    done = subprocess.run(["sh", "-c", upgrade.RESUME], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def test_after_a_stop_a_half_installed_package_is_installed_again_from_its_deb_before_dpkg_configures(tmp_path):
    # dpkg-query's ${db:Status-Abbrev}: wanted, state (H: half-installed, U: unpacked),
    # error flag (R: reinstallation required).
    ran = resume(tmp_path, "ii  sed\niHR php-psr-http-factory\niU  roundcube-core\n"
                           "iF  dovecot-core\nirR libfoo1:amd64\n")
    assert ran[0] == "apt-get download php-psr-http-factory libfoo1:amd64"
    assert ran[1].startswith("dpkg --force-confdef --force-confold -i ")
    assert ran[1].split()[4:] == ["./libfoo1:amd64.deb", "./php-psr-http-factory.deb"]
    assert ran[2] == "dpkg --force-confdef --force-confold --configure -a"
    assert ran[3].startswith("apt-get -y -o Dpkg::Options::=--force-confdef") and ran[3].endswith(" -f install")


def test_after_a_stop_with_nothing_half_installed_dpkg_configures_and_apt_completes(tmp_path):
    assert resume(tmp_path, "ii  sed\niU  roundcube-core\n") == [
        "dpkg --force-confdef --force-confold --configure -a",
        "apt-get " + " ".join(upgrade.APT[1:]) + " -f install"]

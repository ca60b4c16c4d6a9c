"""mailstack-upgrade prepare|finish: a mail host's own half of its move from Debian 12
to Debian 13. The operator's `python -m mailstack upgrade INVENTORY FQDN` backs the
host up, runs `prepare`, deploys (which renders every configuration for the new
release: Dovecot 2.4's, PHP 8.4's pools, ...), then runs `finish`.

prepare: the host stops taking mail (its Postfix closes its listeners, lets the
sessions under way end, then stops: senders and the backup MX hold mail for it
meanwhile); no package may start a service until the deploy has
rendered its configuration (policy-rc.d), so Dovecot 2.4 never starts on a 2.3
configuration; apt moves to the new release; what the old release leaves behind and
would get in the way goes (PHP 8.2's pools would take PHP 8.4's sockets; Sieve
binaries compiled by 2.3 are recompiled by 2.4 on first use; nginx's links to module
packages the upgrade removed would stop nginx from starting).
finish: services may start again; every mail service runs.

Both steps can run again after an interruption: prepare goes on from where apt
stopped (dpkg --configure -a), finish only starts what is stopped.
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

FROM, TO = "bookworm", "trixie"
POLICY = "/usr/sbin/policy-rc.d"
# No service starts until the deploy ran, except sshd: its new version must take the
# next connections (the operator's deploy among them).
POLICY_SCRIPT = """#!/bin/sh
# mailstack-upgrade: services wait for the deploy (configuration for the new release)
case "$1" in ssh|ssh.service|ssh.socket) exit 0 ;; esac
exit 101
"""
SOURCES = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list")),
           *sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))]
# Stopped before the packages change, in this order; started again in reverse.
SERVICES = ["postfix", "dovecot", "rspamd", "nginx", "php8.2-fpm", "php8.4-fpm", "redis-server",
            "knot", "unbound", "fail2ban"]
# mailstack's own jobs (expire, backup, DKIM retirement, ...) call Dovecot's tools:
# none may run while Dovecot 2.4's binaries meet 2.3's configuration.
TIMERS = "mailstack-*.timer"
SIEVE_BINARIES = ["/var/lib/mailstack/sieve/*.svbin", "/var/vmail/*/*/sieve/*.svbin",
                  "/var/vmail/*/*/.dovecot.svbin"]
# Postfix stops taking mail before it stops: new connections are refused (a TCP reset:
# senders go to the backup MX at once) while the sessions and deliveries under way end,
# then its listeners close. Closing them first cuts those sessions: Postfix's reload
# ends the processes of each service it closes. A session cut after the message was
# queued, before the sender heard so, makes the sender send it again: one message
# delivered twice (seen in the upgrade scenario, twice).
REFUSE_NEW = """table inet mailstack_drain {
    chain input {
        type filter hook input priority -10;
        tcp dport { 25, 465, 587 } ct state new reject with tcp reset
    }
}
"""
# Gone whether or not it is there (nft's idiom: declare, then delete).
REFUSE_NEW_END = "table inet mailstack_drain\ndelete table inet mailstack_drain\n"
# Set by the operator's `mailstack upgrade` for its deploy between prepare and finish
# (the host's FQDN): that deploy renders main.cf with the ports still closed.
UPGRADING = "MAILSTACK_UPGRADING"
SESSIONS = ["ss", "-Htn", "state", "established", "( sport = :25 or sport = :465 or sport = :587 )"]
DRAIN_SECONDS = 120
APT = ["apt-get", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
       "-o", "DPkg::Lock::Timeout=300"]
# A conffile we changed never stops dpkg for a question (nobody is there to answer).
DPKG_CONFIGURE = ["dpkg", "--force-confdef", "--force-confold", "--configure", "-a"]
# Packages a stop left half-installed (dpkg's status H) or marked for reinstallation
# (flag R): dpkg cannot configure them and apt -f install does not reinstall one whose
# version is already the new one (seen: a cut while php-psr-http-factory unpacked).
HALF_INSTALLED = ("dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package}\\n' | "
                  "awk 'substr($0, 2, 1) == \"H\" || substr($0, 3, 1) == \"R\" {print $2}'")
# The operator's command runs this after a stop in the package step, as a shell
# script: Python itself (mailstack-upgrade's interpreter) may be half in place. The
# half-installed packages come again from their own .deb (apt-get download needs no
# consistent system), then dpkg configures what it can and apt completes the rest.
RESUME = f"""set -u
export DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none
half=$({HALF_INSTALLED})
if [ -n "$half" ]; then
  echo "mailstack-upgrade: installing again what the stop left half-installed:" $half
  debs=$(mktemp -d) && chmod 755 "$debs" && cd "$debs" && apt-get download $half &&
    dpkg --force-confdef --force-confold -i ./*.deb
  cd / && rm -rf "$debs"
fi
{' '.join(DPKG_CONFIGURE)}
{' '.join(APT)} -f install
"""


def release(path="/etc/os-release"):
    with open(path) as f:
        fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    return fields.get("VERSION_CODENAME", "").strip('"')


def switch_sources(text, old=FROM, new=TO):
    """The apt sources with the release's suites renamed (bookworm, bookworm-updates,
    bookworm-security, bookworm-backports, ...)."""
    return re.sub(rf"\b{old}(?=\b|-)", new, text)


def present(units):
    return [u for u in units if subprocess.run(["systemctl", "cat", f"{u}.service"],
                                               capture_output=True).returncode == 0]


def run(argv, input=None):
    print("mailstack-upgrade: " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True, text=True, input=input,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"})


def busy():
    """Open SMTP sessions plus messages in delivery (Postfix's active queue)."""
    sessions = subprocess.run(SESSIONS, capture_output=True, text=True).stdout.splitlines()
    queue = subprocess.run(["postqueue", "-j"], capture_output=True, text=True).stdout.splitlines()
    return len(sessions) + sum(json.loads(m).get("queue_name") == "active" for m in queue if m.strip())


def drain(busy=busy, timeout=DRAIN_SECONDS, clock=time.monotonic, sleep=time.sleep):
    """Refuse new SMTP connections, wait (at most `timeout` s) until nothing is under
    way, then close Postfix's listeners; returns what still was. The deploy's main.cf
    opens the listeners again (the refusal ends with the reload: a power cut or a
    restart clears it too)."""
    run(["nft", "-f", "-"], input=REFUSE_NEW)
    deadline = clock() + timeout
    while (left := busy()) and clock() < deadline:
        sleep(1)
    run(["postconf", "-e", "master_service_disable = inet"])
    run(["postfix", "reload"])
    run(["nft", "-f", "-"], input=REFUSE_NEW_END)
    print(f"mailstack-upgrade: Postfix takes no new mail; {left} session(s) or deliveries cut"
          if left else "mailstack-upgrade: Postfix takes no new mail; nothing under way", flush=True)
    return left


def installed(package):
    return subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True,
                          text=True).stdout.endswith(" installed")


def dangling_links(directory):
    """Links in `directory` whose target is gone (nginx's modules-enabled after the
    old release's module packages left: nginx refuses to start on them)."""
    return [p for p in sorted(glob.glob(os.path.join(directory, "*")))
            if os.path.islink(p) and not os.path.exists(p)]


def prepare():
    now = release()
    if now not in (FROM, TO):
        print(f"mailstack-upgrade: this host runs {now or 'an unknown release'}, not {FROM}",
              file=sys.stderr)
        return 1
    with open(POLICY, "w") as f:
        f.write(POLICY_SCRIPT)
    os.chmod(POLICY, 0o755)
    run(["systemctl", "stop", TIMERS])
    if subprocess.run(["systemctl", "is-active", "--quiet", "postfix.service"]).returncode == 0:
        drain()
    units = present(SERVICES)
    if units:
        run(["systemctl", "stop", *units])
    for path in SOURCES:
        with open(path) as f:
            text = f.read()
        if switch_sources(text) != text:
            with open(path, "w") as f:
                f.write(switch_sources(text))
    run(DPKG_CONFIGURE)
    run(["apt-get", "update"])
    run(APT + ["upgrade", "--without-new-pkgs"])
    # PHP 8.4's `php` depends on libapache2-mod-php8.4 | php8.4-fpm: left to itself,
    # the upgrade picks the first and brings Apache, which takes port 80 from nginx at
    # the next boot. With php8.4-fpm in first the dependency holds without it.
    if installed("php8.2-fpm"):
        run(APT + ["install", "php8.4-fpm"])
    run(APT + ["full-upgrade"])
    old_php = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", "php8.2*"],
                             capture_output=True, text=True).stdout
    leftovers = [line.split()[0] for line in old_php.splitlines() if line.endswith(" installed")]
    if leftovers:
        run(APT + ["purge", *leftovers])
    run(APT + ["autoremove", "--purge"])
    for link in dangling_links("/etc/nginx/modules-enabled"):
        os.remove(link)
    for pattern in SIEVE_BINARIES:
        for path in glob.glob(pattern):
            os.remove(path)
    # rspamd's configuration is the same on both releases: the new rspamd (and redis)
    # run before the deploy restarts Postfix, which needs its milter.
    spam = present(["redis-server", "rspamd"])
    if spam:
        run(["systemctl", "start", *spam])
    print(f"mailstack-upgrade: packages of {release()} in place; now deploy, then finish")
    return 0


def finish():
    if os.path.exists(POLICY):
        os.remove(POLICY)
    run(["nft", "-f", "-"], input=REFUSE_NEW_END)     # prepare stopped halfway through drain()
    run(["systemctl", "daemon-reload"])
    enabled = [u for u in present(SERVICES) if subprocess.run(
        ["systemctl", "is-enabled", "--quiet", f"{u}.service"]).returncode == 0]
    if enabled:
        run(["systemctl", "start", *reversed(enabled)])
    timers = subprocess.run(["systemctl", "list-unit-files", "--state=enabled", "--no-legend", TIMERS],
                            capture_output=True, text=True).stdout.split()[::3]
    if timers:
        run(["systemctl", "start", *timers])
    # Postfix opens its ports last, once Dovecot (quota checks, delivery) runs.
    if subprocess.run(["postconf", "-h", "master_service_disable"], capture_output=True,
                      text=True).stdout.strip():
        run(["postconf", "-X", "master_service_disable"])
        run(["postfix", "reload"])
    # What failed while the packages were half in place (a timer's job without its PHP,
    # the user manager of the session that ran apt) is over now.
    run(["systemctl", "reset-failed"])
    down = [u for u in enabled if subprocess.run(
        ["systemctl", "is-active", "--quiet", f"{u}.service"]).returncode != 0]
    print(f"mailstack-upgrade: {release()}, " + (f"not running: {', '.join(down)}" if down
                                                 else "every service running"))
    return 1 if down else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["prepare"]:
        return prepare()
    if argv == ["finish"]:
        return finish()
    print("usage: mailstack-upgrade prepare|finish", file=sys.stderr)
    return 2

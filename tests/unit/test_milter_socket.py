"""rspamd's milter socket: where rspamd binds it is where Postfix's (chrooted) smtpd
and its unit's wait for rspamd look for it."""
import re
import shlex
import subprocess
from pathlib import Path

import jinja2

from roles.rspamd import MILTER

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
QUEUE_DIRECTORY = "/var/spool/postfix"      # Postfix's daemons run there (chrooted or not)


def render(path, **context):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template(path).render(milter=MILTER, **context)


def test_postfix_finds_the_socket_rspamd_binds_inside_its_queue_directory():
    proxy = render("rspamd/etc/rspamd/local.d/worker-proxy.inc.j2")
    bound = re.search(r'^bind_socket = "(\S+) mode=0666";$', proxy, re.M).group(1)
    main_cf = (TEMPLATES / "postfix/etc/postfix/main.cf.j2").read_text()
    assert "smtpd_milters = unix:{{ milter.postfix }}" in main_cf
    assert not MILTER.postfix.startswith("/")                  # relative: chroot or not
    assert f"{QUEUE_DIRECTORY}/{MILTER.postfix}" == bound == MILTER.path
    assert MILTER.path.startswith(MILTER.directory + "/")


def test_postfix_s_unit_waits_for_that_socket_without_connecting_to_it():
    drop_in = render("postfix/etc/systemd/system/postfix@-.service.d/mailstack.conf.j2")
    line = next(x for x in drop_in.splitlines() if x.startswith("ExecStartPre="))
    argv = shlex.split(line.removeprefix("ExecStartPre="))
    assert argv[:2] == ["/bin/bash", "-c"]
    assert subprocess.run(["bash", "-n", "-c", argv[2]]).returncode == 0
    # The kernel's list of listening sockets: a connection would make rspamd log a cut one.
    assert f'ss -Hxl | grep -qF " {MILTER.path} "' in argv[2]
    assert "$" not in argv[2].replace("{1..150}", "")        # nothing for systemd to expand

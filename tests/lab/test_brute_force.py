"""Password guessing from the internet is cut short: after a few failed logins on
any protocol the guesser is refused on every port for a while, and nobody else is;
ports nothing serves are closed; the rules come back after a reboot."""
import shlex
import subprocess
import time

import pytest

from .mailclient import message
from .test_backup_mx import container

OUTSIDE_OTHER = "10.66.0.21"   # a second client on the internet (an extra address of outside)

# Runs on outside: one failed login per connection, from a chosen source address,
# in the protocol named; prints each server reply line it got.
GUESS = r'''
import base64, http.client, json, re, socket, ssl, sys, urllib.parse
proto, server, source, user, password, times = sys.argv[1:7]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def conn(port, tls=True):
    s = socket.create_connection((server, port), 10, source_address=(source, 0))
    return ctx.wrap_socket(s, server_hostname="mx1.acme.test") if tls else s
def lines(s):
    f = s.makefile("rb")
    return lambda: f.readline().decode().strip()
plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
for _ in range(int(times)):
    if proto == "imap":
        s = conn(993); read = lines(s); read()
        s.sendall(f'a LOGIN "{user}" "{password}"\r\n'.encode()); r = read()
        while not r.startswith("a "): r = read()
    elif proto == "pop3":
        s = conn(995); read = lines(s); read()
        s.sendall(f"USER {user}\r\n".encode()); read()
        s.sendall(f"PASS {password}\r\n".encode()); r = read()
    elif proto == "submission":
        s = conn(465); read = lines(s); read()
        s.sendall(b"EHLO guesser.example.test\r\n"); r = read()
        while r[3:4] == "-": r = read()
        s.sendall(f"AUTH PLAIN {plain}\r\n".encode()); r = read()
    elif proto == "managesieve":
        s = conn(4190, tls=False); read = lines(s); r = read()
        while not r.startswith("OK"): r = read()
        s.sendall(b"STARTTLS\r\n"); read()
        s = ctx.wrap_socket(s, server_hostname="mx1.acme.test"); read = lines(s); r = read()
        while not r.startswith("OK"): r = read()
        s.sendall(f'AUTHENTICATE "PLAIN" "{plain}"\r\n'.encode()); r = read()
    elif proto == "webmail":
        c = http.client.HTTPSConnection("webmail.acme.test", 443, context=ctx, source_address=(source, 0))
        c.request("GET", "/", headers={"Host": "webmail.acme.test"})
        page = c.getresponse()
        cookie = "; ".join(h.split(";")[0] for k, h in page.getheaders() if k.lower() == "set-cookie")
        token = re.search(r'"request_token":"([^"]+)"', page.read().decode()).group(1)
        body = urllib.parse.urlencode({"_task": "login", "_action": "login", "_token": token,
                                       "_user": user, "_pass": password, "_timezone": "UTC"})
        c.request("POST", "/?_task=login", body, {"Host": "webmail.acme.test", "Cookie": cookie,
                  "Content-Type": "application/x-www-form-urlencoded"})
        response = c.getresponse(); response.read(); r = str(response.status)
    print(r, flush=True)
'''


# The fail2ban jail that bans for each protocol.
JAILS = {"imap": "dovecot", "pop3": "dovecot", "managesieve": "dovecot",
         "submission": "postfix-sasl", "webmail": "roundcube-auth"}


def guess(outside, proto, server, source, user, password, times):
    return outside.run("python3 -c " + shlex.quote(GUESS) + " " + " ".join(
        shlex.quote(str(a)) for a in (proto, server, source, user, password, times)))


def reachable(outside, address, port, source):
    probe = (f"import socket; socket.create_connection(('{address}', {port}), 3, "
             f"source_address=('{source}', 0)).close()")
    return outside.run(f"python3 -c {shlex.quote(probe)}").rc == 0


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(1)


@pytest.fixture(scope="module")
def internet(hosts, lab):
    """outside with a second address: another client on the internet."""
    outside = hosts["outside"]
    outside.run_expect([0], f"ip addr replace {OUTSIDE_OTHER}/24 dev eth0")
    yield outside, lab["hosts"]["outside"]["address"]
    outside.run(f"ip addr del {OUTSIDE_OTHER}/24 dev eth0")


@pytest.mark.parametrize("proto", ["imap", "pop3", "submission", "managesieve", "webmail"])
def test_a_password_guesser_is_refused_on_every_port_for_the_ban_time(internet, hosts, lab,
                                                                      mailbox, proto):
    outside, guesser = internet
    mx1 = lab["hosts"]["mx1"]["address"]
    alice = mailbox("alice@acme.test")
    wait(lambda: reachable(outside, mx1, 25, guesser), 90, "an earlier ban did not end")
    guess(outside, proto, mx1, guesser, alice["address"], "not-her-password", 6)
    # Banned: every mail port refuses the guesser.
    wait(lambda: not reachable(outside, mx1, 25, guesser), 30, f"no ban after 6 {proto} failures")
    for port in (25, 993, 995, 465, 587, 4190, 443):
        assert not reachable(outside, mx1, port, guesser), port
    # Another client logs in as usual, the right password still works.
    ok = guess(outside, "imap", mx1, OUTSIDE_OTHER, alice["address"], alice["password"], 1)
    assert ok.stdout.strip().startswith("a OK"), ok.stdout + ok.stderr
    jail = JAILS[proto]
    assert guesser in hosts["mx1"].check_output(f"fail2ban-client status {jail}"), jail
    if proto == "webmail":
        # The ban ends by itself after the ban time (30 s in the lab; the same for every jail).
        wait(lambda: reachable(outside, mx1, 25, guesser), 90, "the ban did not end")
    else:
        # The operator lifts a ban at once (README); the next protocol starts unbanned.
        hosts["mx1"].run_expect([0], f"fail2ban-client set {jail} unbanip {guesser}")
        wait(lambda: reachable(outside, mx1, 25, guesser), 10, "the ban was not lifted")


@pytest.mark.parametrize("name, closed, open_", [
    # rspamd's controller, redis and the MTA-STS resolver have no passwords: loopback
    # only (rspamd's milter is a Unix socket). Dovecot's quota answer: backup MX only.
    ("mx1", [22, 12340, 11334, 6379, 8461], [25, 80, 110, 143, 443, 465, 587, 993, 995, 4190]),
    ("mx2", [22, 110, 143, 587, 993, 4190, 11334, 6379], [25, 80, 443]),
    ("backup", [22, 80, 443, 25], []),
    ("dns", [22, 25, 80], [5300]),
])
def test_ports_nothing_serves_are_closed_to_the_internet(internet, lab, name, closed, open_):
    outside, source = internet
    address = lab["hosts"][name]["address"]
    for port in closed:
        assert not reachable(outside, address, port, source), f"{name}:{port} is open"
    for port in open_:
        assert reachable(outside, address, port, source), f"{name}:{port} is closed"


def test_the_backup_mx_may_ask_the_primarys_quota_service(hosts, lab):
    mx1 = lab["hosts"]["mx1"]["address"]
    probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{mx1}/12340'"
    assert hosts["mx2"].run(probe).rc == 0


def test_the_firewall_comes_back_after_a_reboot(internet, hosts, lab):
    outside, source = internet
    mx2 = lab["hosts"]["mx2"]["address"]
    container(lab, "mx2", "stop")
    container(lab, "mx2", "start")
    wait(lambda: reachable(outside, mx2, 25, source), 120, "mx2 did not come back")
    assert not reachable(outside, mx2, 143, source)
    assert "table inet mailstack" in hosts["mx2"].check_output("nft list tables")
    assert hosts["mx2"].service("fail2ban").is_running


IDLE = r'''
import socket, sys, time
held = [socket.create_connection((sys.argv[1], 12340), 5) for _ in range(20)]
print(len(held), flush=True)
time.sleep(float(sys.argv[2]))
'''


def test_idle_connections_to_the_quota_service_do_not_delay_a_delivery(hosts, lab, mx1, mailbox):
    """Only the backup MX may reach Dovecot's quota service from outside mx1; even
    20 idle connections from it leave a delivery's RCPT check unhurt."""
    address = lab["hosts"]["mx1"]["address"]
    ssh = ["ssh", "-F", lab["ssh_config"], "mx2", "python3", "-c", shlex.quote(IDLE), address, "40"]
    idle = subprocess.Popen(ssh, stdout=subprocess.PIPE, text=True)
    try:
        assert idle.stdout.readline().strip() == "20"
        _, text = message("someone@example.test", mailbox("carol@acme.test")["address"], "quota check")
        start = time.monotonic()
        assert mx1.deliver([mailbox("carol@acme.test")["address"]], text) == {}
        assert time.monotonic() - start < 10
    finally:
        idle.kill()

"""Postfix lookup tables derived from the model (pure logic, no I/O)."""
from .model import MailSystem, Relay


def virtual_mailboxes(system: MailSystem) -> str:
    """address -> Maildir path; Postfix only uses it to know who exists."""
    return "".join(f"{a} {a.split('@')[1]}/{a.split('@')[0]}/\n"
                   for a in [m.address for m in system.stores])


def virtual_aliases(system: MailSystem) -> str:
    lines = [f"{a.address} {', '.join(a.targets)}" for a in system.aliases]
    catch_all = [d for d in system.domains if d.catch_all]
    if catch_all:
        # A catch-all (@domain) would swallow real addresses: map them to themselves.
        names = {d.name for d in catch_all}
        lines += [f"{m.address} {m.address}" for m in system.stores if m.address.split("@")[1] in names]
        lines += [f"@{d.name} {d.catch_all}" for d in catch_all]
    return "".join(line + "\n" for line in lines)


def sender_logins(system: MailSystem) -> str:
    """address -> the logins allowed to use it as sender (smtpd_sender_login_maps)."""
    lines = []
    for address in [m.address for m in system.stores] + [a.address for a in system.aliases]:
        owners = system.owners(address)
        if owners:
            lines.append(f"{address} {', '.join(owners)}")
    return "".join(line + "\n" for line in lines)


def relay_recipients(system: MailSystem) -> str:
    """Every address the primary accepts, for a backup MX to check at RCPT time
    (a catch-all domain accepts any address there: @domain)."""
    addresses = {m.address for m in system.stores} | {a.address for a in system.aliases}
    addresses |= {f"@{d.name}" for d in system.domains if d.catch_all}
    return "".join(f"{a} OK\n" for a in sorted(addresses))


def senders_by_login(system: MailSystem) -> str:
    """login -> every address it may use as sender, envelope and header From alike
    (rspamd's map; the same knowledge as sender_logins, the other way round)."""
    by_login = {}
    for address in [m.address for m in system.stores] + [a.address for a in system.aliases]:
        for login in system.owners(address):
            by_login.setdefault(login, []).append(address)
    return "".join(f"{login} {' '.join(sorted(addresses))}\n"
                   for login, addresses in sorted(by_login.items()))


def sasl_passwords(relay: Relay, password: str) -> str:
    """smtp_sasl_password_maps: the smarthost's login, under the very name relayhost
    gives it ([host]:port), so Postfix sends it there and nowhere else."""
    return f"{relay.nexthop} {relay.username}:{password}\n"

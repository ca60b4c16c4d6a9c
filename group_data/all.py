"""Host settings every role reads, with their defaults. An inventory file (or
group_data/<group>.py) overrides them. Mail data never lives here: domains,
mailboxes, aliases and limits are in inventory/<system>/mail.yml."""

# base: journald keeps at most this much disk and this much history.
journald_max_use = "200M"
journald_max_retention = "1month"

# base: an apt proxy (http://address:port) for every host; None: fetch directly.
apt_proxy = None

# base: nameservers written to /etc/resolv.conf; None keeps the host's own.
resolvers = None

# dns: port the authoritative server answers on (and takes RFC 2136 updates).
dns_port = 53

# resolver: a network whose hosts may use this host's resolver; None: local only.
lab_network = None

# dns: zones served beside the mail domains ({zone: {mx: fqdn, hosts: {fqdn: ip},
# txt: {name: text}}}),
# e.g. the lab's outside domain.
lab_zones = None

# tls: PEM file (on the operator machine) to trust for the ACME CA's API, when it
# is not a public CA (the lab's pebble); None: the system's trust store.
acme_api_cert = None

# tls: where a private ACME CA publishes its root certificate (the lab's pebble
# makes a new one at each start); hosts fetch and trust it with each certificate,
# so they verify each other (the backup MX relaying to the primary). None: the
# CA's root is already in the system's trust store (Let's Encrypt).
acme_root_url = None

# acme_ca (lab only): the pebble API's key, on the operator machine.
acme_api_key = None

# dns: the TSIG key RFC 2136 updates are signed with ({name, algorithm, secret});
# made by mailstack itself (secrets/<system>/tsig.json) when dns.publish is set.
tsig_key = None

# rspamd (lab): accept GTUBE-like test patterns for every action, not only reject.
rspamd_test_patterns = False

# postfix (primary): the smarthost's password (relay.password_file in the data), read
# on the operator machine by mailstack.inventory; None: no smarthost login.
relay_password = None

# outside (lab only): the smarthost account it offers ({username, password_file}).
smarthost_account = None

"""Extra zones served whole (the lab's internet): a sender domain with its
authentication records, and a reverse zone with a PTR for each address."""
from mailstack.dns import zone_file, zone_names, zone_records
from mailstack.model import load_system

from .conftest import VALID

EXTRA = {
    "example.test": {"mx": "mail.example.test", "hosts": {"mail.example.test": "10.66.0.20"},
                     "txt": {"example.test": "v=spf1 mx -all",
                             "_dmarc.example.test": "v=DMARC1; p=reject"}},
    "0.66.10.in-addr.arpa": {"ptr": {"10.66.0.20": "mail.example.test",
                                     "10.66.0.11": "mx1.acme.test"}},
}


def test_a_reverse_zone_holds_one_ptr_per_address_and_no_mx(write_data):
    records = zone_records(load_system(write_data(VALID)), EXTRA)["0.66.10.in-addr.arpa"]
    assert {(r.name, r.rtype, r.value) for r in records if r.rtype != "NS"} == {
        ("20.0.66.10.in-addr.arpa.", "PTR", "mail.example.test."),
        ("11.0.66.10.in-addr.arpa.", "PTR", "mx1.acme.test.")}
    text = zone_file("0.66.10.in-addr.arpa", records, "ns.example.org", "hostmaster@example.org")
    assert "20.0.66.10.in-addr.arpa. 300 IN PTR mail.example.test." in text


def test_a_sender_domain_gets_its_mx_address_and_txt_records(write_data):
    records = zone_records(load_system(write_data(VALID)), EXTRA)["example.test"]
    found = {(r.name, r.rtype, r.value) for r in records}
    assert ("example.test.", "MX", "10 mail.example.test.") in found
    assert ("mail.example.test.", "A", "10.66.0.20") in found
    assert ("example.test.", "TXT", '"v=spf1 mx -all"') in found
    assert ("_dmarc.example.test.", "TXT", '"v=DMARC1; p=reject"') in found


# A client still at its old provider: its MX there, its web names already here.
CLIENT = {"client.test": {"mx": "imap.old.test",
                          "cname": {"webmail.client.test": "mx1.example.org"},
                          "txt": {"client.test": "v=spf1 mx -all"}}}


def test_a_client_domain_at_another_provider_is_served_whole(write_data):
    system = load_system(write_data(VALID))
    found = {(r.name, r.rtype, r.value) for r in zone_records(system, CLIENT)["client.test"]}
    assert {("client.test.", "MX", "10 imap.old.test."),
            ("webmail.client.test.", "CNAME", "mx1.example.org.")} <= found
    assert "client.test" in zone_names(system, CLIENT)


def test_once_the_data_hosts_the_domain_its_zone_is_the_systems_own(write_data):
    """The MX switch: the zone the lab served for the old provider gives way."""
    system = load_system(write_data(VALID.replace("  - name: example.net", "  - name: client.test\n"
                                                                          "  - name: example.net")))
    records = zone_records(system, CLIENT)["client.test"]
    assert ("client.test.", "MX", "10 mx1.example.org.") in {(r.name, r.rtype, r.value) for r in records}
    assert not [r for r in records if "imap.old.test" in r.value]
    assert zone_names(system, CLIENT).count("client.test") == 1

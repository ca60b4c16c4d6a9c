"""What an RFC 2136 publish would change, planned from the current zone."""
from mailstack.dns import Record
from mailstack.publish import plan

ZONE = "example.org"
RECORDS = [Record("example.org.", "MX", "10 mx1.example.org."),
           Record("example.org.", "TXT", '"v=spf1 mx -all"'),
           Record("new._domainkey.example.org.", "TXT", '"v=DKIM1; k=rsa; p=NEW"')]


def test_unchanged_zone_needs_no_update():
    current = {("example.org.", "MX"): (300, {"10 mx1.example.org."}),
               ("example.org.", "TXT"): (300, {'"v=spf1 mx -all"'}),
               ("new._domainkey.example.org.", "TXT"): (300, {'"v=DKIM1; k=rsa; p=NEW"'})}
    assert plan(ZONE, RECORDS, current) == ({}, [])


def test_changes_replace_rrsets_keep_foreign_apex_txt_and_drop_old_dkim_selectors():
    current = {("example.org.", "MX"): (300, {"10 old.example.org."}),
               ("example.org.", "TXT"): (300, {'"v=spf1 a -all"', '"site-verification=abc"'}),
               ("old._domainkey.example.org.", "TXT"): (300, {'"v=DKIM1; k=rsa; p=OLD"'}),
               ("www.example.org.", "A"): (300, {"192.0.2.1"})}
    replace, delete = plan(ZONE, RECORDS, current)
    assert replace[("example.org.", "MX")] == (300, {"10 mx1.example.org."})
    assert replace[("example.org.", "TXT")] == (300, {'"v=spf1 mx -all"', '"site-verification=abc"'})
    assert ("new._domainkey.example.org.", "TXT") in replace
    assert delete == [("old._domainkey.example.org.", "TXT")]   # www's A record is not ours

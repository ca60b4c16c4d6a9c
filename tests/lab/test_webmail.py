"""Webmail and client setup: Roundcube over HTTPS used in a real browser (Debian's
Chromium), and the settings mail clients fetch by themselves."""
import http.client
import imaplib
import os
import plistlib
import re
import socket
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from . import mailclient
from .conftest import LAB_DATA, ROOT, deploy, lab_variant
from .mailclient import IMAP, message, wait_for_message, wait_until
from .test_spam_learning import BODY, learned, message_id_salt

WEBMAIL = "webmail.acme.test"
ARTIFACTS = ROOT / ".lab" / "artifacts"
AD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def https(lab, ca_pem, name, path, method="GET", body=None, headers=None):
    """mx1's nginx, for the virtual host `name`."""
    return mailclient.https(lab["hosts"]["mx1"]["address"], name, path, ca_pem, method, body, headers)


# --- HTTPS and client settings --------------------------------------------------

def test_webmail_is_https_only_with_security_headers(lab, lab_ca):
    conn = http.client.HTTPConnection(lab["hosts"]["mx1"]["address"], 80, timeout=10)
    conn.request("GET", "/?_task=mail", headers={"Host": WEBMAIL})
    r = conn.getresponse()
    assert (r.status, r.getheader("Location")) == (301, f"https://{WEBMAIL}/?_task=mail")
    status, headers, body = https(lab, lab_ca, WEBMAIL, "/")
    assert status == 200 and b"Webmail" in body
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"].lower() == "sameorigin"
    assert "secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    # Roundcube's own files stay private.
    for path in ("/plugins/password/config.inc.php", "/config/config.inc.php", "/logs/errors.log",
                 "/installer/"):
        assert https(lab, lab_ca, WEBMAIL, path)[0] in (403, 404), path


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_webmail_refuses_tls_before_1_2(lab, lab_ca, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=lab_ca)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((lab["hosts"]["mx1"]["address"], 443), 10) as sock:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(sock, server_hostname=WEBMAIL)


def autoconfig(lab, lab_ca, address, path="/mail/config-v1.1.xml"):
    domain = address.split("@")[1]
    status, headers, body = https(lab, lab_ca, f"autoconfig.{domain}",
                                  f"{path}?emailaddress={address.replace('@', '%40')}")
    assert status == 200 and headers["content-type"].startswith("application/xml")
    return ET.fromstring(body)


@pytest.mark.parametrize("address,incoming", [
    ("alice@acme.test", {("imap", "993", "SSL"), ("pop3", "995", "SSL")}),
    ("carol@acme.test", {("imap", "993", "SSL")}),         # IMAP only: no POP3 offered
    ("bob@acme.test", {("pop3", "995", "SSL")}),
])
def test_thunderbird_autoconfig_offers_what_the_mailbox_may_use(lab, lab_ca, address, incoming):
    for path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
        doc = autoconfig(lab, lab_ca, address, path)
        assert {(s.get("type"), s.findtext("port"), s.findtext("socketType"))
                for s in doc.iter("incomingServer")} == incoming
        assert {(s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
                for s in doc.iter("outgoingServer")} == {("mx1.acme.test", "465", "SSL"),
                                                          ("mx1.acme.test", "587", "STARTTLS")}


def test_outlook_autodiscover_answers_the_posted_address(lab, lab_ca):
    request = ("<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
               "autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>carol@acme.test"
               "</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/"
               "autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request>"
               "</Autodiscover>")
    status, headers, body = https(lab, lab_ca, "autodiscover.acme.test",
                                  "/Autodiscover/Autodiscover.xml", "POST", request,
                                  {"Content-Type": "text/xml"})
    assert status == 200
    protocols = {(p.findtext(f"{AD}Type"), p.findtext(f"{AD}Server"), p.findtext(f"{AD}Port"),
                  p.findtext(f"{AD}LoginName"), p.findtext(f"{AD}SSL"))
                 for p in ET.fromstring(body).iter(f"{AD}Protocol")}
    assert protocols == {("IMAP", "mx1.acme.test", "993", "carol@acme.test", "on"),
                         ("SMTP", "mx1.acme.test", "465", "carol@acme.test", "on")}


def test_apple_profile_downloads_for_a_mailbox(lab, lab_ca):
    status, headers, body = https(lab, lab_ca, "autoconfig.acme.test",
                                  "/mailstack.mobileconfig?emailaddress=bob%40acme.test")
    assert status == 200
    assert headers["content-type"] == "application/x-apple-aspen-config"
    assert "attachment" in headers["content-disposition"]
    account = plistlib.loads(body)["PayloadContent"][0]
    assert (account["EmailAccountType"], account["IncomingMailServerPortNumber"],
            account["EmailAddress"]) == ("EmailTypePOP", 995, "bob@acme.test")


# --- the browser ----------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(lab, lab_ca, tmp_path_factory):
    """Headless Chromium trusting the lab CA, resolving only the webmail name."""
    home = tmp_path_factory.mktemp("chromium")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    (home / "lab-ca.pem").write_text(lab_ca)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-n", "mailstack lab CA", "-t", "C,,",
                    "-i", str(home / "lab-ca.pem")], check=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                f"--user-data-dir={home / 'profile'}", "--window-size=1400,1000",
                # Only the lab: every other name fails inside the browser, and
                # Chromium's own background traffic is off.
                f"--host-resolver-rules=MAP {WEBMAIL} {lab['hosts']['mx1']['address']}, MAP * ~NOTFOUND",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--no-pings"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver",
                                              env={**os.environ, "HOME": str(home)}), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def wait(browser, timeout=20):
    # Roundcube redraws parts of the page: an element found a moment ago may be gone.
    return WebDriverWait(browser, timeout, ignored_exceptions=[StaleElementReferenceException])


def log_in(browser, box, password=None):
    browser.delete_all_cookies()
    browser.get(f"https://{WEBMAIL}/")
    browser.find_element(By.ID, "rcmloginuser").send_keys(box["address"])
    browser.find_element(By.ID, "rcmloginpwd").send_keys(password or box["password"])
    browser.find_element(By.ID, "rcmloginsubmit").click()


def logged_in(browser):
    wait(browser).until(lambda d: "_task=mail" in d.current_url
                                     and d.find_elements(By.ID, "messagelist"))


def set_display_name(browser, name):
    """Save a setting kept in Roundcube's database: the identity's display name."""
    browser.get(f"https://{WEBMAIL}/?_task=settings&_action=identities")
    browser.find_element(By.CSS_SELECTOR, "#identities-table tbody tr td").click()
    browser.switch_to.frame("preferences-frame")
    field = browser.find_element(By.NAME, "_name")
    field.clear()
    field.send_keys(name)
    browser.find_element(By.CSS_SELECTOR, "button.submit").click()
    browser.switch_to.default_content()
    wait(browser).until(
        lambda d: "Successfully saved" in d.find_element(By.ID, "messagestack").text)


def imap_uid(imap, message_id, mailbox="INBOX"):
    wait_for_message(imap, message_id, mailbox=mailbox)
    return imap.uid("SEARCH", None, "HEADER", "Message-ID", message_id)[1][0].split()[-1].decode()


def test_a_wrong_password_shows_the_login_error_and_is_logged_for_fail2ban(
        browser, mailbox, hosts, lab):
    log_in(browser, mailbox("dave@globex.test"), password="not-the-password")
    error = wait(browser).until(
        lambda d: d.find_element(By.ID, "messagestack").text.strip() or None)
    assert "Login failed" in error
    assert browser.find_elements(By.ID, "rcmloginuser")
    # fail2ban's roundcube-auth filter (Debian) reads these lines.
    log = hosts["mx1"].check_output("tail -n 50 /var/log/roundcube/errors.log")
    assert re.search(r"IMAP Error: Login failed for dave@globex\.test against \S+ from "
                     + re.escape(lab["operator_address"]), log), log[-2000:]


def test_a_user_reads_replies_files_marks_junk_and_logs_out(browser, mx1, hosts, mailbox):
    alice, carol, mx = mailbox("alice@acme.test"), mailbox("carol@acme.test"), hosts["mx1"]
    started = time.monotonic()
    token = f"{time.time_ns()}"
    message_id, text = message(carol["address"], alice["address"], f"Lunch {token}",
                               f"Shall we have lunch? {token}")
    assert mx1.submit(carol, [alice["address"]], text) == {}
    imap = mx1.imap(alice)
    uid = imap_uid(imap, message_id)

    log_in(browser, alice)
    logged_in(browser)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.find_element(By.XPATH, f"//*[@id='messagelist']//*[contains(., 'Lunch {token}')]")
    browser.save_screenshot(str(ARTIFACTS / "webmail-inbox.png"))

    # Open the message the test delivered over SMTP.
    browser.get(f"https://{WEBMAIL}/?_task=mail&_mbox=INBOX&_uid={uid}&_action=show")
    assert f"Shall we have lunch? {token}" in browser.find_element(By.ID, "messagebody").text

    # Reply; carol reads it over IMAP.
    browser.get(f"https://{WEBMAIL}/?_task=mail&_reply_uid={uid}&_mbox=INBOX&_action=compose")
    body = browser.find_element(By.ID, "composebody")
    body.send_keys(f"Yes, at noon. {token}\n")
    assert carol["address"] in browser.find_element(By.ID, "compose-headers").text \
        or carol["address"] in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "button.send, a.send").click()
    wait(browser, 30).until(lambda d: "_action=compose" not in d.current_url)
    carol_imap = mx1.imap(carol)
    carol_imap.select("INBOX")
    deadline = time.monotonic() + 60
    while not carol_imap.search(None, "SUBJECT", f'"Re: Lunch {token}"', "BODY", token)[1][0]:
        assert time.monotonic() < deadline, "the reply did not reach carol"
        time.sleep(1)
        carol_imap.select("INBOX")
    carol_imap.logout()

    # A filter made in Settings files the next message.
    browser.get(f"https://{WEBMAIL}/?_task=settings&_action=plugin.managesieve")
    browser.find_element(By.CSS_SELECTOR, "a.create").click()
    browser.switch_to.frame("filter-box")
    browser.find_element(By.ID, "_name").send_keys(f"Receipts {token}")
    browser.find_element(By.NAME, "_rule_target[0][]").send_keys(f"Receipt {token}")
    Select(browser.find_element(By.ID, "action_type0")).select_by_value("fileinto")
    Select(browser.find_element(By.ID, "action_mailbox0")).select_by_value("Archive")
    browser.find_element(By.CSS_SELECTOR, "button.submit").click()
    browser.switch_to.default_content()
    wait(browser).until(
        lambda d: f"Receipts {token}" in d.find_element(By.ID, "filterslist").text)
    filed_id, filed = message(carol["address"], alice["address"], f"Receipt {token}", "Thanks.")
    assert mx1.submit(carol, [alice["address"]], filed) == {}
    wait_for_message(imap, filed_id, mailbox="Archive")

    # "Junk" moves the message to Junk, and rspamd learns it as spam.
    spam_id, spam = message(carol["address"], alice["address"], f"Offer {token}",
                            BODY + message_id_salt())
    assert mx1.submit(carol, [alice["address"]], spam) == {}
    spam_uid = imap_uid(imap, spam_id)
    before = learned(mx, "spam")
    browser.get(f"https://{WEBMAIL}/?_task=mail&_mbox=INBOX&_uid={spam_uid}&_action=show")
    browser.find_element(By.CSS_SELECTOR, "a.junk").click()
    wait_for_message(imap, spam_id, mailbox="Junk")
    wait_until(lambda: learned(mx, "spam") == before + 1)
    imap.logout()

    browser.find_element(By.CSS_SELECTOR, "a.logout").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "rcmloginuser"))
    print(f"\nbrowser scenario: {time.monotonic() - started:.1f} s")


def test_a_password_changed_in_webmail_works_and_survives_a_deploy(browser, mx1, mailbox, hosts):
    grace = mailbox("grace@acme.test")
    new = f"N3w-{time.time_ns()}-pass"
    log_in(browser, grace)
    logged_in(browser)
    browser.get(f"https://{WEBMAIL}/?_task=settings&_action=plugin.password")
    browser.find_element(By.ID, "curpasswd").send_keys(grace["password"])
    browser.find_element(By.ID, "newpasswd").send_keys(new)
    browser.find_element(By.ID, "confpasswd").send_keys(new)
    browser.find_element(By.CSS_SELECTOR, "button.submit").click()
    try:
        wait(browser).until(
            lambda d: "Successfully saved" in d.find_element(By.ID, "messagestack").text)
        assert_login(mx1, grace, new)
        with pytest.raises(imaplib.IMAP4.error):
            assert_login(mx1, grace, grace["password"], wait=0)
        # A setting kept in Roundcube's database: her display name.
        name = f"Grace {time.time_ns()}"
        set_display_name(browser, name)
        # The next deploy keeps the password (and changes nothing).
        subprocess.run([sys.executable, str(ROOT / "lab" / "labctl"), "deploy"], cwd=ROOT,
                       check=True, capture_output=True)
        assert_login(mx1, grace, new)
        # Roundcube's session and settings survived the deploy.
        browser.get(f"https://{WEBMAIL}/?_task=mail&_mbox=INBOX")
        logged_in(browser)
        browser.get(f"https://{WEBMAIL}/?_task=settings&_action=identities")
        assert name in browser.find_element(By.ID, "identities-table").text
    finally:
        hosts["mx1"].run(f"printf '%s:%s\\n' {grace['address']} '{grace['password']}'"
                         " | /usr/local/sbin/mailstack-password")
    assert_login(mx1, grace, grace["password"])


def assert_login(mx1, box, password, wait=3):
    """Log in over IMAP (Dovecot rereads a changed password file within a second)."""
    deadline = time.monotonic() + wait
    while True:
        imap = IMAP(mx1.address, mx1.hostname, 993, mx1.ca_pem)
        try:
            imap.login(box["address"], password)
            return imap.logout()
        except imaplib.IMAP4.error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_with_postgresql_selected_webmail_keeps_its_users_in_postgresql(
        browser, hosts, mailbox, tmp_path):
    """The same lab with one line of data changed (webmail.database: postgresql)."""
    variant = lab_variant(tmp_path / "mail.yml", append="\nwebmail: {database: postgresql}\n")
    mx1, dave = hosts["mx1"], mailbox("dave@globex.test")
    psql = "runuser -u postgres -- psql -d roundcube -tAX -c"
    try:
        deploy(variant, "mx1.acme.test")
        name = f"Dave {time.time_ns()}"
        log_in(browser, dave)
        logged_in(browser)
        set_display_name(browser, name)
        # Roundcube's tables, owned by its own role, hold her account and identity.
        assert mx1.check_output(f"{psql} \"SELECT username FROM users\"").split() == [dave["address"]]
        assert mx1.check_output(f"{psql} \"SELECT name FROM identities\"") == name
        assert mx1.check_output(f"{psql} \"SELECT tableowner FROM pg_tables "
                                f"WHERE tablename = 'session'\"") == "roundcube"
        # The role's password stays on the host, readable by root and the web server only.
        assert mx1.file("/etc/roundcube/mailstack-db.inc.php").mode == 0o640
        assert mx1.file("/etc/roundcube/mailstack-db.inc.php").group == "www-data"
        second = deploy(variant, "mx1.acme.test", json_out=True)
        assert [op["name"] for op in second if op["success"]] == []
        browser.get(f"https://{WEBMAIL}/?_task=settings&_action=identities")
        assert name in browser.find_element(By.ID, "identities-table").text
    finally:
        deploy(LAB_DATA, "mx1.acme.test")
    # Back on SQLite (the default), webmail works as before.
    log_in(browser, dave)
    logged_in(browser)


# Last: it uses up this address's login budget for a minute.
def test_a_flood_of_login_attempts_is_throttled(lab, lab_ca):
    statuses = [https(lab, lab_ca, WEBMAIL, "/?_task=login", "POST",
                      "_task=login&_action=login&_user=alice%40acme.test&_pass=wrong",
                      {"Content-Type": "application/x-www-form-urlencoded"})[0] for _ in range(15)]
    assert statuses.count(429) >= 9, statuses     # nginx: 10 a minute, a burst of 5

"""Mail that mailstack itself writes (alerts, quota warnings): always well-formed,
with the headers RFC 5322 requires (Date, From) and those every sane MTA and
mail client expect (Message-ID, MIME, Auto-Submitted so no one auto-replies)."""
import os
import shutil
import subprocess
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, make_msgid

# Headers on one line each (a long Message-ID is not folded), lines ending in \n
# for sendmail and dovecot-lda.
POLICY = default.clone(max_line_length=998)


def auto_message(sender, to, subject, body, domain):
    """An auto-generated text message from `sender` to `to`; `domain` names the
    Message-ID's right-hand side (the sending host or the postmaster's domain)."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))  # +0000, not -0000 (unknown)
    msg["Message-ID"] = make_msgid("mailstack", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send(msg):
    """Hand a message to this host's MTA (Postfix, or nullmailer where there is
    none); printed when there is no MTA at all."""
    sendmail = shutil.which("sendmail", path="/usr/sbin:/usr/bin")
    if not sendmail:
        print(msg.as_string())
        return
    subprocess.run([sendmail, "-t", "-oi"], input=msg.as_string(), text=True, check=True,
                   env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/bin"})

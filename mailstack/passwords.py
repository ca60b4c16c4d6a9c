"""Password hashes for the mail data: only hashes are ever stored."""
import subprocess


def hash_password(password: str) -> str:
    """A Dovecot SHA512-CRYPT hash (crypt(3) with a random salt, made by openssl)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                         capture_output=True, text=True, check=True).stdout.strip()
    return "{SHA512-CRYPT}" + out

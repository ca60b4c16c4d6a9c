"""mailstack command line.

    python -m mailstack hash-password      read a password, print its hash for the data file
    python -m mailstack check FILE.yml     validate a mail system's data file
"""
import getpass
import sys

from .model import DataError, load_system
from .passwords import hash_password


def main(argv):
    if argv[:1] == ["hash-password"]:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Again: "):
                sys.exit("mailstack: the two passwords differ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            sys.exit("mailstack: empty password")
        print(hash_password(password))
    elif argv[:1] == ["check"] and len(argv) == 2:
        try:
            system = load_system(argv[1])
        except DataError as e:
            sys.exit(f"mailstack: invalid mail data: {e}")
        print(f"{argv[1]}: ok ({len(system.domains)} domains, {len(system.mailboxes)} mailboxes, "
              f"{len(system.aliases)} aliases)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

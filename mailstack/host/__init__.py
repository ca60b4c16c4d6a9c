"""Programs that run on the mail hosts (standard library only).

The deploy copies this package to INSTALL on every host and puts a small launcher
for each program in /usr/local/sbin (roles/base.py). Only their settings are
rendered from the model, as JSON files; the code is the same on every host and is
unit-tested here (tests/unit/test_host_*.py). The operator side imports the same
modules where it needs the same knowledge (password hashing, the password-changes
format, where backups live).
"""
INSTALL = "/usr/local/lib/mailstack"

# Program name on the host -> module here (each has a main()).
PROGRAMS = {
    "mailstack-backup": "backup",
    "mailstack-backup-server": "backup_server",
    "mailstack-password": "password",
    "mailstack-dkim": "dkim",
    "mailstack-quota-warning": "quota_warning",
    "mailstack-upgrade": "upgrade",
    "mailstack-offboarded": "offboarded",
    "mailstack-migrate": "migrate",
    "mailstack-shared": "shared",
    "mailstack-status": "status",
    "mailstack-reports": "reports",
}


def launcher(module: str) -> str:
    """The /usr/local/sbin script that runs `module`'s main(). -I: no PYTHONPATH,
    no user site, no script directory on sys.path (it runs as root through sudo)."""
    return ("#!/usr/bin/python3 -I\n"
            "import sys\n"
            f"sys.path.insert(0, {INSTALL!r})\n"
            f"from mailstack.host.{module} import main\n"
            "sys.exit(main())\n")

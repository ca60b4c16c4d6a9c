"""pyinfra deploy run by `mailstack migrate` (mailstack/migrate.py) on the primary:
mailstack-migrate starts with the job on its standard input. The job is made here
again from the map the command line named (MAILSTACK_MIGRATE: its path, the old
server, the run's id), so the passwords go from their file straight to the host's
stdin: never through a command line, an environment variable or a file of ours."""
from pyinfra import host
from pyinfra.operations import server

from mailstack.host.migrate import PROGRAM
from mailstack.migrate import job_text_from_environment

server.shell(name="mailstack-migrate: start", commands=[f"{PROGRAM} start"],
             _stdin=job_text_from_environment(host.data.mail))

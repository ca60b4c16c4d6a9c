"""mailstack: a validated mail system model and the pyinfra roles that deploy it."""

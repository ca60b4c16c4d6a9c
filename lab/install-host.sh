#!/usr/bin/env bash
# Debian packages the operator machine needs to run the lab (run as root).
set -euo pipefail
# chromium + chromium-driver: the webmail scenarios drive a real browser; certutil
# (libnss3-tools) gives it the lab CA.
# restic + borgbackup: the operator prunes in the scenario of backup.prune_from: operator.
# p7zip-full: the offboarding scenario opens the client's export as the client would.
packages=(vagrant vagrant-lxc lxc mmdebstrap apt-cacher-ng python3-venv openssh-client iproute2
          chromium chromium-driver libnss3-tools restic borgbackup p7zip-full)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# The package starts a system-wide apt-cacher-ng where systemd runs; the lab runs its
# own on the lab bridge instead, so nothing else needs to listen.

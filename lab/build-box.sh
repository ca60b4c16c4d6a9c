#!/usr/bin/env bash
# Build the vagrant-lxc box for the lab from Debian packages (no Vagrant Cloud here).
# Usage: lab/build-box.sh CODENAME OUTPUT.box    (CODENAME: bookworm or trixie)
# The mirror is read from this host's apt sources at run time; it is never written
# into the repository.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 CODENAME OUTPUT.box   (CODENAME: bookworm or trixie)" >&2
  exit 2
fi
# Only the releases mailstack supports: another codename is a typo, not a new box.
case "$1" in
  bookworm|trixie) release=$1 ;;
  *) echo "$0: unsupported Debian release '$1' (bookworm or trixie)" >&2; exit 2 ;;
esac
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /var/tmp/mailstack-box.XXXXXX)
trap 'rm -rf "$work"' EXIT

mirror=$("$here/host-mirror" debian)
security=$("$here/host-mirror" debian-security)
packages=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,sudo,python3,iproute2,ca-certificates,locales

mkdir -p "$work/rootfs"
mmdebstrap --variant=apt --include="$packages" \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo vagrant' \
  --customize-hook="mkdir -p \"\$1/home/vagrant/.ssh\" && cp /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \"\$1/home/vagrant/.ssh/authorized_keys\"" \
  --customize-hook='chroot "$1" chown -R vagrant:vagrant /home/vagrant/.ssh && chmod 700 "$1/home/vagrant/.ssh"' \
  --customize-hook='echo "vagrant ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/vagrant" && chmod 440 "$1/etc/sudoers.d/vagrant"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook="cp \"$here/box/ssh-host-keys.service\" \"\$1/etc/systemd/system/\"" \
  --customize-hook='chroot "$1" systemctl enable ssh-host-keys.service systemd-networkd.service' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer' \
  --customize-hook='chroot "$1" systemctl mask systemd-networkd-wait-online.service' \
  --customize-hook='printf "# set by the deploy (base role)\n" > "$1/etc/resolv.conf"' \
  --customize-hook='echo "en_US.UTF-8 UTF-8" > "$1/etc/locale.gen" && chroot "$1" locale-gen' \
  --customize-hook='rm -f "$1/etc/hostname" "$1/etc/machine-id" && touch "$1/etc/machine-id"' \
  --customize-hook="printf 'deb %s $release main\ndeb %s $release-updates main\ndeb %s $release-security main\n' '$mirror' '$mirror' '$security' > \"\$1/etc/apt/sources.list\"" \
  "$release" "$work/rootfs" "$mirror"

tar --xattrs --xattrs-include='*' --numeric-owner -C "$work" -czf "$work/rootfs.tar.gz" ./rootfs
rm -rf "$work/rootfs"
cp "$here/box/lxc-config" "$work/lxc-config"
printf '{"provider": "lxc", "version": "1.0.0", "built-on": "%s"}\n' "$(date -u +%FT%TZ)" > "$work/metadata.json"
tar -C "$work" -cf "$out" rootfs.tar.gz lxc-config metadata.json
echo "box written: $out"

#!/usr/bin/env bash
# The image's base tree: Debian trixie arm64 from packages.txt (mmdebstrap, arm64 through qemu-user binfmt), the
# citybook user, and /opt/citybook/venv with the pinned dependencies of pyproject.toml (pyscard compiled for arm64
# inside the tree, its compilers purged afterwards). Everything here is slow under emulation and changes rarely:
# build.sh caches the result keyed by a hash of this file, the package lists, the mirror and the dependencies.
#
# usage: base.sh TARGET_DIR REQUIREMENTS_FILE     (TARGET_DIR must not exist, or be empty)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

: "${CITYBOOK_MIRROR:=http://deb.debian.org/debian}"
: "${CITYBOOK_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"
SUITE=trixie
COMPONENTS="main non-free-firmware"
CITYBOOK_UID=990   # fixed: the FAT partition's fstab line names its group by number

packages() { sed -e 's/#.*//' "$1" | tr -s ' \t\n' ' ' | sed -e 's/^ //; s/ $//'; }

say() { printf '[image base] %s\n' "$*" >&2; }

# A clean environment for everything run inside the tree: no pip settings, proxies or locales of the host.
in_tree() { chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

if [[ ${1:-} == --customize ]]; then
  # Inside mmdebstrap's customize hook: /proc, /dev and resolv.conf are set up in the tree.
  target=$2
  requirements=$3
  say "the citybook user (uid $CITYBOOK_UID, no password, no shell)"
  in_tree groupadd --system --gid "$CITYBOOK_UID" citybook
  in_tree useradd --system --uid "$CITYBOOK_UID" --gid citybook --groups dialout,video,audio,input,render \
    --home-dir /var/lib/citybook --no-create-home --shell /usr/sbin/nologin citybook

  # systemd-resolved made /etc/resolv.conf a link into /run: the host's resolver for the downloads, then back.
  resolv_link=$(readlink "$target/etc/resolv.conf" || true)
  rm -f "$target/etc/resolv.conf"
  cat /etc/resolv.conf > "$target/etc/resolv.conf"

  say "build tools for pyscard: $(packages "$here/build-packages.txt")"
  in_tree apt-get install -y -q --no-install-recommends $(packages "$here/build-packages.txt") >/dev/null

  say "the venv in /opt/citybook/venv (pip under emulation; pyscard compiles)"
  install -m 0644 "$requirements" "$target/tmp/requirements.txt"
  # Debian's python3-pygame (2.6.1, the pin) is seen through the system site-packages: its SDL has KMS/DRM.
  in_tree python3 -m venv --system-site-packages /opt/citybook/venv
  in_tree /opt/citybook/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt
  in_tree /opt/citybook/venv/bin/python -c 'import pygame, smartcard.scard, av, cryptography' >/dev/null
  rm -f "$target/tmp/requirements.txt"

  say "purging the build tools"
  in_tree apt-get purge -y -q --autoremove $(packages "$here/build-packages.txt") >/dev/null
  rm -rf "$target/root/.cache"
  rm -f "$target/etc/resolv.conf"
  ln -s "${resolv_link:-../run/systemd/resolve/stub-resolv.conf}" "$target/etc/resolv.conf"
  exit 0
fi

target=$1
requirements=$2
say "mmdebstrap $SUITE arm64 into $target (under emulation: several minutes)"
mmdebstrap --mode=root --variant=minbase --architectures=arm64 \
  --include="$(packages "$here/packages.txt" | tr ' ' ',')" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --aptopt='Acquire::Languages "none"' \
  --aptopt='APT::Install-Recommends "false"' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools"; printf "virtio_pci\nvirtio_blk\n" >> "$1/etc/initramfs-tools/modules"' \
  --customize-hook="\"$here/base.sh\" --customize \"\$1\" \"$requirements\"" \
  --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*.bin' \
  "$SUITE" "$target" \
  "deb $CITYBOOK_MIRROR $SUITE $COMPONENTS" \
  "deb $CITYBOOK_MIRROR $SUITE-updates $COMPONENTS" \
  "deb $CITYBOOK_SECURITY_MIRROR $SUITE-security $COMPONENTS"
say "base tree done: $(du -sh "$target" | cut -f1)"

#!/usr/bin/env bash
# The image's Debian tree: trixie arm64 from packages.txt (mmdebstrap, arm64 through qemu-user binfmt), the Pi's
# boot files made by raspi-firmware's hook with the image's settings, the citybook user, and the build tools of
# build-packages.txt (venv.sh compiles pyscard with them, then removes them). Slow under emulation and rarely
# changed: build.sh caches the tree, keyed by a hash of this file, the package lists, the hook's settings and the
# mirror.
#
# usage: base.sh TARGET_DIR      (TARGET_DIR must not exist, or be empty)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

: "${CITYBOOK_MIRROR:=http://deb.debian.org/debian}"
: "${CITYBOOK_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"
SUITE=trixie
COMPONENTS="main non-free-firmware"
CITYBOOK_UID=900   # fixed (below Debian's system ids, which count down from 999): fstab names it by number

packages() { sed -e 's/#.*//' "$1" | tr -s ' \t\n' ' ' | sed -e 's/^ //; s/ $//'; }

say() { printf '[image base] %s\n' "$*" >&2; }

# A clean environment for everything run inside the tree: no pip settings, proxies or locales of the host.
in_tree() { chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

if [[ ${1:-} == --customize ]]; then
  # Inside mmdebstrap's customize hook: /proc, /dev and resolv.conf are set up in the tree.
  target=$2
  say "the citybook user (uid $CITYBOOK_UID, no password, no shell)"
  in_tree groupadd --system --gid "$CITYBOOK_UID" citybook
  groups=$(for g in dialout video render audio input; do grep -q "^$g:" "$target/etc/group" && echo "$g"; done | paste -sd,)
  in_tree useradd --system --uid "$CITYBOOK_UID" --gid citybook --groups "$groups" \
    --home-dir /var/lib/citybook --no-create-home --shell /usr/sbin/nologin citybook

  # systemd-resolved made /etc/resolv.conf a link into /run: the host's resolver for the downloads, then back.
  resolv_link=$(readlink "$target/etc/resolv.conf" || true)
  rm -f "$target/etc/resolv.conf"
  cat /etc/resolv.conf > "$target/etc/resolv.conf"

  say "build tools for pyscard, kept for venv.sh, which removes them: $(packages "$here/build-packages.txt")"
  dpkg-query --admindir="$target/var/lib/dpkg" -W -f='${Package}\n' | sort > "$target/tmp/before"
  in_tree apt-get install -y -q --no-install-recommends $(packages "$here/build-packages.txt") >/dev/null
  dpkg-query --admindir="$target/var/lib/dpkg" -W -f='${Package}\n' | sort > "$target/tmp/after"
  install -d "$target/var/lib/citybook-image"
  comm -13 "$target/tmp/before" "$target/tmp/after" > "$target/var/lib/citybook-image/build-only-packages"
  rm -f "$target/tmp/before" "$target/tmp/after"

  say "raspi-firmware's kernel hook with the image's settings (config.txt, cmdline.txt)"
  install -m 0644 "$here/rootfs/etc/default/raspi-firmware" "$here/rootfs/etc/default/raspi-extra-cmdline" \
    "$target/etc/default/"
  in_tree env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware

  rm -f "$target/etc/resolv.conf"
  ln -s "${resolv_link:-../run/systemd/resolve/stub-resolv.conf}" "$target/etc/resolv.conf"
  exit 0
fi

target=$1
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
  --customize-hook="\"$here/base.sh\" --customize \"\$1\"" \
  --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"*.bin' \
  "$SUITE" "$target" \
  "deb $CITYBOOK_MIRROR $SUITE $COMPONENTS" \
  "deb $CITYBOOK_MIRROR $SUITE-updates $COMPONENTS" \
  "deb $CITYBOOK_SECURITY_MIRROR $SUITE-security $COMPONENTS"
say "base tree done: $(du -sh "$target" | cut -f1)"

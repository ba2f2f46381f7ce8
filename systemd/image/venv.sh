#!/usr/bin/env bash
# The image's Python layer on a copy of base.sh's tree: /opt/citybook/venv with the pinned dependencies of
# pyproject.toml, pip running inside the arm64 tree under qemu-user (pyscard compiles there), then the build tools
# base.sh left for it are purged. Debian's python3-pygame (2.6.1, the pin) is seen through the system
# site-packages: its SDL has the KMS/DRM video driver, the PyPI wheel's SDL has not. build.sh caches the result,
# keyed by the Debian tree's key and the requirements.
#
# usage: venv.sh TREE REQUIREMENTS_FILE
set -euo pipefail
target=$1
requirements=$2
say() { printf '[image venv] %s\n' "$*" >&2; }
in_tree() { chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

# pip downloads: the host's resolver for a moment (the tree's resolv.conf points into /run).
resolv_link=$(readlink "$target/etc/resolv.conf" || true)
rm -f "$target/etc/resolv.conf"
cat /etc/resolv.conf > "$target/etc/resolv.conf"

say "/opt/citybook/venv: $(grep -c . "$requirements") pinned packages (pip under emulation; pyscard compiles)"
install -m 0644 "$requirements" "$target/tmp/requirements.txt"
# The host's CA bundle for the downloads: it holds whatever CA this network's TLS is signed by.
install -m 0644 "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$target/tmp/host-ca.crt"
in_tree python3 -m venv --system-site-packages /opt/citybook/venv
in_tree /opt/citybook/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check --no-warn-script-location \
  --cert /tmp/host-ca.crt -r /tmp/requirements.txt
in_tree /opt/citybook/venv/bin/python -c 'import pygame, smartcard.scard, av, cryptography, serial, paho.mqtt' \
  >/dev/null
rm -f "$target/tmp/requirements.txt" "$target/tmp/host-ca.crt"

say "purging the build tools: $(paste -sd' ' "$target/var/lib/citybook-image/build-only-packages")"
in_tree dpkg --purge $(cat "$target/var/lib/citybook-image/build-only-packages") >/dev/null
rm -rf "$target/root/.cache"
rm -f "$target/etc/resolv.conf"
ln -s "${resolv_link:-../run/systemd/resolve/stub-resolv.conf}" "$target/etc/resolv.conf"

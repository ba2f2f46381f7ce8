#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a Debian/Ubuntu machine: apt packages (when root or
# passwordless sudo is available), a virtualenv in .venv, and the pinned Python packages. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc make   # the virtualenv, and building pyscard
  swig libpcsclite-dev pcscd                  # pyscard builds from source; the PC/SC daemon
  vsmartcard-vpcd                             # the virtual smart-card reader driver for tests
  mosquitto mosquitto-clients openssl         # the MQTT broker the fleet sync tests run, their test CA
  socat systemd fonts-noto-cjk                # serial debugging, systemd-analyze, CJK glyphs
  xvfb                                        # a real X display for the demo window test and `xvfb-run make demo`
  ffmpeg                                      # scripts/make-demo-content.sh encodes the demo video clips
  postgresql                                  # the gateway's shared journal: its tests start their own server
  chromium chromium-driver                    # the operators' console's browser tests (headless, via Selenium)
)
# Only for the SD image (`make image`, the boot test; `bootstrap.sh --image`): a laptop's `make test` goes without.
IMAGE_APT_PACKAGES=(
  mmdebstrap arch-test                        # the arm64 Debian tree
  qemu-user-static binfmt-support             # arm64 programs (dpkg, pip, pyscard's compiler) run under emulation
  dosfstools mtools e2fsprogs fdisk           # mkfs.vfat + mcopy, mkfs.ext4 -d, sfdisk: no loop devices, no mounts
  bmap-tools xz-utils                         # the .bmap and .img.xz
  qemu-system-arm ipxe-qemu                   # the boot test: qemu-system-aarch64 -M virt
)
if [[ ${1:-} == --image || ${CITYBOOK_IMAGE_TOOLS:-} == 1 ]]; then
  APT_PACKAGES+=("${IMAGE_APT_PACKAGES[@]}")
fi

say() { printf '[bootstrap] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else SUDO=(none); fi
  if [[ ${SUDO[0]:-} == none ]]; then
    say "missing apt packages: ${missing[*]}"
    say "not root and no passwordless sudo: install them yourself with"
    say "  sudo apt-get install ${missing[*]}"
  else
    say "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "$PYTHON is $("$PYTHON" --version 2>&1); Python 3.11 or newer is needed"
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  say "creating the virtualenv in .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  say "installing Python packages (pyscard compiles; the first time takes a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

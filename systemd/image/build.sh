#!/usr/bin/env bash
# `make image`: the bookcase's SD card image for Raspberry Pi 4 and 3, from Debian packages and this checkout.
#
#   build/image/citybook-<version>-arm64.img        raw image: MBR, 1 FAT boot, 2 ext4 root (read-only), 3 ext4 data
#   build/image/citybook-<version>-arm64.img.xz     the same, compressed (flash it with bmaptool and the .bmap)
#   build/image/citybook-<version>-arm64.bmap
#   build/image/citybook-<version>-arm64.manifest   every Debian package and Python distribution, exact versions
#
# No loop devices and no mounts of the image: the root is a directory tree (base.sh, cached), the file systems are
# made from directories (mkfs.ext4 -d, mkfs.vfat + mcopy) and put together with sfdisk and dd.
# Needs root (mmdebstrap's root mode, chroot into the arm64 tree through qemu-user binfmt).
#
# usage: build.sh [--no-xz] [--out DIR]       env: CITYBOOK_IMAGE_CACHE (default /var/cache/citybook-image)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/build/image
xz=1
while (($#)); do
  case $1 in
    --no-xz) xz=0 ;;
    --out) out=$(realpath -m "$2"); shift ;;
    *) echo "usage: $0 [--no-xz] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
cache=${CITYBOOK_IMAGE_CACHE:-/var/cache/citybook-image}
export CITYBOOK_MIRROR=${CITYBOOK_MIRROR:-http://deb.debian.org/debian}
export CITYBOOK_SECURITY_MIRROR=${CITYBOOK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

BOOT_MIB=256            # firmware, kernel, initrd, config.txt, cmdline.txt, the operator's files
DATA_MIB=128            # grown to the end of the card on first boot
ALIGN_MIB=4
DISK_ID=0xc17eb00c      # MBR disk identifier

t0=$(date +%s)
say() { printf '[image %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "the image build needs root (mmdebstrap --mode=root, chroot into the arm64 tree)"
for tool in mmdebstrap arch-test mkfs.ext4 mkfs.vfat mcopy sfdisk bmaptool xz systemctl; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/bootstrap.sh --image"
done
[[ -x /usr/libexec/qemu-binfmt/aarch64-binfmt-P || -x /usr/bin/qemu-aarch64-static ]] \
  || die "qemu-user-static is missing: run scripts/bootstrap.sh --image"

# arm64 programs run through qemu-user: register the binfmt handler (needs binfmt_misc, mounted here if missing).
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
fi
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || die "cannot register qemu-aarch64 with binfmt_misc"

version=$(python3 -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$repo/pyproject.toml")
name=citybook-$version-arm64
mkdir -p "$out" "$cache"
work=$out/work
# A tree left by an interrupted mmdebstrap may still have /proc or /dev mounted: never delete through them.
unmount_below() { awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l; }
unmount_below "$work"
rm -rf "$work"
mkdir -p "$work"

# --- the Debian tree and the venv, each cached ------------------------------------------------------------------
python3 -c 'import tomllib, sys; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
  "$repo/pyproject.toml" > "$work/requirements.txt"
debian_key=$( { cat "$here/base.sh" "$here/packages.txt" "$here/build-packages.txt" \
                  "$here/rootfs/etc/default/raspi-firmware" "$here/rootfs/etc/default/raspi-extra-cmdline";
                echo "$CITYBOOK_MIRROR $CITYBOOK_SECURITY_MIRROR"; } | sha256sum | cut -c1-16)
venv_key=$( { echo "$debian_key"; cat "$here/venv.sh" "$work/requirements.txt"; } | sha256sum | cut -c1-16)

# cached NAME KIND: is $cache/NAME complete? Else an interrupted build's leftovers go (never through a mount).
cached() {
  if [[ -f $cache/$1/.complete ]]; then touch "$cache/$1/.complete"; say "$2: cached ($cache/$1)"; return 0; fi
  unmount_below "$cache/$1.tmp"
  rm -rf "$cache/$1.tmp"
  return 1
}
# keep KIND: the two newest trees of a kind stay; older ones belong to package lists no longer in use.
keep() { ls -1dt "$cache/$1"-* 2>/dev/null | grep -v '\.tmp$' | tail -n +3 | xargs -r rm -rf; }

debian=debian-$debian_key
if ! cached "$debian" "Debian tree"; then
  say "Debian tree: building $cache/$debian (trixie arm64 under emulation: the slow part)"
  "$here/base.sh" "$cache/$debian.tmp/tree"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$cache/$debian.tmp/.complete"
  mv "$cache/$debian.tmp" "$cache/$debian"
  keep debian
fi
base=venv-$venv_key
if ! cached "$base" "venv layer"; then
  say "venv layer: building $cache/$base"
  mkdir -p "$cache/$base.tmp"
  cp -a --reflink=auto "$cache/$debian/tree" "$cache/$base.tmp/tree"
  "$here/venv.sh" "$cache/$base.tmp/tree" "$work/requirements.txt"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$cache/$base.tmp/.complete"
  mv "$cache/$base.tmp" "$cache/$base"
  keep venv
fi
base=$cache/$base
key="$debian_key/$venv_key"
root=$work/root
say "copying the tree"
cp -a --reflink=auto "$base/tree" "$root"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# --- our wheel, the units, the overlay ---------------------------------------------------------------------------
say "building the citybook-kiosk wheel"
wheel_src=$work/src
mkdir -p "$wheel_src"
git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && xargs -0 cp --parents -t "$wheel_src" 2>/dev/null || true)
"$repo/.venv/bin/python" -m pip wheel -q --no-deps -w "$work/wheel" "$wheel_src"
cp "$work"/wheel/*.whl "$root/tmp/"
say "installing it into /opt/citybook/venv (under emulation)"
in_root /opt/citybook/venv/bin/pip install -q --no-deps --no-index --no-cache-dir --disable-pip-version-check \
  /tmp/"$(basename "$work"/wheel/*.whl)"
rm -f "$root"/tmp/*.whl
in_root /opt/citybook/venv/bin/kiosk --help >/dev/null || die "the kiosk does not start inside the image"
install -d "$root/opt/citybook/docs"
install -m 0644 "$repo/README.md" "$root/opt/citybook/README.md"
install -m 0644 "$repo/docs/operators.md" "$repo/config/citybook.example.toml" "$root/opt/citybook/docs/"

say "units and system configuration"
cp -a "$here/rootfs/." "$root/"
for unit in citybook-kiosk.service citybook-setup.service citybook-growdata.service citybook-logcopy.service \
            citybook-logcopy.timer citybook-sim.service citybook-bootcheck.service; do
  install -m 0644 "$repo/systemd/$unit" "$root/usr/lib/systemd/system/$unit"
done
systemctl --root="$root" --quiet enable citybook-kiosk.service citybook-setup.service citybook-growdata.service \
  citybook-logcopy.timer systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
# Nothing may write to the read-only root, prompt on the screen, or update the system behind our back.
systemctl --root="$root" --quiet mask getty.target systemd-firstboot.service apt-daily.timer \
  apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service
rm -f "$root"/etc/ssh/ssh_host_*                       # made on each card by citybook-setup, never shared
install -d "$root/etc/systemd/system-generators"        # no sshd on AF_UNIX/AF_VSOCK sockets either
ln -sfn /dev/null "$root/etc/systemd/system-generators/systemd-ssh-generator"
: > "$root/etc/machine-id"                             # empty: a new machine id each boot (read-only root)
ln -sfn /etc/machine-id "$root/var/lib/dbus/machine-id"
ln -sfn /var/lib/citybook/secrets "$root/etc/citybook" # the config names secrets as /etc/citybook/<file>
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
ln -sfn /usr/share/zoneinfo/Asia/Shanghai "$root/etc/localtime"
echo Asia/Shanghai > "$root/etc/timezone"
install -d "$root/data" "$root/var/lib/citybook"
passwd_root=$(awk -F: '$1 == "root" {print $2}' "$root/etc/shadow")
[[ $passwd_root == "*" || $passwd_root == "!"* ]] || die "root has a password in the base tree"

grep -q 'root=LABEL=citybook-root' "$root/boot/firmware/cmdline.txt" || die "cmdline.txt lacks the root label"

say "manifest"
manifest=$out/$name.manifest
{
  echo "# $name, built $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "# trees $key (Debian, venv), built $(cat "$cache/$debian/.complete"), $(cat "$base/.complete"), from $CITYBOOK_MIRROR trixie, trixie-updates and $CITYBOOK_SECURITY_MIRROR trixie-security"
  echo "# Debian packages (dpkg-query)"
  in_root dpkg-query -W -f='${Package}=${Version}\n' | sort
  echo "# Python distributions in /opt/citybook/venv (pip freeze; the system's python3-pygame is listed above)"
  in_root /opt/citybook/venv/bin/pip freeze --local --disable-pip-version-check
} > "$manifest.tmp"
mv "$manifest.tmp" "$manifest"
cp "$manifest" "$root/opt/citybook/manifest.txt"

# --- the three file systems --------------------------------------------------------------------------------------
uid_of() { awk -F: -v u="$1" '$1 == u {print $3}' "$root/etc/passwd"; }
citybook_uid=$(uid_of citybook)
timesync_uid=$(uid_of systemd-timesync)
[[ -n $citybook_uid && -n $timesync_uid ]] || die "the citybook or systemd-timesync user is missing"

say "boot partition (FAT, ${BOOT_MIB} MiB)"
mkdir -p "$root/boot/firmware/secrets"
cat > "$root/boot/firmware/secrets/README.txt" <<'EOF'
Put the bookcase's secret files here (certificate key, MQTT password file, e-card key).
On its next boot the bookcase moves them to /etc/citybook on its data partition and removes them from this card.
EOF
boot_img=$work/boot.vfat
rm -f "$boot_img"
mkfs.vfat -F 32 -n CITYBOOK -i 0c17eb00 -C "$boot_img" $(( BOOT_MIB * 1024 )) >/dev/null
(cd "$root/boot/firmware" && mcopy -s -p -m -i "$boot_img" ./* ::/)

say "data partition (ext4, ${DATA_MIB} MiB, grown on first boot)"
data=$work/data
install -d -m 0755 -o 0 -g 0 "$data" "$data/system"
install -d -m 0700 -o "$citybook_uid" -g "$citybook_uid" "$data/citybook" "$data/citybook/secrets"
install -d -m 0755 -o "$timesync_uid" -g "$timesync_uid" "$data/system/timesync"
install -d -m 0750 "$data/logs"
data_img=$work/data.ext4
rm -f "$data_img"
truncate -s "${DATA_MIB}M" "$data_img"
mkfs.ext4 -q -F -L citybook-data -b 4096 -E resize=536870912 -d "$data" "$data_img"

say "root partition (ext4, read-only at run time)"
find "$root/boot/firmware" -mindepth 1 -delete
rm -rf "$root"/tmp/* "$root"/var/tmp/* "$root"/var/log/* "$root"/var/cache/apt/*
root_kib=$(du -sk "$root" | cut -f1)
root_mib=$(( (root_kib * 115 / 100 / 1024 + 64 + ALIGN_MIB - 1) / ALIGN_MIB * ALIGN_MIB ))
root_img=$work/root.ext4
rm -f "$root_img"
truncate -s "${root_mib}M" "$root_img"
mkfs.ext4 -q -F -L citybook-root -b 4096 -O ^has_journal -m 0 -d "$root" "$root_img"

say "partition table and image"
img=$out/$name.img
boot_start=$ALIGN_MIB
root_start=$(( boot_start + BOOT_MIB ))
data_start=$(( root_start + root_mib ))
total=$(( data_start + DATA_MIB ))
rm -f "$img" "$img.xz" "$out/$name.bmap"
truncate -s "${total}M" "$img"
sfdisk -q "$img" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors

start=$(( boot_start * 2048 )), size=$(( BOOT_MIB * 2048 )), type=c, bootable
start=$(( root_start * 2048 )), size=$(( root_mib * 2048 )), type=83
start=$(( data_start * 2048 )), size=$(( DATA_MIB * 2048 )), type=83
EOF
dd if="$boot_img" of="$img" bs=1M seek="$boot_start" conv=notrunc,sparse status=none
dd if="$root_img" of="$img" bs=1M seek="$root_start" conv=notrunc,sparse status=none
dd if="$data_img" of="$img" bs=1M seek="$data_start" conv=notrunc,sparse status=none
rm -f "$boot_img" "$root_img" "$data_img"
bmaptool -q create -o "$out/$name.bmap" "$img"

if (( xz )); then
  say "compressing (xz)"
  xz -T0 -3 -k -f "$img"          # -3: a third of -6's time for a few per cent more
fi
unmount_below "$work"
rm -rf "$work"
say "done: $img ($total MiB$( ((xz)) && echo ", xz $(( $(stat -c %s "$img.xz") / 1048576 )) MiB"))"

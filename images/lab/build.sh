#!/usr/bin/env bash
# make lab-image: the lab's Debian 12 qcow2 image, the local counterpart of the Azure images.
#
#   images/lab/build.sh          (as root; LAB_CACHE=/var/tmp/hainit-lab/cache by default)
#
# Every package both roles need (images/lab/packages.txt), the static hainit binary at
# /usr/local/sbin/hainit, the first-boot unit the Azure images use (images/systemd/), the WordPress
# tarball pinned in /usr/share/hainit/defaults.yaml, and the lab's guest glue (images/lab/guest/).
# Direct kernel boot of Debian's own kernel with a tiny busybox initramfs (no bootloader, no
# update-initramfs: both cost minutes under software emulation).
#
# Cached in three layers, each rebuilt only when its inputs change (their sha256 is the key):
#   kernel/<version>/   Debian's linux-image package, unpacked, plus the initramfs
#   rootfs/<key>/       debootstrap + packages.txt + kernel modules + static guest config
#   images/<key>/       base.qcow2 + vmlinuz + initrd.gz + image.json; images/current -> newest
# LAB_REFRESH=1 rebuilds all three (e.g. to pick up security updates from the mirror).
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."

CACHE=${LAB_CACHE:-/var/tmp/hainit-lab/cache}
HAINIT_BIN=${HAINIT_BIN:-target/x86_64-unknown-linux-musl/release/hainit}
WP_SCRIPT=${WORDPRESS_TARBALL_SCRIPT:-scripts/wordpress-tarball.sh}
MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
IMAGE_SIZE=${LAB_IMAGE_SIZE:-4G}
REFRESH=${LAB_REFRESH:-0}

log() { printf 'lab-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sha() { sha256sum | cut -c1-16; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and chroot)"
for tool in depmod debootstrap qemu-img mkfs.ext4 busybox cpio gzip xz dpkg-deb apt-get flock ssh-keygen; do
  command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs the lab's host packages)"
done
[ -x "$HAINIT_BIN" ] || die "$HAINIT_BIN not found: run make build"
[ -x "$WP_SCRIPT" ] || die "$WP_SCRIPT not found (it builds the WordPress tarball)"
file "$HAINIT_BIN" | grep -q 'statically linked' || die "$HAINIT_BIN is not statically linked"

mkdir -p "$CACHE"/{kernel,rootfs,images,debcache}
exec 9>"$CACHE/.build.lock"
flock -w 3600 9 || die "another image build holds $CACHE/.build.lock"
T0=$(now)
declare -A secs=()

# ---- inputs ----------------------------------------------------------------------------------
packages=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' images/lab/packages.txt | grep -v '^$' | sort -u)
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || die "apt-cache knows no linux-image-amd64 (apt-get update?)"
kver=${kpkg#linux-image-}
kdeb_version=$(apt-cache policy "$kpkg" | awk '/Candidate:/ { print $2 }')
[ -f "$CACHE/id_lab" ] || ssh-keygen -q -t ed25519 -N '' -C hainit-lab -f "$CACHE/id_lab"

# The WordPress tarball is reproducible from the installed Debian packages: key it on them.
wp_key=$( { dpkg-query -W wordpress 'wordpress-theme-*' 2>/dev/null; sha256sum "$WP_SCRIPT"; } | sha)
if [ ! -s "$CACHE/wordpress-$wp_key.sha256" ]; then
  rm -f "$CACHE"/wordpress-*.tar.gz "$CACHE"/wordpress-*.sha256
  "$WP_SCRIPT" "$CACHE/wordpress-$wp_key.tar.gz" >"$CACHE/wordpress-$wp_key.sha256.new"
  mv -f "$CACHE/wordpress-$wp_key.sha256.new" "$CACHE/wordpress-$wp_key.sha256"
fi
wp_tarball=$CACHE/wordpress-$wp_key.tar.gz
wp_sha=$(cat "$CACHE/wordpress-$wp_key.sha256")
echo "$wp_sha  $wp_tarball" | sha256sum -c --quiet || die "$wp_tarball does not match its sha256"

kdir=$CACHE/kernel/$kver-$kdeb_version
rootfs_key=$(printf '%s\n' "$packages" "$MIRROR" "$kver $kdeb_version" "$(cat "$CACHE/id_lab.pub")" \
  "$(sed -n '/^# ---- rootfs/,/^# ---- end rootfs/p' "$self")" | sha)
rootfs=$CACHE/rootfs/$rootfs_key
image_key=$( {
  echo "$rootfs_key $IMAGE_SIZE $wp_sha"
  sha256sum "$HAINIT_BIN" images/systemd/hainit.service images/systemd/hainit-boot "$self" | cut -d' ' -f1
  (cd images/lab/guest && find . -type f -print0 | sort -z | xargs -0 sha256sum)
} | sha)
out=$CACHE/images/$image_key

# For the lab's report: was the image of this invocation cached or built, and how long it took.
last_run() { printf '{"key": "%s", "cached": %s, "seconds": %s, "at": %s}\n' "$image_key" "$1" "$2" "$(date +%s)" \
  >"$CACHE/images/last-run.json"; }
if [ "$REFRESH" != 1 ] && [ -f "$out/image.json" ]; then
  ln -sfn "$image_key" "$CACHE/images/current.new" && mv -T "$CACHE/images/current.new" "$CACHE/images/current"
  last_run true "$(since "$T0")"
  log "up to date: $out (key $image_key, inputs unchanged; built $(sed -n 's/.*"built_at": *"\([^"]*\)".*/\1/p' "$out/image.json"))"
  exit 0
fi
[ "$REFRESH" = 1 ] && rm -rf "$kdir" "$rootfs"

cleanup() {
  for m in var/cache/apt/archives dev/pts dev sys proc; do
    for r in "${rootfs:-}.new" "${stage:-}"; do
      [ -n "$r" ] && mountpoint -q "$r/$m" 2>/dev/null && umount -l "$r/$m"
    done
  done
  rm -rf "${rootfs:-/nonexistent}.new" "${stage:-}" "${out:-/nonexistent}.new" "${kdir:-/nonexistent}.new"
}
trap cleanup EXIT

# ---- kernel: Debian's package, unpacked (never installed on the host) + busybox initramfs -----
t=$(now)
if [ ! -f "$kdir/initrd.gz" ]; then
  log "kernel $kpkg $kdeb_version"
  rm -rf "$kdir.new" && mkdir -p "$kdir.new" && cd "$kdir.new"
  apt-get download -q "$kpkg=$kdeb_version" 2>&1 | grep -v -e unsandboxed -e '^Get:' >&2 || true
  dpkg-deb -x "$kpkg"_*.deb root && rm -f "$kpkg"_*.deb
  depmod -b root "$kver"
  cp "root/boot/vmlinuz-$kver" vmlinuz
  # initramfs: just enough to mount an ext4 root on virtio-blk and switch_root (crc32c: ext4 needs it)
  ini=$(mktemp -d) && mkdir -p "$ini"/{bin,proc,sys,dev,newroot,lib/modules}
  cp "$(command -v busybox)" "$ini/bin/"
  md=root/lib/modules/$kver
  order=()
  add_module() {
    local m=$1 d deps
    for d in "${order[@]}"; do [ "$d" = "$m" ] && return; done
    grep -q "^$m:" "$md/modules.dep" || die "$m is not in $kpkg"
    read -r -a deps <<<"$(grep "^$m:" "$md/modules.dep" | cut -d: -f2)"
    for d in "${deps[@]}"; do add_module "$d"; done
    order+=("$m")
  }
  for m in kernel/crypto/crc32c_generic.ko kernel/drivers/virtio/virtio_pci.ko \
    kernel/drivers/block/virtio_blk.ko kernel/fs/ext4/ext4.ko; do add_module "$m"; done
  for m in "${order[@]}"; do cp "$md/$m" "$ini/lib/modules/" && basename "$m" >>"$ini/modules.order"; done
  cat >"$ini/init" <<'EOS'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "INITRAMFS: cannot mount /dev/vda"; exec sh; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOS
  chmod +x "$ini/init"
  (cd "$ini" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$kdir.new/initrd.gz")
  rm -rf "$ini"
  cd - >/dev/null
  find "$CACHE/kernel" -mindepth 1 -maxdepth 1 ! -name "${kdir##*/}.new" -exec rm -rf {} +
  mv -T "$kdir.new" "$kdir"
fi
secs[kernel]=$(since "$t")

# ---- rootfs (everything in this section is part of the rootfs key) -----------------------------
t=$(now)
if [ ! -f "$rootfs/.complete" ]; then
  log "rootfs $rootfs_key: debootstrap + $(echo "$packages" | wc -l) packages"
  rm -rf "$rootfs.new"
  debootstrap --variant=minbase --cache-dir="$CACHE/debcache" --include=systemd-sysv,udev,kmod,iproute2 \
    bookworm "$rootfs.new" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $CACHE/debootstrap.log"
  secs[debootstrap]=$(since "$t")
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "${MIRROR%/debian}/debian" >"$rootfs.new/etc/apt/sources.list"
  # Package scripts must not start daemons inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs.new/usr/sbin/policy-rc.d" && chmod +x "$rootfs.new/usr/sbin/policy-rc.d"
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$rootfs.new/$m"; done
  mount --bind "$CACHE/debcache" "$rootfs.new/var/cache/apt/archives"
  DEBIAN_FRONTEND=noninteractive LC_ALL=C chroot "$rootfs.new" sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends ${packages//$'\n'/ }" \
    >"$CACHE/apt.log" 2>&1 || die "apt-get install in the chroot failed, see $CACHE/apt.log"
  for m in var/cache/apt/archives dev/pts dev sys proc; do umount "$rootfs.new/$m"; done
  rm -f "$rootfs.new/usr/sbin/policy-rc.d"
  # Kernel modules (drbd.ko is in Debian's kernel: DRBD 8.4), minus what a VM never needs.
  mkdir -p "$rootfs.new/lib/modules" && cp -a "$kdir/root/lib/modules/$kver" "$rootfs.new/lib/modules/"
  (cd "$rootfs.new/lib/modules/$kver/kernel" && rm -rf sound drivers/gpu drivers/media drivers/infiniband \
    drivers/usb drivers/iio drivers/staging drivers/hwmon drivers/hid drivers/bluetooth drivers/isdn \
    drivers/net/wireless drivers/net/ethernet drivers/net/usb drivers/net/can drivers/mtd drivers/input \
    net/wireless net/mac80211 net/bluetooth)
  chroot "$rootfs.new" depmod "$kver"
  # Static guest configuration.
  echo '/dev/vda / ext4 defaults,noatime 0 1' >"$rootfs.new/etc/fstab"
  echo lab >"$rootfs.new/etc/hostname"
  install -d -m 0700 "$rootfs.new/root/.ssh"
  install -m 0600 "$CACHE/id_lab.pub" "$rootfs.new/root/.ssh/authorized_keys"
  mkdir -p "$rootfs.new/etc/systemd/system/serial-getty@ttyS0.service.d" "$rootfs.new/var/log/journal"
  # shellcheck disable=SC2016 # $TERM is for systemd to expand
  printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %%I $TERM\n' \
    >"$rootfs.new/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
  echo 'kernel.printk = 3 4 1 3' >"$rootfs.new/etc/sysctl.d/10-lab-quiet.conf"
  # Timers that only burn emulated CPU. The cluster stack and MariaDB start disabled, as in a
  # minimal cloud image: hainit enables what its role needs (the lab then proves it does).
  for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    man-db.timer dpkg-db-backup.timer corosync.service pacemaker.service pcsd.service pcsd-ruby.service \
    mariadb.service drbd.service; do
    chroot "$rootfs.new" systemctl disable "$u" >/dev/null 2>&1 || true
  done
  rm -rf "$rootfs.new"/usr/share/doc/* "$rootfs.new"/usr/share/man/* "$rootfs.new"/var/lib/apt/lists/*_Packages
  touch "$rootfs.new/.complete"
  find "$CACHE/rootfs" -mindepth 1 -maxdepth 1 ! -name "$rootfs_key.new" -exec rm -rf {} +
  mv -T "$rootfs.new" "$rootfs"
fi
# ---- end rootfs
secs[rootfs]=$(since "$t")

# ---- image: rootfs + hainit + first-boot unit + WordPress + lab glue -> ext4 -> qcow2 ----------
t=$(now)
log "image $image_key"
stage=$CACHE/stage.$$
cp -a "$rootfs" "$stage" && rm -f "$stage/.complete"
install -D -m 0755 "$HAINIT_BIN" "$stage/usr/local/sbin/hainit"
install -D -m 0755 images/systemd/hainit-boot "$stage/usr/local/libexec/hainit-boot"
install -D -m 0644 images/systemd/hainit.service "$stage/etc/systemd/system/hainit.service"
# The lab's fence_azure_arm (images/lab/guest/usr/sbin) talks to the lab's emulated ARM; Debian's
# stays beside it, diverted, for the metadata Pacemaker and pcs read.
chroot "$stage" dpkg-divert --quiet --local --rename --divert /usr/sbin/fence_azure_arm.distrib \
  --add /usr/sbin/fence_azure_arm
(cd images/lab/guest && find . -type f | while read -r f; do
  mode=0644 && [ -x "$f" ] && mode=0755
  install -D -m "$mode" "$f" "$stage/${f#./}"
done)
install -D -m 0644 "$wp_tarball" "$stage/usr/share/hainit/wordpress.tar.gz"
printf '# Written by the image build (images/lab/build.sh)\nweb:\n  wordpress_tarball: /usr/share/hainit/wordpress.tar.gz\n  wordpress_sha256: "%s"\n' \
  "$wp_sha" >"$stage/usr/share/hainit/defaults.yaml"
chroot "$stage" systemctl enable hainit.service hainit-lab-guest.service >/dev/null 2>&1
# Web services start disabled too (hainit's web role enables them); no local consoles, no ha_logd.
chroot "$stage" systemctl disable nginx.service php8.2-fpm.service logd.service getty@tty1.service >/dev/null 2>&1
mkdir -p "$out.new"
mkfs.ext4 -q -F -L labroot -E lazy_itable_init=0,lazy_journal_init=0 -d "$stage" "$out.new/base.raw" "$IMAGE_SIZE"
rm -rf "$stage"
qemu-img convert -O qcow2 "$out.new/base.raw" "$out.new/base.qcow2" && rm -f "$out.new/base.raw"
cp "$kdir/vmlinuz" "$kdir/initrd.gz" "$out.new/"
secs[image]=$(since "$t")
secs[total]=$(since "$T0")
{
  printf '{\n  "key": "%s",\n  "built_at": "%s",\n' "$image_key" "$(date -u +%FT%TZ)"
  printf '  "kernel": "%s %s",\n  "rootfs_key": "%s",\n  "packages": %d,\n' \
    "$kpkg" "$kdeb_version" "$rootfs_key" "$(echo "$packages" | wc -l)"
  printf '  "hainit_sha256": "%s",\n  "wordpress_sha256": "%s",\n' "$(sha256sum "$HAINIT_BIN" | cut -d' ' -f1)" "$wp_sha"
  printf '  "qcow2_bytes": %d,\n  "seconds": {' "$(stat -c %s "$out.new/base.qcow2")"
  sep=""
  for k in "${!secs[@]}"; do printf '%s"%s": %s' "$sep" "$k" "${secs[$k]}"; sep=", "; done
  printf '}\n}\n'
} >"$out.new/image.json"
rm -rf "$out" && mv -T "$out.new" "$out"
ln -sfn "$image_key" "$CACHE/images/current.new" && mv -T "$CACHE/images/current.new" "$CACHE/images/current"
last_run false "${secs[total]}"
# Keep the newest two images (a lab still running may use the previous one as its backing file).
find "$CACHE/images" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- |
  xargs -r rm -rf
log "built $out in ${secs[total]} s (kernel ${secs[kernel]}, rootfs ${secs[rootfs]}, image ${secs[image]})"

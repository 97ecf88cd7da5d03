#!/usr/bin/env bash
# make azure-image: hainit's Debian 12 image for Azure, built here without Azure.
#
#   images/azure/build.sh        (as root) -> target/images/hainit-debian12.vhd + .sha256
#
# The layers of images/debian/layers.sh (debootstrap, every package of both roles, Debian's cloud
# kernel, hainit, its first-boot unit, the pinned WordPress tarball), then what Azure needs of an
# uploaded image (docs/azure-image.md):
#   - a fixed-size VHD whose virtual size is a whole number of MiB (qemu-img vpc, force_size);
#   - GPT: partition 15 an EFI system partition, partition 1 the ext4 root (last, so cloud-init's
#     growpart can grow it on a larger OS disk): a generation 2 (UEFI) VM boots it;
#   - the boot loader: GRUB built standalone (grub-mkstandalone) as EFI/BOOT/BOOTX64.EFI on a vfat
#     ESP made with mkfs.vfat and mtools; its built-in grub.cfg finds the root by its file system
#     UUID and boots /vmlinuz and /initrd.img (the symlinks Debian's kernel packages keep up to
#     date) with the root by PARTUUID and the serial console on ttyS0;
#   - cloud-init with the Azure datasource only (it reports ready to the platform), waagent for run
#     commands and the /dev/disk/azure links, systemd-networkd for DHCP on the Hyper-V NIC;
#   - no swap on the OS disk, no SSH host keys, an empty /etc/machine-id.
# No loop devices or mounts: mke2fs -d writes the root file system into its partition of the image
# file (-E offset=), mtools the ESP.
#
# Cached under $CACHE/azure/<key>/ (the key hashes every input); target/images/ gets hard links.
# HAINIT_IMAGE_REFRESH=1 rebuilds every layer (e.g. for the archive's security updates).
set -euo pipefail
self=$(readlink -f "$0")
LOG_NAME=azure-image
# shellcheck source=images/debian/layers.sh
. "$(dirname "$self")/../debian/layers.sh"

SIZE_MIB=${HAINIT_IMAGE_SIZE_MIB:-4096}
# Partition layout (MiB): the ESP from 1 to 64, the root from 64 to the end.
ESP_START_MIB=1
ROOT_START_MIB=64
NAME=hainit-debian12
OUT_DIR=${HAINIT_IMAGE_OUT:-$REPO/target/images}
CMDLINE_EXTRA="console=tty1 console=ttyS0,115200 earlyprintk=ttyS0,115200 net.ifnames=0"

if ! [[ $SIZE_MIB =~ ^[0-9]+$ ]] || ((SIZE_MIB < 2048)); then
  die "HAINIT_IMAGE_SIZE_MIB=$SIZE_MIB: a whole number of MiB, at least 2048"
fi

T0=$(now)
layers_init sgdisk mkfs.vfat mmd mcopy grub-mkstandalone
trap layers_cleanup EXIT
mkdir -p "$CACHE/azure"
layer_wordpress

KEY=$({
  echo "$ROOTFS_KEY $WP_SHA $SIZE_MIB $CMDLINE_EXTRA"
  dpkg-query -W grub-efi-amd64-bin mtools dosfstools e2fsprogs 2>/dev/null
  sha256sum "$HAINIT_BIN" "$REPO"/images/systemd/* "$self" "$LAYERS_SELF" | cut -d' ' -f1
  (cd "$REPO/images/azure/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
} | short_sha)
OUT=$CACHE/azure/$KEY

publish() {
  mkdir -p "$OUT_DIR"
  local f
  for f in "$NAME.vhd" "$NAME.vhd.sha256" image.json; do
    rm -f "$OUT_DIR/${f/image.json/$NAME.json}"
    ln "$OUT/$f" "$OUT_DIR/${f/image.json/$NAME.json}" 2>/dev/null ||
      cp --sparse=always "$OUT/$f" "$OUT_DIR/${f/image.json/$NAME.json}"
  done
  ln -sfn "$KEY" "$CACHE/azure/current.new" && mv -T "$CACHE/azure/current.new" "$CACHE/azure/current"
}

if [ "$REFRESH" != 1 ] && [ -f "$OUT/image.json" ]; then
  publish
  log "up to date: $OUT_DIR/$NAME.vhd (key $KEY, sha256 $(cut -d' ' -f1 "$OUT/$NAME.vhd.sha256"), inputs unchanged; $(since "$T0") s)"
  exit 0
fi

layer_rootfs

# ---- stage: the rootfs + hainit + Azure's configuration, generalized ---------------------------
t=$(now)
uuid() { cat /proc/sys/kernel/random/uuid; }
ROOT_PARTUUID=$(uuid)
ESP_PARTUUID=$(uuid)
FS_UUID=$(uuid)
stage=$CACHE/stage.$$
CLEANUP+=("$stage" "$OUT.new")
log "image $KEY: staging"
cp -a "$ROOTFS" "$stage" && rm -f "$stage/.complete"
stage_hainit "$stage"
(cd "$REPO/images/azure/rootfs" && find . -type f | while read -r f; do
  install -D -m 0644 "$f" "$stage/${f#./}"
done)

# waagent: cloud-init provisions and owns the resource disk; no swap anywhere.
conf=$stage/etc/waagent.conf
for kv in Provisioning.Agent=cloud-init ResourceDisk.Format=n ResourceDisk.EnableSwap=n; do
  grep -q "^${kv%%=*}=" "$conf" || die "$conf has no ${kv%%=*} line"
  sed -i "s/^${kv%%=*}=.*/$kv/" "$conf"
done
chroot "$stage" systemctl enable systemd-networkd.service >/dev/null 2>&1 || die "systemctl enable systemd-networkd failed"
for u in cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service \
  walinuxagent.service systemd-resolved.service ssh.service; do
  chroot "$stage" systemctl is-enabled --quiet "$u" || die "$u is not enabled in the image"
done
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$stage/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
printf '# hainit Debian 12 image (images/azure/build.sh)\nUUID=%s / ext4 defaults,noatime,discard 0 1\n' \
  "$FS_UUID" >"$stage/etc/fstab"
mkdir -p "$stage/var/log/journal"
# Generalized: every VM gets its own machine-id (systemd writes it at first boot; empty is not a
# "first boot" that would apply presets), host name, and SSH host keys (cloud-init makes them).
: >"$stage/etc/machine-id"
: >"$stage/etc/hostname"
rm -f "$stage/var/lib/dbus/machine-id" "$stage"/etc/ssh/ssh_host_*
rm -rf "$stage"/var/lib/apt/lists/* "$stage"/var/cache/apt/*.bin "$stage"/var/cache/apt/archives/*.deb "$stage"/var/lib/cloud/* "$stage"/tmp/* "$stage"/var/tmp/*
find "$stage/var/log" -type f \( -name '*.log' -o -name 'lastlog' -o -name 'wtmp' -o -name 'btmp' \) -delete
versions=$(versions_json "$stage")
kpkg=$(basename "$(readlink "$stage/vmlinuz")" | sed 's/^vmlinuz-/linux-image-/')
kernel="$kpkg $(dpkg-query --admindir="$stage/var/lib/dpkg" -W -f="\${Version}" "$kpkg")"
SECS[stage]=$(since "$t")

# ---- boot loader: standalone GRUB on a vfat ESP -----------------------------------------------
t=$(now)
mkdir -p "$OUT.new"
work=$OUT.new/work
mkdir -p "$work"
cat >"$work/grub.cfg" <<EOF
# hainit Debian 12 image (images/azure/build.sh): built into EFI/BOOT/BOOTX64.EFI
set timeout=0
insmod all_video
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --fs-uuid --set=root $FS_UUID
linux /vmlinuz root=PARTUUID=$ROOT_PARTUUID ro $CMDLINE_EXTRA
initrd /initrd.img
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" --locales= --fonts= --themes= \
  --modules="part_gpt ext2 search_fs_uuid serial terminal linux normal" \
  --install-modules="part_gpt ext2 fat search search_fs_uuid serial terminal linux normal echo test gzio configfile boot all_video efi_gop" \
  "boot/grub/grub.cfg=$work/grub.cfg" || die "grub-mkstandalone failed"
esp_mib=$((ROOT_START_MIB - ESP_START_MIB))
mkfs.vfat -F 32 -S 512 -s 1 -n HAINIT-ESP -C "$work/esp.img" $((esp_mib * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
MTOOLS_SKIP_CHECK=1 mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
SECS[bootloader]=$(since "$t")

# ---- disk: GPT, the ESP, ext4 in its partition -> fixed VHD -----------------------------------
t=$(now)
raw=$work/disk.raw
truncate -s "${SIZE_MIB}M" "$raw"
sgdisk -Z "$raw" >/dev/null 2>&1 || true
sgdisk -a 2048 \
  -n "15:${ESP_START_MIB}MiB:+${esp_mib}MiB" -t 15:EF00 -c 15:EFI -u "15:$ESP_PARTUUID" \
  -n "1:${ROOT_START_MIB}MiB:0" -t 1:8304 -c 1:root -u "1:$ROOT_PARTUUID" "$raw" >/dev/null
dd if="$work/esp.img" of="$raw" bs=1M seek="$ESP_START_MIB" conv=notrunc status=none
read -r first last < <(sgdisk -i 1 "$raw" | awk '/^First sector/ { f = $3 } /^Last sector/ { l = $3 } END { print f, l }')
[ "$first" -eq $((ROOT_START_MIB * 2048)) ] || die "root partition starts at sector $first, not at $ROOT_START_MIB MiB"
# The file system in whole 4 KiB blocks.
root_blocks=$(((last - first + 1) / 8))
mke2fs -q -t ext4 -F -L hainit-root -U "$FS_UUID" -d "$stage" \
  -E "offset=$((first * 512)),lazy_itable_init=0,lazy_journal_init=0" "$raw" "$((root_blocks * 4))k" ||
  die "mke2fs of the root file system failed"
sgdisk -v "$raw" | grep -q '^No problems found' || die "the partition table does not verify: $(sgdisk -v "$raw")"
rm -rf "$stage"
qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$raw" "$OUT.new/$NAME.vhd"
rm -rf "$work"
(cd "$OUT.new" && sha256sum "$NAME.vhd" >"$NAME.vhd.sha256")
SECS[disk]=$(since "$t")
SECS[total]=$(since "$T0")

vhd_sha=$(cut -d' ' -f1 "$OUT.new/$NAME.vhd.sha256")
{
  printf '{\n  "key": "%s",\n  "name": "%s",\n  "built_at": "%s",\n' "$KEY" "$NAME" "$(date -u +%FT%TZ)"
  printf '  "vhd_sha256": "%s",\n  "vhd_bytes": %d,\n  "virtual_size_mib": %d,\n' \
    "$vhd_sha" "$(stat -c %s "$OUT.new/$NAME.vhd")" "$SIZE_MIB"
  printf '  "root_partition": {"number": 1, "offset_bytes": %d, "partuuid": "%s", "fs_uuid": "%s"},\n' \
    "$((first * 512))" "$ROOT_PARTUUID" "$FS_UUID"
  printf '  "esp_partition": {"number": 15, "offset_bytes": %d, "partuuid": "%s"},\n' \
    "$((ESP_START_MIB * 1048576))" "$ESP_PARTUUID"
  printf '  "kernel": "%s",\n  "cmdline_extra": "%s",\n  "mirror": "%s",\n' "$kernel" "$CMDLINE_EXTRA" "$MIRROR"
  printf '  "rootfs_key": "%s",\n  "packages": %d,\n  "versions": %s,\n' \
    "$ROOTFS_KEY" "$(echo "$PACKAGES" | wc -l)" "$versions"
  printf '  "hainit_sha256": "%s",\n  "wordpress_sha256": "%s",\n  "seconds": {' \
    "$(sha256sum "$HAINIT_BIN" | cut -d' ' -f1)" "$WP_SHA"
  sep=""
  for k in "${!SECS[@]}"; do
    printf '%s"%s": %s' "$sep" "$k" "${SECS[$k]}"
    sep=", "
  done
  printf '}\n}\n'
} >"$OUT.new/image.json"
rm -rf "$OUT" && mv -T "$OUT.new" "$OUT"
publish
# Keep the newest two (a lab still running may boot the previous one).
find "$CACHE/azure" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +3 | cut -d' ' -f2- |
  xargs -r rm -rf
log "built $OUT_DIR/$NAME.vhd in ${SECS[total]} s (rootfs ${SECS[rootfs]}, stage ${SECS[stage]}, boot loader ${SECS[bootloader]}, disk ${SECS[disk]}): $SIZE_MIB MiB, sha256 $vhd_sha"

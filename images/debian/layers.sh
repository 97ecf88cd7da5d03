# shellcheck shell=bash
# shellcheck disable=SC2034 # SECS and the variables set here are read by the scripts that source this
# The layers hainit's Debian 12 image is made of, shared by the Azure image (images/azure/build.sh,
# make azure-image) and, through it, the lab (images/lab/build.sh boots that image plus a small
# layer of its own). Sourced, not run. Each layer is cached under $CACHE by a hash of its inputs:
#
#   rootfs/<key>/   debootstrap + images/debian/packages.txt (Debian's cloud kernel, cloud-init and
#                   waagent included) + the units the image starts disabled
#   (stage)         the rootfs + hainit, its first-boot unit (images/systemd/) and the pinned
#                   WordPress tarball with the defaults.yaml that pins it
#
# Archive URLs come from this machine's apt sources (the first deb822 `URIs:` in
# /etc/apt/sources.list.d/*.sources, else sources.list), or from HAINIT_MIRROR and
# HAINIT_SECURITY_MIRROR; the repository names no archive host.

LAYERS_SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$LAYERS_SELF")/../.." && pwd)
CACHE=${HAINIT_IMAGE_CACHE:-/var/tmp/hainit-image}
HAINIT_BIN=${HAINIT_BIN:-$REPO/target/x86_64-unknown-linux-musl/release/hainit}
WP_SCRIPT=${WORDPRESS_TARBALL_SCRIPT:-$REPO/scripts/wordpress-tarball.sh}
REFRESH=${HAINIT_IMAGE_REFRESH:-0}
SUITE=bookworm
# Seconds per layer, for image.json (the build script writes it).
declare -A SECS=()

log() { printf '%s: %s\n' "${LOG_NAME:-image}" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
short_sha() { sha256sum | cut -c1-16; }

# apt_sources: "URI SUITES…" for every enabled deb source of this machine, deb822 files first.
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() { if (deb && enabled && uri != "") print uri, suites; uri = ""; suites = ""; deb = 0; enabled = 1 }
      BEGIN { enabled = 1 }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { suites = $2; for (i = 3; i <= NF; i++) suites = suites " " $i }
      tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
      END { flush() }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' \
      /etc/apt/sources.list
  fi
}

# Sets MIRROR (the archive) and SECURITY_MIRROR (its security updates): the user's variables, else
# this machine's apt sources (a source whose suites end in -security is the security archive).
choose_mirrors() {
  local sources
  sources=$(apt_sources)
  MIRROR=${HAINIT_MIRROR:-$(awk '$0 !~ /-security/ { print $1; exit }' <<<"$sources")}
  [ -n "$MIRROR" ] || die "no Debian archive: this machine has no deb source in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set HAINIT_MIRROR"
  MIRROR=${MIRROR%/}
  SECURITY_MIRROR=${HAINIT_SECURITY_MIRROR:-$(awk '/-security/ { print $1; exit }' <<<"$sources")}
  SECURITY_MIRROR=${SECURITY_MIRROR:-$MIRROR-security}
  SECURITY_MIRROR=${SECURITY_MIRROR%/}
}

# write_sources ROOT: the image's apt sources (deb822), the archives it was built from.
write_sources() {
  rm -f "$1/etc/apt/sources.list"
  cat >"$1/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

layers_init() {
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and chroot)"
  local tool
  for tool in debootstrap qemu-img mke2fs apt-get apt-cache dpkg-query flock sha256sum "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs the image's host packages)"
  done
  [ -x "$HAINIT_BIN" ] || die "$HAINIT_BIN not found: run make build"
  [ -x "$WP_SCRIPT" ] || die "$WP_SCRIPT not found (it builds the WordPress tarball)"
  file "$HAINIT_BIN" | grep -q 'statically linked' || die "$HAINIT_BIN is not statically linked"
  choose_mirrors
  mkdir -p "$CACHE"/{rootfs,debcache}
  exec 9>"$CACHE/.build.lock"
  flock -w 3600 9 || die "another image build holds $CACHE/.build.lock"
  PACKAGES=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$REPO/images/debian/packages.txt" | grep -v '^$' | sort -u)
  # A new cloud kernel in the archive is a new rootfs (apt-get update on this machine sees it).
  KERNEL_CANDIDATE=$(apt-cache policy linux-image-cloud-amd64 2>/dev/null | awk '/Candidate:/ { print $2 }')
  ROOTFS_KEY=$(printf '%s\n' "$PACKAGES" "$MIRROR $SECURITY_MIRROR" "$KERNEL_CANDIDATE" "$(declare -f build_rootfs)" | short_sha)
  ROOTFS=$CACHE/rootfs/$ROOTFS_KEY
}

# The WordPress tarball, reproducible from this machine's wordpress package: sets WP_TARBALL, WP_SHA.
layer_wordpress() {
  local key
  key=$({ dpkg-query -W wordpress 'wordpress-theme-*' 2>/dev/null; sha256sum "$WP_SCRIPT"; } | short_sha)
  if [ ! -s "$CACHE/wordpress-$key.sha256" ]; then
    rm -f "$CACHE"/wordpress-*.tar.gz "$CACHE"/wordpress-*.sha256
    "$WP_SCRIPT" "$CACHE/wordpress-$key.tar.gz" >"$CACHE/wordpress-$key.sha256.new"
    mv -f "$CACHE/wordpress-$key.sha256.new" "$CACHE/wordpress-$key.sha256"
  fi
  WP_TARBALL=$CACHE/wordpress-$key.tar.gz
  WP_SHA=$(cat "$CACHE/wordpress-$key.sha256")
  echo "$WP_SHA  $WP_TARBALL" | sha256sum -c --quiet || die "$WP_TARBALL does not match its sha256"
}

# Work directories of this build: unmounted and removed when it ends, whatever the outcome
# (the caller sets `trap layers_cleanup EXIT`).
CLEANUP=()
layers_cleanup() {
  local d
  for d in "${CLEANUP[@]}"; do
    chroot_umount "$d"
    rm -rf "$d"
  done
}

# Unmount whatever build_rootfs mounted under ROOT (also after a failure).
chroot_umount() {
  local m
  for m in var/cache/apt/archives dev/pts dev sys proc; do
    ! mountpoint -q "$1/$m" 2>/dev/null || umount -l "$1/$m"
  done
}

# build_rootfs DIR: debootstrap, every package, the units the image starts disabled (its text is
# part of the rootfs key: change it and the rootfs is rebuilt).
build_rootfs() {
  local new=$1 t
  t=$(now)
  debootstrap --variant=minbase --cache-dir="$CACHE/debcache" --include=systemd-sysv,udev,kmod,iproute2 \
    "$SUITE" "$new" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed, see $CACHE/debootstrap.log"
  SECS[debootstrap]=$(since "$t")
  write_sources "$new"
  # Package scripts must not start daemons inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d" && chmod +x "$new/usr/sbin/policy-rc.d"
  # No swap, no hibernation: the initramfs need not wait for a resume device.
  mkdir -p "$new/etc/initramfs-tools/conf.d" && echo RESUME=none >"$new/etc/initramfs-tools/conf.d/resume"
  local m
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$new/$m"; done
  mount --bind "$CACHE/debcache" "$new/var/cache/apt/archives"
  DEBIAN_FRONTEND=noninteractive LC_ALL=C chroot "$new" sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends ${PACKAGES//$'\n'/ }" \
    >"$CACHE/apt.log" 2>&1 || die "apt-get install in the chroot failed, see $CACHE/apt.log"
  chroot_umount "$new"
  rm -f "$new/usr/sbin/policy-rc.d"
  if [ ! -e "$new/vmlinuz" ] || [ ! -e "$new/initrd.img" ]; then
    die "the cloud kernel left no /vmlinuz and /initrd.img in the rootfs"
  fi
  # Timers that only burn CPU on a cluster node; the cluster stack, MariaDB and the web services
  # start disabled, as in a minimal cloud image: hainit enables what its role needs.
  local u
  for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    man-db.timer dpkg-db-backup.timer corosync.service pacemaker.service pcsd.service pcsd-ruby.service \
    mariadb.service drbd.service nginx.service php8.2-fpm.service logd.service getty@tty1.service; do
    chroot "$new" systemctl disable "$u" >/dev/null 2>&1 || true
  done
  rm -rf "$new"/usr/share/doc/* "$new"/usr/share/man/* "$new"/var/lib/apt/lists/*_Packages
}

# Sets ROOTFS (built or cached); SECS[rootfs] is its time.
layer_rootfs() {
  local t
  t=$(now)
  [ "$REFRESH" != 1 ] || rm -rf "$ROOTFS"
  if [ ! -f "$ROOTFS/.complete" ]; then
    log "rootfs $ROOTFS_KEY: debootstrap + $(echo "$PACKAGES" | wc -l) packages from $MIRROR"
    rm -rf "$ROOTFS.new"
    CLEANUP+=("$ROOTFS.new")
    build_rootfs "$ROOTFS.new"
    touch "$ROOTFS.new/.complete"
    find "$CACHE/rootfs" -mindepth 1 -maxdepth 1 ! -name "$ROOTFS_KEY.new" -exec rm -rf {} +
    mv -T "$ROOTFS.new" "$ROOTFS"
  fi
  SECS[rootfs]=$(since "$t")
}

# stage_hainit DIR: hainit, its first-boot unit (enabled) and the pinned WordPress tarball, as the
# Packer images install them (images/packer/provision/el.sh).
stage_hainit() {
  local d=$1
  install -D -m 0755 "$HAINIT_BIN" "$d/usr/local/sbin/hainit"
  install -D -m 0755 "$REPO/images/systemd/hainit-boot" "$d/usr/local/libexec/hainit-boot"
  install -D -m 0644 "$REPO/images/systemd/hainit.service" "$d/etc/systemd/system/hainit.service"
  chroot "$d" systemctl enable hainit.service >/dev/null 2>&1 || die "systemctl enable hainit.service failed"
  install -D -m 0644 "$WP_TARBALL" "$d/usr/share/hainit/wordpress.tar.gz"
  printf '# Written by the image build (images/debian/layers.sh)\nweb:\n  wordpress_tarball: /usr/share/hainit/wordpress.tar.gz\n  wordpress_sha256: "%s"\n' \
    "$WP_SHA" >"$d/usr/share/hainit/defaults.yaml"
}

# versions_json ROOT: the versions a support matrix quotes, read from the image's dpkg database.
versions_json() {
  local sep="" p v
  printf '{'
  for p in linux-image-cloud-amd64 drbd-utils pacemaker pcs corosync mariadb-server php8.2-fpm nginx cloud-init waagent; do
    v=$(dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Version}' "$p" 2>/dev/null) || v=""
    printf '%s"%s": "%s"' "$sep" "$p" "$v"
    sep=", "
  done
  printf '}'
}

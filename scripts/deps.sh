#!/usr/bin/env bash
# Installs everything the tests and the lab need on a Debian 12 machine: Debian packages (apt, from
# the machine's own sources), the Rust musl target, clippy and rustfmt. Run as root or as a user
# with sudo. Idempotent: when everything is there it only checks (dpkg-query; no apt-get update).
# `make test`, `make lab` and .ci/run call it (docs/development.md "Setting up a machine").
set -euo pipefail

packages=(
  build-essential musl-tools file time python3 shellcheck pyflakes3
  drbd-utils pcs pacemaker pacemaker-cli-utils resource-agents crmsh fence-agents sbd
  nginx php-fpm php-cli php-mysql mariadb-server mariadb-client wordpress
  wordpress-theme-twentytwentythree
  cloud-init packer netcat-openbsd socat iproute2 util-linux gdisk e2fsprogs xfsprogs
  qemu-system-x86 qemu-utils debootstrap busybox-static cpio kmod nftables openssh-client
  curl systemd openssl chromium nfs-ganesha nfs-ganesha-vfs
  grub-efi-amd64-bin mtools dosfstools ovmf
)
rust_target=x86_64-unknown-linux-musl
rust_components=(clippy rustfmt)

# Root's commands through sudo when not root (needed only when something is missing).
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

missing_packages() {
  # One dpkg-query for all of them; a package dpkg has never heard of is not listed, so missing.
  comm -23 <(printf '%s\n' "${packages[@]}" | sort -u) \
    <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null |
      awk '$1 == "ii" {print $2}' | sort -u)
}

enabled_units() {
  command -v systemctl >/dev/null || return 0
  systemctl list-unit-files --state=enabled --no-legend --no-pager 2>/dev/null | awk '{print $1}' | sort
}

# Package scripts start no daemons (tests start what they need): a policy-rc.d that says no, only
# when the machine has none of its own, removed however this script ends.
policy=/usr/sbin/policy-rc.d
ours_policy=0
drop_policy() {
  if [ "$ours_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
}
trap drop_policy EXIT

mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -gt 0 ]; then
  if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "deps: missing ${missing[*]}, and not root without sudo: run this as root" >&2
    exit 1
  fi
  enabled_before=$(enabled_units)
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    ours_policy=1
  fi
  # Twice: installing one package can remove another (Debian's qemu-system-x86 removes a backported
  # qemu-utils that a machine came with), so what is still missing after the first pass goes again.
  for pass in 1 2; do
    [ ${#missing[@]} -gt 0 ] || break
    echo "deps: installing (pass $pass): ${missing[*]}"
    [ "$pass" -eq 2 ] || "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    mapfile -t missing < <(missing_packages)
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: these packages are still not installed: ${missing[*]}" >&2
    exit 1
  fi
  # Nor at the next boot: what this install enabled (nginx, mariadb, pcsd, corosync …) is disabled
  # again. A unit that was enabled before stays as it was.
  mapfile -t newly < <(comm -13 <(echo "$enabled_before") <(enabled_units))
  if [ ${#newly[@]} -gt 0 ]; then
    echo "deps: disabling what the install enabled at boot: ${newly[*]}"
    "${SUDO[@]}" systemctl disable --quiet "${newly[@]}"
  fi
else
  echo "deps: all ${#packages[@]} Debian packages are installed"
fi

# Rust is per user: under sudo, the toolchain of the user who called it (the one who builds).
as_builder=()
builder=$(id -un)
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  builder=$SUDO_USER
  home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  as_builder=(sudo -u "$SUDO_USER" -H env "PATH=$home/.cargo/bin:$PATH")
fi
if ! "${as_builder[@]}" rustup --version >/dev/null 2>&1; then
  echo "deps: no rustup for $builder: hainit needs Rust >= 1.85 (Cargo.toml rust-version)" \
    "through rustup, the Rust project's installer (Debian 12's rustc is 1.63); install it, then run" \
    "this again" >&2
  exit 1
fi
if ! "${as_builder[@]}" rustup target list --installed | grep -qx "$rust_target"; then
  echo "deps: adding the Rust target $rust_target"
  "${as_builder[@]}" rustup target add "$rust_target"
fi
installed_components=$("${as_builder[@]}" rustup component list --installed)
for c in "${rust_components[@]}"; do
  if ! grep -q "^$c-" <<<"$installed_components"; then
    echo "deps: adding the Rust component $c"
    "${as_builder[@]}" rustup component add "$c"
  fi
done

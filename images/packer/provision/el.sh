#!/usr/bin/env bash
# Provisioning shared by the EL family images (images/packer/centos7.pkr.hcl, rocky9.pkr.hcl).
# Packer runs it as root on the build VM; it leaves an image that needs nothing from the network
# at first boot (ILB-only VMs may have none, reference §4.4):
#   - the repositories (CentOS 7: vault 7.9.2009, SCL, EPEL archive, ELRepo; EL9: highavailability,
#     ELRepo) and the packages BOTH roles need (packages-<os>.txt, kept equal to the platform table);
#   - /usr/local/sbin/hainit, /usr/local/libexec/hainit-boot and hainit.service, enabled; the udev
#     rules for /dev/disk/azure/data/by-lun/N (WALinuxAgent's give only /dev/disk/azure/scsi1/lunN);
#   - the WordPress release tarball, checked against a pinned sha256, and its hash in
#     /usr/share/hainit/defaults.yaml (hainit refuses an unpinned WordPress);
#   - cloud-init as the provisioning agent with the Azure datasource (custom-data is processed on
#     CentOS 7 too, whose OpenLogic image provisions with WALinuxAgent), no swap.
# Azure's deprovision step is the template's last provisioner.
#
# Inputs (Packer environment_vars): HAINIT_OS (centos7 | el9), STAGE (uploaded files: hainit,
# hainit-boot, hainit.service, 80-hainit-azure-data-disks.rules, packages.txt), WORDPRESS_URL, WORDPRESS_SHA256, OS_UPDATE (yes|no),
# ELREPO_BASEURL, ELREPO_GPGKEYS; centos7 also VAULT_BASEURL, SCLO_GPGKEY, EPEL_BASEURL, EPEL_GPGKEY.
# Sourcing the file only defines the functions (tests use them).
set -euo pipefail

die() {
  echo "el.sh: $*" >&2
  exit 1
}
log() { echo "el.sh: $*" >&2; }

# The package names of a ROLE PACKAGE list, both roles, first occurrence only.
read_packages() {
  awk '!/^[[:space:]]*(#|$)/ { if (!seen[$2]++) print $2 }' "$1"
}

is_sha256() { [[ $1 =~ ^[0-9a-f]{64}$ ]]; }

# fetch_verified URL SHA256 DEST: download, check the hash, then move into place (0644).
# A mismatch or failed download leaves nothing at DEST.
fetch_verified() {
  local url=$1 want=$2 dest=$3 got tmp
  is_sha256 "$want" || die "pinned sha256 for $url must be 64 lowercase hex digits, got '$want'"
  tmp="$dest.part"
  mkdir -p "$(dirname "$dest")"
  if ! curl -fsSL --retry 5 --retry-delay 3 --connect-timeout 15 -o "$tmp" "$url"; then
    rm -f "$tmp"
    die "download of $url failed"
  fi
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [[ $got != "$want" ]]; then
    rm -f "$tmp"
    die "sha256 of $url is $got, pinned $want: refusing it"
  fi
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dest"
}

# write_defaults FILE TARBALL SHA256: the image's layer of hainit's configuration.
write_defaults() {
  local file=$1 tarball=$2 sha=$3
  is_sha256 "$sha" || die "wordpress sha256 '$sha' is not 64 lowercase hex digits"
  mkdir -p "$(dirname "$file")"
  cat >"$file" <<EOF
# Written by the hainit image build (images/packer/provision/el.sh); lowest-precedence config
# layer, overridden by /etc/hainit/hainit.yaml. The WordPress release baked into this image:
web:
  wordpress_tarball: $tarball
  wordpress_sha256: "$sha"
EOF
  chmod 0644 "$file"
}

# repo_section ID NAME BASEURL GPGKEYS: one yum repository, GPG-checked.
repo_section() {
  printf '[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\ngpgkey=%s\n\n' "$1" "$2" "$3" "$4"
}

# CentOS 7 is end of life: its mirrors and mirrorlist are gone, the content lives in the vault
# (reference §7.1). The stock repo files are set aside so yum does not try dead mirrors.
repos_centos7() {
  local dir=$1
  mkdir -p "$dir/disabled-by-hainit"
  find "$dir" -maxdepth 1 -name '*.repo' ! -name 'hainit-*.repo' -exec mv -f {} "$dir/disabled-by-hainit/" \;
  {
    repo_section hainit-base "CentOS 7.9.2009 base (vault)" "$VAULT_BASEURL/os/\$basearch/" \
      file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
    repo_section hainit-updates "CentOS 7.9.2009 updates (vault)" "$VAULT_BASEURL/updates/\$basearch/" \
      file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
    repo_section hainit-extras "CentOS 7.9.2009 extras (vault)" "$VAULT_BASEURL/extras/\$basearch/" \
      file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
    # rh-php73: CentOS 7's PHP 5.4 cannot run a current WordPress (reference §6.4).
    repo_section hainit-sclo-rh "CentOS 7 Software Collections rh (vault)" "$VAULT_BASEURL/sclo/\$basearch/rh/" \
      "$SCLO_GPGKEY"
    # nginx is in EPEL on CentOS 7; EPEL 7 is archived.
    repo_section hainit-epel "EPEL 7 (archive)" "$EPEL_BASEURL" "$EPEL_GPGKEY"
    repo_section hainit-elrepo "ELRepo el7 (kmod-drbd84, drbd84-utils)" "$ELREPO_BASEURL" "$ELREPO_GPGKEYS"
  } >"$dir/hainit-centos7.repo"
}

# Rocky Linux 9: pcs and the cluster stack in `highavailability` (disabled by default), DRBD 9
# from ELRepo (reference §7.2, §7.3).
repos_el9() {
  local dir=$1
  dnf -y install dnf-plugins-core
  dnf config-manager --set-enabled highavailability
  repo_section hainit-elrepo "ELRepo el9 (kmod-drbd9x, drbd9x-utils)" "$ELREPO_BASEURL" "$ELREPO_GPGKEYS" \
    >"$dir/hainit-elrepo.repo"
}

# The DRBD module must exist for the kernel the image boots, with the major version the platform
# table expects (8.4 on CentOS 7, 9 on EL9): ELRepo's kmods follow the kABI (reference §7.3).
check_drbd_module() {
  local want=$1 kernel version
  kernel=$(grubby --default-kernel)
  kernel=${kernel#/boot/vmlinuz-}
  version=$(modinfo -k "$kernel" -F version drbd) || die "no drbd module for the boot kernel $kernel"
  [[ $version == "$want"* ]] || die "drbd module $version for kernel $kernel, expected $want.x"
  log "drbd $version for kernel $kernel"
}

# set_conf FILE KEY VALUE: KEY=VALUE in an agent-style config file, replacing the key's line or
# appending one.
set_conf() {
  local file=$1 key=$2 value=$3 re
  re="^${key//./\\.}="
  if grep -q "$re" "$file"; then
    sed -i "s|$re.*|$key=$value|" "$file"
  else
    printf '%s=%s\n' "$key" "$value" >>"$file"
  fi
}

# azure_cloud_init CLOUD_CFG_DIR WAAGENT_CONF: cloud-init provisions the VM (its Azure datasource
# writes the custom-data, cloud-init/*.yaml, and reports ready); WALinuxAgent keeps extensions
# (run command) and its /dev/disk/azure udev rules. The OpenLogic CentOS 7.9 images provision with
# the agent, which never runs a #cloud-config: without this, custom-data would be ignored there.
# Agents from 2.2.45 on read Provisioning.Agent; older ones Provisioning.Enabled/UseCloudInit.
azure_cloud_init() {
  local dir=$1 conf=$2
  [[ -f $conf ]] || die "$conf not found: the image has no WALinuxAgent"
  mkdir -p "$dir"
  cat >"$dir/91-hainit-azure.cfg" <<'EOF'
# hainit (images/packer/provision/el.sh): Azure only; no swap file on the OS disk.
datasource_list: [ Azure ]
swap:
  size: 0
EOF
  chmod 0644 "$dir/91-hainit-azure.cfg"
  if grep -q '^Provisioning\.Agent=' "$conf"; then
    set_conf "$conf" Provisioning.Agent cloud-init
  else
    set_conf "$conf" Provisioning.Enabled n
    set_conf "$conf" Provisioning.UseCloudInit y
  fi
  # The resource disk is cloud-init's (Azure's defaults mount it at /mnt), with no swap.
  set_conf "$conf" ResourceDisk.Format n
  set_conf "$conf" ResourceDisk.EnableSwap n
}

install_hainit() {
  local stage=$1
  install -D -m 0755 "$stage/hainit" /usr/local/sbin/hainit
  install -D -m 0755 "$stage/hainit-boot" /usr/local/libexec/hainit-boot
  install -D -m 0644 "$stage/hainit.service" /etc/systemd/system/hainit.service
  install -D -m 0644 "$stage/80-hainit-azure-data-disks.rules" /etc/udev/rules.d/80-hainit-azure-data-disks.rules
  /usr/local/sbin/hainit --version >/dev/null || die "/usr/local/sbin/hainit does not run on this OS"
  systemctl enable hainit.service
}

main() {
  [[ $(id -u) -eq 0 ]] || die "run as root"
  : "${HAINIT_OS:?}" "${STAGE:?}" "${WORDPRESS_URL:?}" "${WORDPRESS_SHA256:?}" "${ELREPO_BASEURL:?}"
  : "${ELREPO_GPGKEYS:?}"
  local pm=yum drbd_major
  case $HAINIT_OS in
  centos7)
    : "${VAULT_BASEURL:?}" "${SCLO_GPGKEY:?}" "${EPEL_BASEURL:?}" "${EPEL_GPGKEY:?}"
    repos_centos7 /etc/yum.repos.d
    drbd_major=8.4
    ;;
  el9)
    pm=dnf
    repos_el9 /etc/yum.repos.d
    drbd_major=9.
    ;;
  *) die "HAINIT_OS must be centos7 or el9, got '$HAINIT_OS'" ;;
  esac

  [[ ${OS_UPDATE:-yes} == yes ]] && "$pm" -y update
  mapfile -t packages < <(read_packages "$STAGE/packages.txt")
  [[ ${#packages[@]} -gt 0 ]] || die "$STAGE/packages.txt lists no packages"
  # cloud-init writes /etc/hainit/hainit.yaml from custom-data; curl fetches WordPress below.
  "$pm" -y install "${packages[@]}" cloud-init curl
  # yum exits 0 when some names were not found: check each one.
  rpm -q "${packages[@]}" cloud-init >/dev/null || die "packages missing after install: $(rpm -q "${packages[@]}" | grep 'not installed')"
  check_drbd_module "$drbd_major"
  azure_cloud_init /etc/cloud/cloud.cfg.d /etc/waagent.conf
  systemctl enable cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service

  install_hainit "$STAGE"
  fetch_verified "$WORDPRESS_URL" "$WORDPRESS_SHA256" /usr/share/hainit/wordpress.tar.gz
  write_defaults /usr/share/hainit/defaults.yaml /usr/share/hainit/wordpress.tar.gz "$WORDPRESS_SHA256"
  if command -v restorecon >/dev/null; then
    restorecon -R /usr/local/sbin/hainit /usr/local/libexec/hainit-boot /etc/systemd/system/hainit.service \
      /usr/share/hainit
  fi
  "$pm" clean all
  log "image ready: hainit $(/usr/local/sbin/hainit --version), WordPress sha256 $WORDPRESS_SHA256"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi

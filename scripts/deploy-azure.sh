#!/usr/bin/env bash
# deploy-azure.sh: from an empty subscription to the hainit WordPress stack, with the az CLI.
#
#   scripts/deploy-azure.sh [--dry-run] [options]        (docs/azure.md)
#
# Every VM boots hainit's Debian 12 image by default (make azure-image; uploaded once, reused by
# its sha256: scripts/azure/image.sh). Creates, in one resource group, what the how-to built by
# hand, for today's Azure: a VNet with a
# db and a web subnet, an NSG per subnet, a NAT gateway on both (outbound for package mirrors and
# for fence_azure_arm, which must reach Azure Resource Manager from VMs that sit only behind the
# internal load balancer), availability sets (or zones), the internal load balancer for MariaDB
# (frontend = the VIP, TCP probe on hainit's probe port, rule for the DB port, no floating IP:
# MariaDB listens on the node's own address), the public load balancer (port 80, HTTP probe
# /healthz), two db VMs with a data disk at LUN 0 and their fencing, the web tier's shared uploads
# (an Azure Files NFS 4.1 share reached only from the web subnet), and the web VMs. Fencing is
# either fence_azure_arm (--stonith azure-arm, the default: a system-assigned managed identity per
# db VM, given a custom role with exactly what fence_azure_arm needs by the `az vm create` that
# makes the VM) or SBD (--stonith sbd: one 4 GiB Azure shared disk at LUN 1 of both db VMs; no
# identity, no role). Every VM gets the hainit tags and custom-data rendered from cloud-init/db.yaml
# (the shared secret) or web.yaml (only the web tier's secrets, derived by `hainit secrets`).
#
# Idempotent: every resource is looked up (`az ... show`) before it is created; existing ones are
# left as they are, except that a wrong ILB probe port or a foreign disk at a db VM's LUN 0 stop the
# run. --dry-run runs only the read-only look-ups and prints every command that would change the
# subscription instead of running it (without `az login` it assumes an empty subscription).
# The shared secret never appears in argv: custom-data goes through a 0600 temporary file
# (`--custom-data @FILE`), and `hainit secrets` reads it on stdin. Needs the hainit binary (on PATH,
# HAINIT_BIN, or `make build`'s) for the web tier's secrets.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CLOUD_INIT_DIR=${HAINIT_CLOUD_INIT_DIR:-$HERE/../cloud-init}

usage() {
  cat <<'EOF'
usage: scripts/deploy-azure.sh [--dry-run] [options]

Every option also reads the environment variable HAINIT_<OPTION> (upper case, - as _), e.g.
HAINIT_RESOURCE_GROUP; a flag wins. Defaults are the how-to's topology.

  --resource-group RG     hainit-wp
  --location LOC          westeurope
  --cluster NAME          wpcluster (tag hainit-cluster)
  --image IMAGE           default: hainit's Debian 12 image (make azure-image), uploaded once to
                          --image-group as hainit-debian12-<sha256 prefix> (scripts/azure/image.sh);
                          else a managed image name in --image-group, an image ID, or a Marketplace
                          URN (stock image: then set --hainit-url and --hainit-sha256)
  --image-vhd FILE        target/images/hainit-debian12.vhd (with its .sha256 beside it)
  --image-group RG        hainit-images
  --image-plan P:O:N      Marketplace plan of the image (Rocky 9: resf:rockylinux-x86_64:9-base);
                          an image that needs one is refused without it
  --os-disk-gb N          30 (hainit's Debian 12 image: its root grows to the OS disk)
  --vm-size SIZE          Standard_D2s_v5
  --admin-user USER       azops
  --ssh-key FILE          public key (default ~/.ssh/id_ed25519.pub or id_rsa.pub, else generated)
  --zones "1 2"           availability zones, round robin per tier (default: availability sets)
  --vnet-cidr CIDR        10.0.0.0/16
  --db-subnet CIDR        10.0.1.0/24
  --web-subnet CIDR       10.0.2.0/24 (hainit's default db.web_subnet, the DB grant)
  --db-names "A B"        "db-a db-b" (VM and host names; exactly two)
  --db-ips "IP IP"        "10.0.1.4 10.0.1.5"
  --vip IP                10.0.1.10 (internal load balancer frontend, tag hainit-vip)
  --web-names "A B …"     "web-1 web-2"
  --web-ips "IP IP …"     "10.0.2.4 10.0.2.5"
  --probe-port PORT       62500 (hainit's db.probe_port; the ILB health probe)
  --db-port PORT          3306
  --data-disk-gb N        32
  --stonith MODE          azure-arm: fence_azure_arm with each db VM's managed identity and a
                          custom role (default); sbd: SBD on a 4 GiB Azure shared disk at LUN 1
                          of both db VMs (Premium_LRS, Premium_ZRS with --zones)
  --disk-sku SKU          Premium_LRS
  --share-account NAME    storage account of the web tier's NFS share (default hainit + 12 hex
                          digits of the resource group's sha256; the share is NAME/wpcontent)
  --share-gb N            100 (the share's size; premium file shares start at 100 GiB)
  --secret-file FILE      ~/.config/hainit/<resource-group>.secret (created, mode 0600, when absent;
                          HAINIT_SECRET in the environment wins); only the db VMs get it, web VMs
                          get what `hainit secrets --tier web` derives from it (HAINIT_BIN: which
                          hainit runs that; default hainit on PATH, else make build's)
  --hainit-url URL        stock images only: where cloud-init fetches hainit
  --hainit-sha256 HEX     its sha256 (required with --hainit-url)
  --dry-run               print the commands that would change the subscription; run none
EOF
}

env_or() { local v="HAINIT_$1"; printf '%s' "${!v:-$2}"; }

RESOURCE_GROUP=$(env_or RESOURCE_GROUP hainit-wp)
LOCATION=$(env_or LOCATION westeurope)
CLUSTER=$(env_or CLUSTER wpcluster)
IMAGE=$(env_or IMAGE "")
IMAGE_VHD=$(env_or IMAGE_VHD "$HERE/../target/images/hainit-debian12.vhd")
OS_DISK_GB=$(env_or OS_DISK_GB 30)
IMAGE_GROUP=$(env_or IMAGE_GROUP hainit-images)
IMAGE_PLAN=$(env_or IMAGE_PLAN "")
VM_SIZE=$(env_or VM_SIZE Standard_D2s_v5)
ADMIN_USER=$(env_or ADMIN_USER azops)
SSH_KEY=$(env_or SSH_KEY "")
ZONES=$(env_or ZONES "")
VNET_CIDR=$(env_or VNET_CIDR 10.0.0.0/16)
DB_SUBNET=$(env_or DB_SUBNET 10.0.1.0/24)
WEB_SUBNET=$(env_or WEB_SUBNET 10.0.2.0/24)
DB_NAMES=$(env_or DB_NAMES "db-a db-b")
DB_IPS=$(env_or DB_IPS "10.0.1.4 10.0.1.5")
VIP=$(env_or VIP 10.0.1.10)
WEB_NAMES=$(env_or WEB_NAMES "web-1 web-2")
WEB_IPS=$(env_or WEB_IPS "10.0.2.4 10.0.2.5")
PROBE_PORT=$(env_or PROBE_PORT 62500)
DB_PORT=$(env_or DB_PORT 3306)
DATA_DISK_GB=$(env_or DATA_DISK_GB 32)
DISK_SKU=$(env_or DISK_SKU Premium_LRS)
STONITH=$(env_or STONITH azure-arm)
SHARE_ACCOUNT=$(env_or SHARE_ACCOUNT "")
SHARE_GB=$(env_or SHARE_GB 100)
SECRET_FILE=$(env_or SECRET_FILE "")
HAINIT_URL_OPT=$(env_or HAINIT_URL "")
HAINIT_SHA256_OPT=$(env_or HAINIT_SHA256 "")
DRY_RUN=0

# shellcheck source=scripts/azure/lib.sh
. "$HERE/azure/lib.sh"

while [[ $# -gt 0 ]]; do
  opt=$1
  case $opt in
  -h | --help)
    usage
    exit 0
    ;;
  --dry-run)
    DRY_RUN=1
    shift
    continue
    ;;
  esac
  [[ $# -ge 2 ]] || bad_input "$opt needs a value (see --help)"
  val=$2
  shift 2
  case $opt in
  --resource-group) RESOURCE_GROUP=$val ;;
  --location) LOCATION=$val ;;
  --cluster) CLUSTER=$val ;;
  --image) IMAGE=$val ;;
  --image-vhd) IMAGE_VHD=$val ;;
  --os-disk-gb) OS_DISK_GB=$val ;;
  --image-group) IMAGE_GROUP=$val ;;
  --image-plan) IMAGE_PLAN=$val ;;
  --vm-size) VM_SIZE=$val ;;
  --admin-user) ADMIN_USER=$val ;;
  --ssh-key) SSH_KEY=$val ;;
  --zones) ZONES=$val ;;
  --vnet-cidr) VNET_CIDR=$val ;;
  --db-subnet) DB_SUBNET=$val ;;
  --web-subnet) WEB_SUBNET=$val ;;
  --db-names) DB_NAMES=$val ;;
  --db-ips) DB_IPS=$val ;;
  --vip) VIP=$val ;;
  --web-names) WEB_NAMES=$val ;;
  --web-ips) WEB_IPS=$val ;;
  --probe-port) PROBE_PORT=$val ;;
  --db-port) DB_PORT=$val ;;
  --data-disk-gb) DATA_DISK_GB=$val ;;
  --disk-sku) DISK_SKU=$val ;;
  --stonith) STONITH=$val ;;
  --share-account) SHARE_ACCOUNT=$val ;;
  --share-gb) SHARE_GB=$val ;;
  --secret-file) SECRET_FILE=$val ;;
  --hainit-url) HAINIT_URL_OPT=$val ;;
  --hainit-sha256) HAINIT_SHA256_OPT=$val ;;
  *) bad_input "unknown option $opt (see --help)" ;;
  esac
done

# shellcheck source=scripts/azure/deploy-steps.sh
. "$HERE/azure/deploy-steps.sh"
# shellcheck source=scripts/azure/image.sh
. "$HERE/azure/image.sh"

validate_inputs
validate_share_inputs
load_secret create
WORK=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/hainit-deploy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

connect
choose_image
deploy_resource_group
deploy_network
deploy_share
deploy_load_balancers
if [[ $STONITH == sbd ]]; then
  deploy_sbd_disk
else
  deploy_fence_role
fi
for i in 0 1; do
  deploy_db_vm "$i"
done
for i in "${!WEB_NAME_LIST[@]}"; do
  deploy_web_vm "$i"
done
summary

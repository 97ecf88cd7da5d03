# shellcheck shell=bash
# The steps of scripts/deploy-azure.sh (sourced after its options are parsed; see its header).
# Names of the resources it creates in the resource group:
VNET=hainit-vnet
DB_SUBNET_NAME=db
WEB_SUBNET_NAME=web
DB_NSG=hainit-db-nsg
WEB_NSG=hainit-web-nsg
NAT=hainit-nat
NAT_IP=hainit-nat-ip
DB_AVSET=hainit-db-avset
WEB_AVSET=hainit-web-avset
ILB=hainit-db-lb
PLB=hainit-web-lb
PLB_IP=hainit-web-ip
# Azure's minimum probe interval; two failed probes take a backend out (reference §5.1).
PROBE_INTERVAL=5
PROBE_THRESHOLD=2
# --stonith sbd: the shared disk, its size (the smallest Premium SSD) and where the db VMs see it.
SBD_DISK_GB=4
SBD_LUN=1

# split_into ARRAY VALUE: the words of a space- or comma-separated list.
split_into() {
  local -n out=$1
  IFS=$', \t\n' read -ra out <<<"$2" || true
}

cidr_within() { # SUBNET VNET: SUBNET lies inside VNET
  local s v sb=${1#*/} vb=${2#*/}
  s=$(ip_int "${1%/*}") && v=$(ip_int "${2%/*}") || return 1
  ((sb >= vb)) && (((s >> (32 - vb)) == (v >> (32 - vb))))
}

validate_inputs() {
  ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))) || bad_input "bash 4.4 or newer is needed"
  [[ $RESOURCE_GROUP =~ ^[A-Za-z0-9._()-]{1,89}[A-Za-z0-9_()-]$ ]] || bad_input "--resource-group '$RESOURCE_GROUP' is not a valid resource group name"
  [[ $LOCATION =~ ^[a-z0-9]+$ ]] || bad_input "--location '$LOCATION' is not an Azure region name (e.g. westeurope)"
  [[ $CLUSTER =~ ^[a-z][a-z0-9-]{0,30}$ ]] || bad_input "--cluster '$CLUSTER': 1-31 of a-z, 0-9 and - starting with a letter"
  [[ $ADMIN_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || bad_input "--admin-user '$ADMIN_USER' is not a Linux user name"
  split_into DB_NAME_LIST "$DB_NAMES"
  split_into DB_IP_LIST "$DB_IPS"
  split_into WEB_NAME_LIST "$WEB_NAMES"
  split_into WEB_IP_LIST "$WEB_IPS"
  split_into ZONE_LIST "$ZONES"
  [[ ${#DB_NAME_LIST[@]} -eq 2 ]] || bad_input "--db-names '$DB_NAMES': exactly two db VMs (the DRBD pair)"
  [[ ${#DB_IP_LIST[@]} -eq 2 ]] || bad_input "--db-ips '$DB_IPS': one address per db VM"
  [[ ${#WEB_NAME_LIST[@]} -ge 1 ]] || bad_input "--web-names: at least one web VM"
  [[ ${#WEB_IP_LIST[@]} -eq ${#WEB_NAME_LIST[@]} ]] || bad_input "--web-ips '$WEB_IPS': one address per web VM (${#WEB_NAME_LIST[@]})"
  local n z
  for n in "${DB_NAME_LIST[@]}" "${WEB_NAME_LIST[@]}"; do
    host_ok "$n" || bad_input "VM name '$n': 1-63 of a-z, 0-9 and - (it is also the host name)"
  done
  [[ $(printf '%s\n' "${DB_NAME_LIST[@]}" "${WEB_NAME_LIST[@]}" | sort | uniq -d) == "" ]] || bad_input "VM names must be unique"
  for z in "${ZONE_LIST[@]}"; do
    [[ $z =~ ^[123]$ ]] || bad_input "--zones '$ZONES': zones are 1, 2 or 3"
  done
  valid_cidr "$VNET_CIDR" || bad_input "--vnet-cidr '$VNET_CIDR' is not a network address/prefix (/8../29)"
  for n in "$DB_SUBNET" "$WEB_SUBNET"; do
    valid_cidr "$n" || bad_input "subnet '$n' is not a network address/prefix (/8../29)"
    cidr_within "$n" "$VNET_CIDR" || bad_input "subnet $n is not inside --vnet-cidr $VNET_CIDR"
  done
  ! cidr_within "$DB_SUBNET" "$WEB_SUBNET" && ! cidr_within "$WEB_SUBNET" "$DB_SUBNET" ||
    bad_input "--db-subnet $DB_SUBNET and --web-subnet $WEB_SUBNET overlap"
  for n in "${DB_IP_LIST[@]}" "$VIP"; do
    in_subnet "$n" "$DB_SUBNET" || bad_input "address '$n' is not a usable host of --db-subnet $DB_SUBNET"
  done
  for n in "${WEB_IP_LIST[@]}"; do
    in_subnet "$n" "$WEB_SUBNET" || bad_input "address '$n' is not a usable host of --web-subnet $WEB_SUBNET"
  done
  [[ $(printf '%s\n' "${DB_IP_LIST[@]}" "$VIP" "${WEB_IP_LIST[@]}" | sort | uniq -d) == "" ]] ||
    bad_input "every VM address and the VIP must differ"
  valid_port "$PROBE_PORT" || bad_input "--probe-port '$PROBE_PORT' is not a TCP port"
  valid_port "$DB_PORT" || bad_input "--db-port '$DB_PORT' is not a TCP port"
  [[ $PROBE_PORT != "$DB_PORT" ]] || bad_input "--probe-port must differ from --db-port: the probe follows Pacemaker, not mysqld (reference §5.4)"
  [[ $DATA_DISK_GB =~ ^[0-9]+$ ]] && ((DATA_DISK_GB >= 4 && DATA_DISK_GB <= 32767)) || bad_input "--data-disk-gb '$DATA_DISK_GB': 4..32767"
  [[ $STONITH == azure-arm || $STONITH == sbd ]] || bad_input "--stonith '$STONITH': azure-arm or sbd"
  [[ -z $IMAGE_PLAN || $IMAGE_PLAN =~ ^[^:]+:[^:]+:[^:]+$ ]] || bad_input "--image-plan '$IMAGE_PLAN': publisher:product:name"
  [[ $OS_DISK_GB =~ ^[0-9]+$ ]] && ((OS_DISK_GB >= 4 && OS_DISK_GB <= 4095)) || bad_input "--os-disk-gb '$OS_DISK_GB': 4..4095"
  if [[ -n $HAINIT_URL_OPT ]]; then
    [[ $HAINIT_URL_OPT =~ ^https?://[^[:space:]\"]+$ ]] || bad_input "--hainit-url '$HAINIT_URL_OPT' is not an http(s) URL"
    [[ $HAINIT_SHA256_OPT =~ ^[0-9a-f]{64}$ ]] || bad_input "--hainit-url needs --hainit-sha256 (64 lowercase hex digits)"
  elif [[ -n $HAINIT_SHA256_OPT ]]; then
    bad_input "--hainit-sha256 without --hainit-url"
  fi
  if [[ -n $SSH_KEY ]]; then
    [[ -r $SSH_KEY ]] || bad_input "--ssh-key $SSH_KEY is not readable"
    SSH_ARGS=(--ssh-key-values "$SSH_KEY")
  elif [[ -r $HOME/.ssh/id_ed25519.pub ]]; then
    SSH_ARGS=(--ssh-key-values "$HOME/.ssh/id_ed25519.pub")
  elif [[ -r $HOME/.ssh/id_rsa.pub ]]; then
    SSH_ARGS=(--ssh-key-values "$HOME/.ssh/id_rsa.pub")
  else
    SSH_ARGS=(--generate-ssh-keys)
  fi
  PEERS_TAG="${DB_NAME_LIST[0]}=${DB_IP_LIST[0]},${DB_NAME_LIST[1]}=${DB_IP_LIST[1]}"
  FENCE_ROLE="hainit-fence-$RESOURCE_GROUP"
  SBD_DISK="$CLUSTER-sbd"
  # A shared disk attaches to VMs in other zones only when it is zone-redundant.
  if [[ ${#ZONE_LIST[@]} -eq 0 ]]; then SBD_SKU=Premium_LRS; else SBD_SKU=Premium_ZRS; fi
}

# Log in check and subscription.
connect() {
  local sub=""
  if command -v az >/dev/null && sub=$(az account show --query id -o tsv 2>/dev/null) && [[ -n $sub ]]; then
    SUBSCRIPTION=$sub
  elif [[ $DRY_RUN -eq 1 ]]; then
    OFFLINE=1
    SUBSCRIPTION="<subscription-id>"
    say "dry run without a working 'az login': assuming an empty subscription"
  else
    die "az account show failed: install the Azure CLI and run 'az login' (or try --dry-run)"
  fi
  RG_ID="/subscriptions/$SUBSCRIPTION/resourceGroups/$RESOURCE_GROUP"
}

# The deployment's resource group (a dry run asks nothing more about a new one).
deploy_resource_group() {
  if present group show -n "$RESOURCE_GROUP"; then
    say "resource group $RESOURCE_GROUP: exists"
  else
    az_do group create -n "$RESOURCE_GROUP" -l "$LOCATION" -o none
    if [[ $DRY_RUN -eq 1 && $OFFLINE -eq 0 ]]; then
      OFFLINE=1
      say "dry run: resource group $RESOURCE_GROUP is new, so is everything in it"
    fi
  fi
}

nsg_rule() { # NSG NAME PRIORITY ACCESS PROTOCOL SOURCE PORTS…
  local nsg=$1 name=$2 prio=$3 access=$4 proto=$5 src=$6
  shift 6
  ensure "NSG rule $nsg/$name" network nsg rule show -g "$RESOURCE_GROUP" --nsg-name "$nsg" -n "$name" -- \
    network nsg rule create -g "$RESOURCE_GROUP" --nsg-name "$nsg" -n "$name" --priority "$prio" \
    --direction Inbound --access "$access" --protocol "$proto" --source-address-prefixes "$src" \
    --source-port-ranges '*' --destination-address-prefixes '*' --destination-port-ranges "$@" -o none
}

# A subnet with its NSG and the NAT gateway; an existing subnet gets whichever is missing.
subnet() { # NAME PREFIX NSG
  local name=$1 prefix=$2 nsg=$3 show=(network vnet subnet show -g "$RESOURCE_GROUP" --vnet-name "$VNET" -n "$1")
  if ! present "${show[@]}"; then
    az_do network vnet subnet create -g "$RESOURCE_GROUP" --vnet-name "$VNET" -n "$name" \
      --address-prefixes "$prefix" --network-security-group "$nsg" --nat-gateway "$NAT" -o none
    return
  fi
  local have_nat have_nsg
  have_nat=$(az_get "${show[@]}" --query natGateway.id -o tsv)
  have_nsg=$(az_get "${show[@]}" --query networkSecurityGroup.id -o tsv)
  if [[ -z $have_nat || -z $have_nsg ]]; then
    az_do network vnet subnet update -g "$RESOURCE_GROUP" --vnet-name "$VNET" -n "$name" \
      --network-security-group "$nsg" --nat-gateway "$NAT" -o none
  else
    say "subnet $name: exists with an NSG and a NAT gateway, left as it is"
  fi
}

deploy_network() {
  local rg=(-g "$RESOURCE_GROUP")
  ensure "NSG $DB_NSG" network nsg show "${rg[@]}" -n "$DB_NSG" -- network nsg create "${rg[@]}" -n "$DB_NSG" -l "$LOCATION" -o none
  # The db subnet takes MariaDB from the web tier, the probe from the load balancer, and the
  # cluster's own traffic (pcsd 2224, DRBD 7789, corosync 5404-5406/udp); nothing else.
  nsg_rule "$DB_NSG" allow-mysql-from-web 100 Allow Tcp "$WEB_SUBNET" "$DB_PORT"
  nsg_rule "$DB_NSG" allow-lb-probe 110 Allow Tcp AzureLoadBalancer "$PROBE_PORT"
  nsg_rule "$DB_NSG" allow-cluster-tcp 120 Allow Tcp "$DB_SUBNET" 2224 7789
  nsg_rule "$DB_NSG" allow-cluster-udp 130 Allow Udp "$DB_SUBNET" 5404-5406
  nsg_rule "$DB_NSG" allow-ssh-vnet 140 Allow Tcp VirtualNetwork 22
  nsg_rule "$DB_NSG" deny-vnet 4000 Deny '*' VirtualNetwork '*'
  ensure "NSG $WEB_NSG" network nsg show "${rg[@]}" -n "$WEB_NSG" -- network nsg create "${rg[@]}" -n "$WEB_NSG" -l "$LOCATION" -o none
  # A Standard load balancer's backends are closed until an NSG opens them.
  nsg_rule "$WEB_NSG" allow-http 100 Allow Tcp Internet 80
  nsg_rule "$WEB_NSG" allow-ssh-vnet 140 Allow Tcp VirtualNetwork 22

  ensure "public IP $NAT_IP" network public-ip show "${rg[@]}" -n "$NAT_IP" -- \
    network public-ip create "${rg[@]}" -n "$NAT_IP" -l "$LOCATION" --sku Standard --allocation-method Static -o none
  ensure "NAT gateway $NAT" network nat gateway show "${rg[@]}" -n "$NAT" -- \
    network nat gateway create "${rg[@]}" -n "$NAT" -l "$LOCATION" --public-ip-addresses "$NAT_IP" --idle-timeout 4 -o none

  ensure "VNet $VNET" network vnet show "${rg[@]}" -n "$VNET" -- \
    network vnet create "${rg[@]}" -n "$VNET" -l "$LOCATION" --address-prefixes "$VNET_CIDR" -o none
  subnet "$DB_SUBNET_NAME" "$DB_SUBNET" "$DB_NSG"
  subnet "$WEB_SUBNET_NAME" "$WEB_SUBNET" "$WEB_NSG"

  if [[ ${#ZONE_LIST[@]} -eq 0 ]]; then
    local avset
    for avset in "$DB_AVSET" "$WEB_AVSET"; do
      ensure "availability set $avset" vm availability-set show "${rg[@]}" -n "$avset" -- \
        vm availability-set create "${rg[@]}" -n "$avset" -l "$LOCATION" \
        --platform-fault-domain-count 2 --platform-update-domain-count 5 -o none
    done
  fi
}

deploy_load_balancers() {
  local rg=(-g "$RESOURCE_GROUP") zonal=()
  [[ ${#ZONE_LIST[@]} -eq 0 ]] || zonal=(--frontend-ip-zone 1 2 3)
  # Internal: the VIP. The LB rewrites the destination to the backend's own address (no floating
  # IP), and its probe finds the node where Pacemaker runs ocf:heartbeat:azure-lb.
  ensure "internal load balancer $ILB" network lb show "${rg[@]}" -n "$ILB" -- \
    network lb create "${rg[@]}" -n "$ILB" -l "$LOCATION" --sku Standard --vnet-name "$VNET" \
    --subnet "$DB_SUBNET_NAME" --private-ip-address "$VIP" --frontend-ip-name db-frontend \
    --backend-pool-name db-pool "${zonal[@]}" -o none
  local probe=(network lb probe show "${rg[@]}" --lb-name "$ILB" -n db-probe) port
  if present "${probe[@]}"; then
    port=$(az_get "${probe[@]}" --query port -o tsv)
    [[ $port == "$PROBE_PORT" ]] || die "probe db-probe of $ILB uses port $port, hainit's probe port is $PROBE_PORT: fix one of them"
    say "probe $ILB/db-probe: exists on port $port"
  else
    az_do network lb probe create "${rg[@]}" --lb-name "$ILB" -n db-probe --protocol Tcp --port "$PROBE_PORT" \
      --interval "$PROBE_INTERVAL" --probe-threshold "$PROBE_THRESHOLD" -o none
  fi
  ensure "rule $ILB/mysql" network lb rule show "${rg[@]}" --lb-name "$ILB" -n mysql -- \
    network lb rule create "${rg[@]}" --lb-name "$ILB" -n mysql --protocol Tcp --frontend-port "$DB_PORT" \
    --backend-port "$DB_PORT" --frontend-ip-name db-frontend --backend-pool-name db-pool --probe-name db-probe \
    --floating-ip false --idle-timeout 30 -o none

  local pip_zone=()
  [[ ${#ZONE_LIST[@]} -eq 0 ]] || pip_zone=(--zone 1 2 3)
  ensure "public IP $PLB_IP" network public-ip show "${rg[@]}" -n "$PLB_IP" -- \
    network public-ip create "${rg[@]}" -n "$PLB_IP" -l "$LOCATION" --sku Standard --allocation-method Static \
    "${pip_zone[@]}" -o none
  ensure "public load balancer $PLB" network lb show "${rg[@]}" -n "$PLB" -- \
    network lb create "${rg[@]}" -n "$PLB" -l "$LOCATION" --sku Standard --public-ip-address "$PLB_IP" \
    --frontend-ip-name web-frontend --backend-pool-name web-pool -o none
  ensure "probe $PLB/web-healthz" network lb probe show "${rg[@]}" --lb-name "$PLB" -n web-healthz -- \
    network lb probe create "${rg[@]}" --lb-name "$PLB" -n web-healthz --protocol Http --port 80 --path /healthz \
    --interval "$PROBE_INTERVAL" --probe-threshold "$PROBE_THRESHOLD" -o none
  # Outbound goes through the NAT gateway, not the load balancer's SNAT.
  ensure "rule $PLB/http" network lb rule show "${rg[@]}" --lb-name "$PLB" -n http -- \
    network lb rule create "${rg[@]}" --lb-name "$PLB" -n http --protocol Tcp --frontend-port 80 --backend-port 80 \
    --frontend-ip-name web-frontend --backend-pool-name web-pool --probe-name web-healthz \
    --disable-outbound-snat true --idle-timeout 4 -o none
  PUBLIC_IP=""
  if present network public-ip show "${rg[@]}" -n "$PLB_IP"; then
    PUBLIC_IP=$(az_get network public-ip show "${rg[@]}" -n "$PLB_IP" --query ipAddress -o tsv)
  fi
  [[ -n $PUBLIC_IP ]] || PUBLIC_IP="<public-ip>"
  SITE_URL="http://$PUBLIC_IP"
}

# fence_azure_arm's least privilege (reference §4.4), assignable only in this resource group.
deploy_fence_role() {
  local found
  found=$(az_get role definition list --name "$FENCE_ROLE" --scope "$RG_ID" --custom-role-only true --query "[0].id" -o tsv)
  if [[ -n $found ]]; then
    say "role $FENCE_ROLE: exists, left as it is"
    return
  fi
  local actions='"Microsoft.Compute/*/read", "Microsoft.Compute/virtualMachines/powerOff/action", "Microsoft.Compute/virtualMachines/start/action"'
  az_do role definition create --role-definition "{\"Name\": \"$FENCE_ROLE\", \"IsCustom\": true, \"Description\": \"fence_azure_arm of the hainit DB pair in $RESOURCE_GROUP: read VMs, power them off, start them\", \"Actions\": [$actions], \"NotActions\": [], \"AssignableScopes\": [\"$RG_ID\"]}" -o none
  wait_for_fence_role
}

# The db VMs are created with the role assigned (fence_role_at_creation): a new custom role must be
# visible first, or that creation fails.
wait_for_fence_role() {
  [[ $DRY_RUN -eq 0 ]] || return 0
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    [[ -z $(az_get role definition list --name "$FENCE_ROLE" --scope "$RG_ID" --custom-role-only true --query "[0].id" -o tsv) ]] || return 0
    say "role $FENCE_ROLE is not visible yet (attempt $try/10); retrying in ${HAINIT_RETRY_DELAY:-15}s"
    sleep "${HAINIT_RETRY_DELAY:-15}"
  done
  die "role $FENCE_ROLE was created but never became visible; re-run later"
}

# --stonith azure-arm: `az vm create` arguments that give the db VM its system-assigned identity
# with the fence role, in the same deployment that creates the VM. The role is assigned seconds
# after the VM exists, minutes before hainit configures fence_azure_arm (docs/azure.md); hainit's
# ready step still waits until the fence device runs (a role can take minutes to propagate).
fence_role_at_creation() {
  printf '%s\n' --assign-identity '[system]' --role "$FENCE_ROLE" --scope "$RG_ID"
}

# The web tier's secrets, derived from the shared secret by hainit itself (`hainit secrets --tier
# web`: the web role's own purposes, one JSON line). Web VMs get these, never the shared secret.
# The secret reaches hainit on stdin, never in argv.
web_tier_secrets() {
  [[ -z ${WEB_SECRETS:-} ]] || return 0
  local bin=${HAINIT_BIN:-}
  if [[ -z $bin ]]; then
    bin=$(command -v hainit || true)
    [[ -n $bin ]] || bin="$HERE/../target/x86_64-unknown-linux-musl/release/hainit"
  fi
  [[ -x $bin ]] || bad_input "hainit is needed to derive the web tier's secrets: put it on PATH, set HAINIT_BIN, or run make build (looked for $bin)"
  WEB_SECRETS=$("$bin" secrets --tier web --secret-file - <<<"$SECRET") || die "$bin secrets --tier web failed"
  [[ $WEB_SECRETS == '{'*'}' ]] || die "$bin secrets --tier web printed no JSON object"
}

# render_custom_data ROLE OUT: cloud-init/ROLE.yaml with its @@…@@ fields filled, mode 0600.
render_custom_data() {
  local t
  t=$(<"$CLOUD_INIT_DIR/$1.yaml")
  if [[ $1 == web ]]; then
    web_tier_secrets
    t=${t//@@WEB_SECRETS@@/"$WEB_SECRETS"}
  else
    t=${t//@@SECRET@@/"$SECRET"}
  fi
  t=${t//@@DB_PORT@@/"$DB_PORT"}
  t=${t//@@PROBE_PORT@@/"$PROBE_PORT"}
  t=${t//@@WEB_SUBNET@@/"$WEB_SUBNET"}
  t=${t//@@SITE_URL@@/"$SITE_URL"}
  t=${t//@@HAINIT_URL@@/"$HAINIT_URL_OPT"}
  t=${t//@@HAINIT_SHA256@@/"$HAINIT_SHA256_OPT"}
  if [[ $STONITH == sbd ]]; then
    t=${t//@@STONITH@@/sbd}
    t=${t//@@SBD_DEVICE@@/"/dev/disk/azure/scsi1/lun$SBD_LUN"}
  else
    t=${t//@@STONITH@@/auto}
    t=${t//@@SBD_DEVICE@@/null}
  fi
  [[ ! $t =~ @@[A-Z0-9_]+@@ ]] || die "$CLOUD_INIT_DIR/$1.yaml has a field this script does not fill: ${BASH_REMATCH[0]}"
  (umask 077 && printf '%s\n' "$t" >"$2")
}

# vm_create NAME ROLE NIC AVSET ZONE EXTRA…: the VM with the hainit tags and custom-data.
vm_create() {
  local name=$1 role=$2 nic=$3 avset=$4 zone=$5 placement data="$WORK/$2.yaml"
  shift 5
  [[ -f $data ]] || render_custom_data "$role" "$data"
  if [[ -n $zone ]]; then placement=(--zone "$zone"); else placement=(--availability-set "$avset"); fi
  local tags=("hainit-role=$role" "hainit-cluster=$CLUSTER" "hainit-vip=$VIP")
  [[ $role == web ]] || tags+=("hainit-peers=$PEERS_TAG")
  [[ $role != web ]] || tags+=("hainit-share=$SHARE_SOURCE")
  az_do vm create -g "$RESOURCE_GROUP" -n "$name" -l "$LOCATION" --computer-name "$name" \
    --image "$IMAGE_REF" "${IMAGE_ARGS[@]}" --size "$VM_SIZE" --nics "$nic" "${placement[@]}" \
    --admin-username "$ADMIN_USER" "${SSH_ARGS[@]}" --os-disk-name "$name-os" "$@" \
    --custom-data "@$data" --tags "${tags[@]}" -o none
}

zone_of() { [[ ${#ZONE_LIST[@]} -eq 0 ]] || printf '%s' "${ZONE_LIST[$(($1 % ${#ZONE_LIST[@]}))]}"; }

deploy_db_vm() {
  local i=$1 name=${DB_NAME_LIST[$1]} ip=${DB_IP_LIST[$1]} zone rg=(-g "$RESOURCE_GROUP")
  zone=$(zone_of "$i")
  local disk="$name-data" zone_arg=()
  [[ -z $zone ]] || zone_arg=(--zone "$zone")
  ensure "disk $disk" disk show "${rg[@]}" -n "$disk" -- \
    disk create "${rg[@]}" -n "$disk" -l "$LOCATION" --size-gb "$DATA_DISK_GB" --sku "$DISK_SKU" "${zone_arg[@]}" -o none
  ensure "NIC $name-nic" network nic show "${rg[@]}" -n "$name-nic" -- \
    network nic create "${rg[@]}" -n "$name-nic" -l "$LOCATION" --vnet-name "$VNET" --subnet "$DB_SUBNET_NAME" \
    --private-ip-address "$ip" --lb-name "$ILB" --lb-address-pools db-pool -o none
  local existed=0
  if present vm show "${rg[@]}" -n "$name"; then
    existed=1
    say "VM $name: exists"
  elif [[ $STONITH == sbd ]]; then
    # Disks attached at creation take LUNs in order: the data disk 0, the SBD disk 1, before
    # hainit's first run looks for them. Shared disks allow no host caching.
    vm_create "$name" db "$name-nic" "$DB_AVSET" "$zone" --attach-data-disks "$disk" "$SBD_DISK" \
      --data-disk-caching None
  else
    local identity
    mapfile -t identity < <(fence_role_at_creation)
    vm_create "$name" db "$name-nic" "$DB_AVSET" "$zone" --attach-data-disks "$disk" --data-disk-caching None \
      "${identity[@]}"
  fi
  if [[ $DRY_RUN -eq 0 || $existed -eq 1 ]]; then
    check_lun "$name" 0 "$disk" "data disk"
    [[ $STONITH != sbd ]] || check_lun "$name" "$SBD_LUN" "$SBD_DISK" "SBD disk"
  fi
  [[ $STONITH == sbd || $existed -eq 0 ]] || assign_fence_role "$name"
}

# An existing db VM (made before, or by hand) gets its identity and the fence role when it lacks
# them (--stonith azure-arm); hainit refuses to form the cluster on a VM without an identity.
assign_fence_role() { # NAME
  local name=$1 rg=(-g "$RESOURCE_GROUP") principal
  if [[ $OFFLINE -eq 1 ]]; then
    principal="<principal-id-of-$name>"
  else
    principal=$(az_get vm show "${rg[@]}" -n "$name" --query identity.principalId -o tsv)
    if [[ -z $principal ]]; then
      az_do vm identity assign "${rg[@]}" -n "$name" -o none
      principal=$(az_get vm show "${rg[@]}" -n "$name" --query identity.principalId -o tsv)
    fi
    [[ -n $principal ]] || principal="<principal-id-of-$name>"
  fi
  local assigned
  assigned=$(az_get role assignment list --scope "$RG_ID" \
    --query "length([?principalId=='$principal' && roleDefinitionName=='$FENCE_ROLE'])" -o tsv)
  if [[ ${assigned:-0} -gt 0 ]]; then
    say "role $FENCE_ROLE for $name: assigned"
    return
  fi
  # A new role definition or identity can take a while to reach Azure AD: retry.
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    az_do role assignment create --assignee-object-id "$principal" --assignee-principal-type ServicePrincipal \
      --role "$FENCE_ROLE" --scope "$RG_ID" -o none && return
    say "role assignment for $name failed (attempt $try/10); retrying in ${HAINIT_RETRY_DELAY:-15}s"
    sleep "${HAINIT_RETRY_DELAY:-15}"
  done
  die "could not assign role $FENCE_ROLE to $name's identity $principal"
}

# The SBD disk both db VMs attach (--stonith sbd): an Azure shared disk for two VMs. An existing
# disk of that name that cannot be shared stops the run.
deploy_sbd_disk() {
  local rg=(-g "$RESOURCE_GROUP") shares
  if present disk show "${rg[@]}" -n "$SBD_DISK"; then
    shares=$(az_get disk show "${rg[@]}" -n "$SBD_DISK" --query maxShares -o tsv)
    [[ ${shares:-1} -ge 2 ]] || die "disk $SBD_DISK exists but is not a shared disk (maxShares ${shares:-1}): both db VMs must attach it for SBD; fix by hand"
    say "shared disk $SBD_DISK: exists (maxShares $shares)"
  else
    az_do disk create "${rg[@]}" -n "$SBD_DISK" -l "$LOCATION" --size-gb "$SBD_DISK_GB" --sku "$SBD_SKU" \
      --max-shares 2 -o none
  fi
}

# LUN N of a db VM must hold DISK: attach it when the slot is empty, stop at anything else.
check_lun() { # NAME LUN DISK WHAT
  local found
  [[ $OFFLINE -eq 0 ]] || return 0
  found=$(az_get vm show -g "$RESOURCE_GROUP" -n "$1" --query "storageProfile.dataDisks[?lun==\`$2\`].name | [0]" -o tsv)
  if [[ -z $found ]]; then
    az_do vm disk attach -g "$RESOURCE_GROUP" --vm-name "$1" --name "$3" --lun "$2" --caching None -o none
  elif [[ $found != "$3" ]]; then
    die "VM $1 has disk $found at LUN $2, not $3: hainit would take $found as its $4; fix by hand"
  else
    say "VM $1: LUN $2 is $3"
  fi
}

deploy_web_vm() {
  local i=$1 name=${WEB_NAME_LIST[$1]} ip=${WEB_IP_LIST[$1]} zone rg=(-g "$RESOURCE_GROUP")
  zone=$(zone_of "$i")
  ensure "NIC $name-nic" network nic show "${rg[@]}" -n "$name-nic" -- \
    network nic create "${rg[@]}" -n "$name-nic" -l "$LOCATION" --vnet-name "$VNET" --subnet "$WEB_SUBNET_NAME" \
    --private-ip-address "$ip" --lb-name "$PLB" --lb-address-pools web-pool -o none
  if present vm show "${rg[@]}" -n "$name"; then
    say "VM $name: exists, left as it is"
    tag_web_vm_share "$name"
  else
    vm_create "$name" web "$name-nic" "$WEB_AVSET" "$zone"
  fi
}

summary() {
  local file=${SECRET_FILE:-$(default_secret_file "$RESOURCE_GROUP")}
  [[ -n ${HAINIT_SECRET:-} ]] && file='(HAINIT_SECRET)'
  cat >&2 <<EOF
$SCRIPT_NAME: done$([[ $DRY_RUN -eq 1 ]] && echo " (dry run: nothing was changed)").
  WordPress:  $SITE_URL/   (first boot takes a few minutes; /healthz answers when a web node is up)
  uploads:    NFS share $SHARE_SOURCE (tag hainit-share), mounted by every web node
  admin user: wpadmin, password hex(HMAC-SHA256(secret, "hainit/wordpress-admin")), secret in $file
  failover drill: scripts/azure/drill.py --resource-group $RESOURCE_GROUP
EOF
}

# ---- the web tier's shared uploads: an Azure Files NFS 4.1 share (docs/web-role.md) -------------
# A premium FileStorage account reached only from the web subnet (its Microsoft.Storage service
# endpoint and the account's network rule; every other network denied), no account key anywhere
# (shared-key access off: NFS authenticates by network, the share is made through ARM), secure
# transfer off (NFS 4.1 on Azure Files has no TLS), root squash off (hainit hands the share's root
# to the web user). hainit mounts it on every web node from the tag hainit-share.
SHARE_NAME=wpcontent

# The account's default name: global, so derived from the resource group (stable across runs).
default_share_account() {
  printf 'hainit%s' "$(printf '%s' "$RESOURCE_GROUP" | sha256sum | cut -c1-12)"
}

validate_share_inputs() {
  [[ -n $SHARE_ACCOUNT ]] || SHARE_ACCOUNT=$(default_share_account)
  [[ $SHARE_ACCOUNT =~ ^[a-z0-9]{3,24}$ ]] || bad_input "--share-account '$SHARE_ACCOUNT': 3-24 of a-z and 0-9 (a storage account name)"
  [[ $SHARE_GB =~ ^[0-9]+$ ]] && ((SHARE_GB >= 100 && SHARE_GB <= 102400)) || bad_input "--share-gb '$SHARE_GB': 100..102400 (premium file shares start at 100 GiB)"
  if [[ ${#ZONE_LIST[@]} -eq 0 ]]; then SHARE_SKU=Premium_LRS; else SHARE_SKU=Premium_ZRS; fi
  # What mount(8) and the tag call the export: host:/account/share.
  SHARE_SOURCE="$SHARE_ACCOUNT.file.core.windows.net:/$SHARE_ACCOUNT/$SHARE_NAME"
}

deploy_share() {
  local rg=(-g "$RESOURCE_GROUP") subnet=(network vnet subnet show -g "$RESOURCE_GROUP" --vnet-name "$VNET" -n "$WEB_SUBNET_NAME")
  local endpoints
  endpoints=$(az_get "${subnet[@]}" --query "length(serviceEndpoints[?service=='Microsoft.Storage'] || \`[]\`)" -o tsv)
  if [[ ${endpoints:-0} -eq 0 ]]; then
    az_do network vnet subnet update -g "$RESOURCE_GROUP" --vnet-name "$VNET" -n "$WEB_SUBNET_NAME" \
      --service-endpoints Microsoft.Storage -o none
  else
    say "subnet $WEB_SUBNET_NAME: has the Microsoft.Storage service endpoint"
  fi
  local account=(storage account show "${rg[@]}" -n "$SHARE_ACCOUNT")
  if present "${account[@]}"; then
    local kind https
    kind=$(az_get "${account[@]}" --query kind -o tsv)
    https=$(az_get "${account[@]}" --query enableHttpsTrafficOnly -o tsv)
    [[ $kind == FileStorage ]] || die "storage account $SHARE_ACCOUNT is a $kind account: NFS shares need FileStorage (premium); pick another --share-account"
    [[ ${https,,} != true ]] || die "storage account $SHARE_ACCOUNT requires secure transfer, which NFS 4.1 mounts cannot do: turn it off (az storage account update --https-only false) or pick another --share-account"
    say "storage account $SHARE_ACCOUNT: exists ($kind)"
  else
    az_do storage account create "${rg[@]}" -n "$SHARE_ACCOUNT" -l "$LOCATION" --kind FileStorage --sku "$SHARE_SKU" \
      --https-only false --min-tls-version TLS1_2 --allow-blob-public-access false --allow-shared-key-access false \
      --public-network-access Enabled --default-action Deny -o none
  fi
  local rules
  rules=$(az_get storage account network-rule list "${rg[@]}" --account-name "$SHARE_ACCOUNT" \
    --query "length(virtualNetworkRules[?ends_with(virtualNetworkResourceId, '/subnets/$WEB_SUBNET_NAME')])" -o tsv)
  if [[ ${rules:-0} -eq 0 ]]; then
    az_do storage account network-rule add "${rg[@]}" --account-name "$SHARE_ACCOUNT" --vnet-name "$VNET" \
      --subnet "$WEB_SUBNET_NAME" -o none
  else
    say "storage account $SHARE_ACCOUNT: the web subnet may reach it"
  fi
  ensure "NFS share $SHARE_ACCOUNT/$SHARE_NAME" storage share-rm show "${rg[@]}" --storage-account "$SHARE_ACCOUNT" -n "$SHARE_NAME" -- \
    storage share-rm create "${rg[@]}" --storage-account "$SHARE_ACCOUNT" -n "$SHARE_NAME" --enabled-protocols NFS \
    --root-squash NoRootSquash --quota "$SHARE_GB" -o none
}

# An existing web VM without the share's tag gets it (hainit mounts the share at its next run).
tag_web_vm_share() { # NAME
  local have
  have=$(az_get vm show -g "$RESOURCE_GROUP" -n "$1" --query 'tags."hainit-share"' -o tsv)
  if [[ $have == "$SHARE_SOURCE" ]]; then
    return
  fi
  az_do vm update -g "$RESOURCE_GROUP" -n "$1" --set "tags.hainit-share=$SHARE_SOURCE" -o none
  say "VM $1: tagged hainit-share=$SHARE_SOURCE; run hainit on it again (systemctl restart hainit) to mount the share"
}

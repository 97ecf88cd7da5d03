# shellcheck shell=bash
# The image a deployment boots (sourced by scripts/deploy-azure.sh after scripts/azure/lib.sh;
# docs/azure-image.md). `scripts/deploy-azure.sh --dry-run` prints the upload it would do.
#
# Default: hainit's Debian 12 image, target/images/hainit-debian12.vhd (make azure-image), uploaded
# once as the managed image hainit-debian12-<first 12 hex digits of its sha256> in --image-group:
#   az disk create --upload-type Upload (the VHD's exact byte size, generation 2)
#   az disk grant-access --access-level Write   -> a write SAS for one hour
#   azcopy copy VHD SAS --blob-type PageBlob     (what Azure documents for a direct upload)
#   az disk revoke-access                        (also when the copy fails)
#   az image create --source DISK --hyper-v-generation V2, tagged hainit-sha256=<sha256>
#   az disk delete                               (the image keeps its own copy)
# Re-running is safe: an image of that name whose tag carries the same sha256 is reused, a VHD of
# another sha256 gets another name; a leftover upload disk from an interrupted run is deleted and
# the upload starts over. VMs from it are created with --security-type Standard (docs/azure-image.md:
# a managed image cannot be Trusted Launch, and its boot loader is not signed for Secure Boot).
#
# --image IMAGE instead: a managed image (name in --image-group, or ID) or a Marketplace URN. An
# image built from a Marketplace image that has a plan (the Rocky 9 template tags it hainit-plan;
# a URN's plan is asked of Azure) needs the same plan at VM creation, or Azure refuses the VM
# (VMMarketplaceInvalidInput): without --image-plan the run stops before creating anything.

IMAGE_PREFIX=hainit-debian12
MIB=1048576

# vhd_facts VHD: sets VHD_SHA (from VHD.sha256) and VHD_BYTES, after checking that VHD is a fixed
# VHD whose virtual size is a whole number of MiB (what Azure accepts) and that its .sha256 is there.
vhd_facts() {
  local vhd=$1 footer
  [[ -f $vhd ]] || bad_input "no image file $vhd: build it with 'sudo make azure-image' (or pass --image)"
  [[ -f $vhd.sha256 ]] || bad_input "$vhd.sha256 not found: make azure-image writes it beside the VHD"
  VHD_SHA=$(cut -d' ' -f1 "$vhd.sha256")
  [[ $VHD_SHA =~ ^[0-9a-f]{64}$ ]] || bad_input "$vhd.sha256 does not start with a sha256: '$VHD_SHA'"
  VHD_BYTES=$(stat -c %s "$vhd")
  footer=$(tail -c 512 "$vhd" | od -An -tx1 -v | tr -d ' \n')
  [[ ${footer:0:16} == 636f6e6563746978 ]] || bad_input "$vhd has no VHD footer (cookie conectix)"
  [[ ${footer:120:8} == 00000002 ]] || bad_input "$vhd is not a fixed-size VHD (disk type ${footer:120:8}); Azure takes fixed only"
  (((VHD_BYTES - 512) % MIB == 0)) ||
    bad_input "$vhd: virtual size $((VHD_BYTES - 512)) bytes is not a whole number of MiB; Azure refuses it"
}

# upload_image VHD: the managed image of VHD in IMAGE_GROUP (created when missing); sets IMAGE_REF.
upload_image() {
  local vhd=$1 name disk rg=(-g "$IMAGE_GROUP") tagged
  vhd_facts "$vhd"
  name=$IMAGE_PREFIX-${VHD_SHA:0:12}
  disk=$name-upload
  IMAGE_REF="/subscriptions/$SUBSCRIPTION/resourceGroups/$IMAGE_GROUP/providers/Microsoft.Compute/images/$name"
  # The image's 4 GiB root grows to the OS disk (cloud-init's growpart).
  IMAGE_VM_ARGS=(--security-type Standard --os-disk-size-gb "$OS_DISK_GB")
  ensure "resource group $IMAGE_GROUP" group show -n "$IMAGE_GROUP" -- group create -n "$IMAGE_GROUP" -l "$LOCATION" -o none
  if present image show "${rg[@]}" -n "$name"; then
    tagged=$(az_get image show "${rg[@]}" -n "$name" --query 'tags."hainit-sha256"' -o tsv)
    [[ $tagged == "$VHD_SHA" ]] ||
      die "image $name in $IMAGE_GROUP is tagged hainit-sha256='$tagged', not this VHD's $VHD_SHA: delete it or use another --image-group"
    say "image $name: exists with this VHD's sha256, reused"
    return
  fi
  if present disk show "${rg[@]}" -n "$disk"; then
    say "disk $disk: left by an interrupted upload; deleting it and starting over"
    az_do disk revoke-access "${rg[@]}" -n "$disk" -o none
    az_do disk delete "${rg[@]}" -n "$disk" --yes -o none
  fi
  [[ $DRY_RUN -eq 1 ]] || command -v azcopy >/dev/null ||
    bad_input "azcopy is needed to upload $vhd (Azure's tool for a direct upload to a managed disk; https://aka.ms/downloadazcopy)"
  say "uploading $vhd ($VHD_BYTES bytes, sha256 $VHD_SHA) as image $name"
  az_do disk create "${rg[@]}" -n "$disk" -l "$LOCATION" --os-type Linux --hyper-v-generation V2 \
    --upload-type Upload --upload-size-bytes "$VHD_BYTES" --sku Standard_LRS --tags "hainit-sha256=$VHD_SHA" -o none
  local sas
  if [[ $DRY_RUN -eq 1 ]]; then
    az_do disk grant-access "${rg[@]}" -n "$disk" --access-level Write --duration-in-seconds 3600 \
      --query 'accessSas || accessSAS' -o tsv
    sas='<write SAS of the disk>'
  else
    sas=$(az_do disk grant-access "${rg[@]}" -n "$disk" --access-level Write --duration-in-seconds 3600 \
      --query 'accessSas || accessSAS' -o tsv)
    [[ $sas == https://* ]] || die "az disk grant-access gave no SAS URL for $disk"
  fi
  # The SAS is a write credential: never printed, revoked once the copy is done, also when it fails.
  if [[ $DRY_RUN -eq 1 ]]; then
    printf '%s\n' "$(quote azcopy copy "$vhd" "$sas" --blob-type PageBlob)"
  else
    say "+ $(quote azcopy copy "$vhd" "<write SAS of $disk>" --blob-type PageBlob)"
    if ! azcopy copy "$vhd" "$sas" --blob-type PageBlob >&2; then
      az_do disk revoke-access "${rg[@]}" -n "$disk" -o none || true
      die "azcopy could not upload $vhd to $disk (the disk stays; a re-run deletes it and starts over)"
    fi
  fi
  az_do disk revoke-access "${rg[@]}" -n "$disk" -o none
  az_do image create "${rg[@]}" -n "$name" -l "$LOCATION" --os-type Linux --hyper-v-generation V2 \
    --source "/subscriptions/$SUBSCRIPTION/resourceGroups/$IMAGE_GROUP/providers/Microsoft.Compute/disks/$disk" \
    --tags "hainit-sha256=$VHD_SHA" -o none
  az_do disk delete "${rg[@]}" -n "$disk" --yes -o none
}

# choose_image: IMAGE_REF, and IMAGE_ARGS for every `az vm create` (plan, security type, disk).
# Runs before anything of the deployment is created, so that a refused image changes nothing.
choose_image() {
  IMAGE_VM_ARGS=()
  if [[ -z $IMAGE ]]; then
    upload_image "$IMAGE_VHD"
  elif [[ $IMAGE == */providers/Microsoft.Compute/images/* ]]; then
    IMAGE_REF=$IMAGE
    marketplace_plan_of image show --ids "$IMAGE"
  elif [[ $IMAGE == */* ]]; then
    IMAGE_REF=$IMAGE
  elif [[ $IMAGE == *:* ]]; then
    IMAGE_REF=$IMAGE
    urn_plan "$IMAGE"
  else
    IMAGE_REF="/subscriptions/$SUBSCRIPTION/resourceGroups/$IMAGE_GROUP/providers/Microsoft.Compute/images/$IMAGE"
    if [[ $OFFLINE -eq 0 ]] && ! present image show -g "$IMAGE_GROUP" -n "$IMAGE"; then
      local msg="image $IMAGE not found in resource group $IMAGE_GROUP: build it (images/packer) or leave --image out for hainit's Debian 12 image"
      [[ $DRY_RUN -eq 1 ]] && say "warning: $msg" || die "$msg"
    else
      marketplace_plan_of image show -g "$IMAGE_GROUP" -n "$IMAGE"
    fi
  fi
  IMAGE_ARGS=("${IMAGE_VM_ARGS[@]}")
  if [[ -n $IMAGE_PLAN ]]; then
    local pub prod name
    IFS=: read -r pub prod name <<<"$IMAGE_PLAN"
    IMAGE_ARGS+=(--plan-publisher "$pub" --plan-product "$prod" --plan-name "$name")
  fi
}

# marketplace_plan_of SHOW-ARGS…: a managed image built from a Marketplace image with a plan carries
# it in its tag hainit-plan (images/packer/rocky9.pkr.hcl); a VM from it needs that plan.
marketplace_plan_of() {
  [[ $OFFLINE -eq 0 ]] || return 0
  local plan
  plan=$(az_get "$@" --query 'tags."hainit-plan"' -o tsv) || die "az $* failed"
  refuse_without_plan "${*: -1}" "$plan"
}

# urn_plan URN: a Marketplace image's purchase plan, as Azure states it.
urn_plan() {
  [[ $OFFLINE -eq 0 ]] || return 0
  local plan
  plan=$(az_get vm image show --urn "$1" --query "plan && join(':', [plan.publisher, plan.product, plan.name]) || ''" \
    -o tsv) || die "az vm image show --urn $1 failed"
  refuse_without_plan "$1" "$plan"
}

refuse_without_plan() { # IMAGE PLAN
  [[ -n $2 ]] || return 0
  if [[ -z $IMAGE_PLAN ]]; then
    bad_input "image $1 comes from a Marketplace image with the plan $2: Azure refuses a VM from it without that plan (VMMarketplaceInvalidInput); pass --image-plan $2 (and accept its terms once: az vm image terms accept --plan ${2##*:} --offer $(cut -d: -f2 <<<"$2") --publisher ${2%%:*})"
  fi
  [[ $IMAGE_PLAN == "$2" ]] || say "warning: --image-plan $IMAGE_PLAN differs from the image's plan $2"
}

# hainit image for Rocky Linux 9 (pcs 0.11, DRBD 9 from ELRepo, MariaDB 10.5, PHP 8.0).
# docs/azure.md:
#
#   make build                                   # the static hainit binary this image bakes in
#   az group create -n hainit-images -l westeurope
#   az vm image terms accept --urn resf:rockylinux-x86_64:9-base:latest   # once per subscription
#   packer build images/packer/rocky9.pkr.hcl    # after `az login`
#
# Needs packer >= 1.14.0 and packer-plugin-azure >= 2.3.0 (the `packer` block below; `packer init
# images/packer/rocky9.pkr.hcl` installs the plugin): since 2025-03-31 Azure creates no Basic public IP,
# and the plugin's build VM gets a Standard one from 2.3.0 on (public_ip_sku, #416; Standard by
# default, #469). Debian's packer 1.6.6 predates `required_plugins`: `make validate` checks the rest
# of the template with it (images/packer/validate.py), a test checks the pin (docs/support-matrix.md).
# Every VM of the stack boots this image; cloud-init custom-data (cloud-init/*.yaml) and the VM's
# tags decide its role.
# The Rocky Linux image on Azure is a Marketplace image with a (free) plan: accept its terms once,
# and create VMs from this image with the same plan (scripts/deploy-azure.sh --image-plan).

packer {
  required_version = ">= 1.14.0"
  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.3.0, < 3.0.0"
    }
  }
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "image_resource_group" {
  type        = string
  default     = "hainit-images"
  description = "Existing resource group that receives the managed image."
}

variable "image_name" {
  type    = string
  default = "hainit-rocky9"
}

variable "vm_size" {
  type    = string
  default = "Standard_D2s_v5"
}

variable "source_publisher" {
  type    = string
  default = "resf"
}

variable "source_offer" {
  type    = string
  default = "rockylinux-x86_64"
}

variable "source_sku" {
  type    = string
  default = "9-base"
}

variable "hainit_binary" {
  type        = string
  default     = ""
  description = "The static musl hainit; empty means target/x86_64-unknown-linux-musl/release/hainit (make build)."
}

# The same WordPress release as the CentOS 7 image (one pin; 6.8 needs PHP >= 7.2.24).
# wordpress.org publishes only md5/sha1 (reference §6.5): this sha256 is pinned by us, and
# matches nixpkgs' fetchurl hash of the same URL (pkgs/servers/web-apps/wordpress/default.nix).
variable "wordpress_url" {
  type    = string
  default = "https://wordpress.org/wordpress-6.8.5.tar.gz"
}

variable "wordpress_sha256" {
  type    = string
  default = "37f595510c48d16dede0bfa5afa29cb8af12dbf0e3d345b25c494c15f8c81d81"
}

variable "os_update" {
  type    = bool
  default = true
}

variable "elrepo_baseurl" {
  type    = string
  default = "https://elrepo.org/linux/elrepo/el9/$basearch/"
}

variable "elrepo_gpgkeys" {
  type    = string
  default = "https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org https://www.elrepo.org/RPM-GPG-KEY-elrepo.org"
}

locals {
  hainit_binary = var.hainit_binary != "" ? var.hainit_binary : "${path.root}/../../target/x86_64-unknown-linux-musl/release/hainit"
  stage         = "/tmp/hainit-build"
}

source "azure-arm" "rocky9" {
  # Credentials of `az login`; nothing secret in this template.
  use_azure_cli_auth = true

  location        = var.location
  vm_size         = var.vm_size
  os_type         = "Linux"
  image_publisher = var.source_publisher
  image_offer     = var.source_offer
  image_sku       = var.source_sku

  plan_info {
    plan_name      = var.source_sku
    plan_product   = var.source_offer
    plan_publisher = var.source_publisher
  }

  # The build VM's public IP: Azure creates no Basic one since 2025-03-31 (packer-plugin-azure
  # >= 2.3.0 defaults to Standard; said here all the same).
  public_ip_sku = "Standard"

  managed_image_resource_group_name = var.image_resource_group
  managed_image_name                = var.image_name

  # hainit-plan: a VM from this image needs the source's Marketplace plan (scripts/deploy-azure.sh
  # reads it and refuses to create one without --image-plan).
  azure_tags = {
    project       = "hainit"
    os            = "el9"
    "hainit-plan" = "${var.source_publisher}:${var.source_offer}:${var.source_sku}"
  }
}

build {
  sources = ["source.azure-arm.rocky9"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.stage}"]
  }

  provisioner "file" {
    source      = local.hainit_binary
    destination = "${local.stage}/hainit"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/hainit-boot"
    destination = "${local.stage}/hainit-boot"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/hainit.service"
    destination = "${local.stage}/hainit.service"
  }

  # /dev/disk/azure/data/by-lun/N for SCSI and NVMe data disks (the Debian image carries the same).
  provisioner "file" {
    source      = "${path.root}/../azure/rootfs/etc/udev/rules.d/80-hainit-azure-data-disks.rules"
    destination = "${local.stage}/80-hainit-azure-data-disks.rules"
  }

  provisioner "file" {
    source      = "${path.root}/provision/packages-el9.txt"
    destination = "${local.stage}/packages.txt"
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E bash '{{ .Path }}'"
    script          = "${path.root}/provision/el.sh"
    environment_vars = [
      "HAINIT_OS=el9",
      "STAGE=${local.stage}",
      "WORDPRESS_URL=${var.wordpress_url}",
      "WORDPRESS_SHA256=${var.wordpress_sha256}",
      "OS_UPDATE=${var.os_update ? "yes" : "no"}",
      "ELREPO_BASEURL=${var.elrepo_baseurl}",
      "ELREPO_GPGKEYS=${var.elrepo_gpgkeys}",
    ]
  }

  # Azure's generalisation step, last: forget this build VM's cloud-init instance, user, host keys.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'"
    inline_shebang  = "/bin/sh -x"
    skip_clean      = true
    inline = [
      "rm -rf ${local.stage}",
      "cloud-init clean --logs --seed",
      "/usr/sbin/waagent -force -deprovision+user && export HISTSIZE=0 && sync",
    ]
  }
}

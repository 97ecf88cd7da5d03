# hainit image for CentOS 7 (the original how-to's OS: pcs 0.9, DRBD 8.4 from ELRepo, MariaDB 5.5,
# PHP 7.3 from Software Collections). docs/azure.md:
#
#   make build                                   # the static hainit binary this image bakes in
#   az group create -n hainit-images -l westeurope
#   packer build images/packer/centos7.pkr.hcl   # after `az login`
#
# Needs packer >= 1.14.0 and packer-plugin-azure >= 2.3.0 (the `packer` block below; `packer init
# images/packer/centos7.pkr.hcl` installs the plugin): since 2025-03-31 Azure creates no Basic public IP,
# and the plugin's build VM gets a Standard one from 2.3.0 on (public_ip_sku, #416; Standard by
# default, #469). Debian's packer 1.6.6 predates `required_plugins`: `make validate` checks the rest
# of the template with it (images/packer/validate.py), a test checks the pin (docs/support-matrix.md).
# Every VM of the stack boots this image; cloud-init custom-data (cloud-init/*.yaml) and the VM's
# tags decide its role.
# CentOS 7 is end of life (2024-06-30): repositories come from vault.centos.org and the EPEL
# archive (reference §7.1); override the URLs below for a local mirror.

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
  default = "hainit-centos7"
}

variable "vm_size" {
  type    = string
  default = "Standard_D2s_v5"
}

variable "source_publisher" {
  type    = string
  default = "OpenLogic"
}

variable "source_offer" {
  type    = string
  default = "CentOS"
}

variable "source_sku" {
  type    = string
  default = "7_9-gen2"
}

variable "hainit_binary" {
  type        = string
  default     = ""
  description = "The static musl hainit; empty means target/x86_64-unknown-linux-musl/release/hainit (make build)."
}

# WordPress 6.8 needs PHP >= 7.2.24 (rh-php73 here; 7.0 would need 7.4) and MariaDB >= 5.5.5.
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

variable "vault_baseurl" {
  type    = string
  default = "https://vault.centos.org/7.9.2009"
}

variable "sclo_gpgkey" {
  type    = string
  default = "https://www.centos.org/keys/RPM-GPG-KEY-CentOS-SIG-SCLo"
}

variable "epel_baseurl" {
  type    = string
  default = "https://dl.fedoraproject.org/pub/archive/epel/7/$basearch/"
}

variable "epel_gpgkey" {
  type    = string
  default = "https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-7"
}

variable "elrepo_baseurl" {
  type    = string
  default = "https://elrepo.org/linux/elrepo/el7/$basearch/"
}

variable "elrepo_gpgkeys" {
  type    = string
  default = "https://www.elrepo.org/RPM-GPG-KEY-elrepo.org"
}

locals {
  hainit_binary = var.hainit_binary != "" ? var.hainit_binary : "${path.root}/../../target/x86_64-unknown-linux-musl/release/hainit"
  stage         = "/tmp/hainit-build"
}

source "azure-arm" "centos7" {
  # Credentials of `az login`; nothing secret in this template.
  use_azure_cli_auth = true

  location        = var.location
  vm_size         = var.vm_size
  os_type         = "Linux"
  image_publisher = var.source_publisher
  image_offer     = var.source_offer
  image_sku       = var.source_sku

  # The build VM's public IP: Azure creates no Basic one since 2025-03-31 (packer-plugin-azure
  # >= 2.3.0 defaults to Standard; said here all the same).
  public_ip_sku = "Standard"

  managed_image_resource_group_name = var.image_resource_group
  managed_image_name                = var.image_name

  azure_tags = {
    project = "hainit"
    os      = "centos7"
  }
}

build {
  sources = ["source.azure-arm.centos7"]

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
    source      = "${path.root}/provision/packages-centos7.txt"
    destination = "${local.stage}/packages.txt"
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E bash '{{ .Path }}'"
    script          = "${path.root}/provision/el.sh"
    environment_vars = [
      "HAINIT_OS=centos7",
      "STAGE=${local.stage}",
      "WORDPRESS_URL=${var.wordpress_url}",
      "WORDPRESS_SHA256=${var.wordpress_sha256}",
      "OS_UPDATE=${var.os_update ? "yes" : "no"}",
      "VAULT_BASEURL=${var.vault_baseurl}",
      "SCLO_GPGKEY=${var.sclo_gpgkey}",
      "EPEL_BASEURL=${var.epel_baseurl}",
      "EPEL_GPGKEY=${var.epel_gpgkey}",
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

"""The lab's stack as data: four VMs with their tags, addresses and memory, and the config they get.
Pure (no I/O) but for `web_secrets` (runs hainit) and `write_inputs`, so tests can check it against
hainit itself (tests/it/lab.rs)."""

import os
import subprocess

from . import imds, net, nfs
from .vm import VmSpec

CLUSTER = "wpcluster"
# What the guest sees of the shared disk (qemu virtio-blk serial=hainit-sbd, vm.py).
SBD_DEVICE = "/dev/disk/by-id/virtio-hainit-sbd"


def specs(s):
    peers = "db-a=%s.4,db-b=%s.5" % (net.DB_SUBNET, net.DB_SUBNET)
    db = imds.db_tags(CLUSTER, peers, net.VIP)
    web = imds.web_tags(CLUSTER, net.VIP, nfs.SOURCE)
    gw_db, gw_web = net.BRIDGES["db"][1], net.BRIDGES["web"][1]
    return [
        VmSpec("db-a", "db", 1, net.DB_SUBNET + ".4", gw_db, s.db_mem, db, s.data_disk_mib, s.data_disk_mib, s.db_vcpus),
        VmSpec("db-b", "db", 2, net.DB_SUBNET + ".5", gw_db, s.db_mem, db, s.data_disk_mib, s.data_disk_mib, s.db_vcpus),
        VmSpec("web-1", "web", 3, net.WEB_SUBNET + ".4", gw_web, s.web_mem, web),
        VmSpec("web-2", "web", 4, net.WEB_SUBNET + ".5", gw_web, s.web_mem, web),
    ]


def hosts(s):
    """Name resolution every VM gets (Azure DNS resolves VM names inside the VNet)."""
    return [(sp.name, sp.ip) for sp in specs(s)]


def config_yaml(s, secret):
    """The custom-data config the db VMs get (cloud-init writes it on Azure): the shared secret.
    No data disk is named: the lab image links the data disk as Azure's LUN 0
    (/dev/disk/azure/scsi1/lun0, vm.py), and hainit takes LUN 0 or nothing, as on Azure."""
    return (
        "# hainit lab: what cloud-init custom-data writes on Azure for a db VM\n"
        "secret: \"%s\"\n"
        "db:\n"
        "  web_subnet: %s.0/24\n"
        "  probe_port: %d\n"
        "  timing_profile: %s\n"
        "%s"
        "  op_timeout_scale: %d\n"
        "%s"
        "web:\n"
        "  site_url: http://%s\n"
        "  site_title: hainit lab\n"
    ) % (secret, net.WEB_SUBNET, s.probe_port, s.timing_profile,
         "  token_ms: %d\n" % s.token_ms if s.token_override else "", s.op_timeout_scale, stonith_yaml(s),
         net.PUBLIC_VIP)


def web_config_yaml(s, web_secrets):
    """The config the web VMs get, as deploy-azure.sh renders cloud-init/web.yaml: the web tier's
    secrets (`hainit secrets --tier web`, one JSON line), never the shared secret."""
    return (
        "# hainit lab: what cloud-init custom-data writes on Azure for a web VM (no shared secret)\n"
        "web_secrets: %s\n"
        "web:\n"
        "  site_url: http://%s\n"
        "  site_title: hainit lab\n"
    ) % (web_secrets.strip(), net.PUBLIC_VIP)


def config_for(role, s, secret, web_secrets):
    return web_config_yaml(s, web_secrets) if role == "web" else config_yaml(s, secret)


def web_secrets(hainit, secret):
    """What `hainit secrets --tier web` derives from `secret` (the secret goes on stdin)."""
    r = subprocess.run([hainit, "secrets", "--tier", "web", "--secret-file", "-"], input=secret + "\n",
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not r.stdout.startswith("{"):
        raise RuntimeError("%s secrets --tier web failed (exit %d): %s" % (hainit, r.returncode, r.stderr.strip()))
    return r.stdout.strip()


def stonith_yaml(s):
    """The db section's fencing keys: Azure's (auto: fence_azure_arm with the managed identity), SBD
    on the shared disk, or none at all (`off`)."""
    if s.stonith == "arm":
        return "  stonith: auto\n"
    if s.stonith != "sbd":
        return "  stonith: \"off\"\n"
    return ("  stonith: sbd\n"
            "  sbd_device: %s\n"
            "  sbd_watchdog_timeout_secs: %d\n" % (SBD_DEVICE, s.sbd_watchdog_secs))


def write_inputs(s, secret, web_secrets, out_dir):
    """Every VM's IMDS document and each tier's config (db.yaml, web.yaml), as files (for tests
    and for reading)."""
    for role in ("db", "web"):
        with open(os.path.join(out_dir, role + ".yaml"), "w") as f:
            f.write(config_for(role, s, secret, web_secrets))
    for sp in specs(s):
        imds.write(os.path.join(out_dir, sp.name + ".imds.json"),
                   imds.document(sp.name, sp.ip, sp.tags, data_disk=bool(sp.data_disk_mib)))
    return [sp.name for sp in specs(s)]

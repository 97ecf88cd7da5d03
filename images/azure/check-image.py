#!/usr/bin/env python3
"""Judge a built hainit Azure image (make azure-image) by reading the VHD itself.

  check-image.py VHD [--wordpress-sha256 HEX] [--hainit BIN] [--versions]

What Azure needs of an uploaded image and what hainit needs in it: the VHD footer says fixed, the
virtual size is a whole number of MiB and matches the file, the .sha256 beside it matches; a GPT
(both headers and the entries' CRCs valid) with an EFI system partition holding EFI/BOOT/BOOTX64.EFI
whose built-in GRUB configuration boots with the serial console on ttyS0; the ext4 root holds the
kernel with the Hyper-V and DRBD modules, cloud-init whose effective datasource list is [Azure],
waagent and the udev rules for /dev/disk/azure, no swap, no SSH host keys, an empty machine-id,
hainit with its first-boot unit enabled, and the WordPress tarball whose sha256 is the one its
defaults.yaml pins (and --wordpress-sha256, when given). Nothing of the lab's layer may be in it.

Read-only, no mounts: the footer and GPT are parsed here, mtools reads the ESP and debugfs the ext4
root inside the image file. Exit 0 when every check passes, 1 otherwise (each failure is named),
2 for bad usage. --versions prints the package versions the support matrix quotes, as JSON.
"""

import argparse
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

import yaml

MIB = 1024 * 1024
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
MODULES = ["drivers/hv/hv_vmbus.ko", "drivers/scsi/hv_storvsc.ko", "drivers/net/hyperv/hv_netvsc.ko",
           "drivers/hv/hv_utils.ko", "drivers/block/drbd/drbd.ko", "drivers/block/virtio_blk.ko",
           "drivers/net/virtio_net.ko", "fs/nfs/nfs.ko", "fs/udf/udf.ko"]
VERSIONS = ["linux-image-cloud-amd64", "drbd-utils", "pacemaker", "pcs", "corosync", "mariadb-server",
            "php8.2-fpm", "nginx", "cloud-init", "waagent"]
# Files only the lab's layer (images/lab/layer.py) puts in its copy.
LAB_ONLY = ["/etc/cloud/cloud-init.disabled", "/usr/local/libexec/hainit-lab-guest",
            "/usr/sbin/fence_azure_arm.distrib", "/root/.ssh/authorized_keys",
            "/etc/systemd/system/hainit-lab-guest.service"]


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok), detail))
        return ok

    @property
    def failed(self):
        return [r for r in self.results if not r[1]]


def guid(raw):
    """A GPT GUID (mixed-endian on disk) as the usual upper-case text."""
    a, b, c = struct.unpack("<IHH", raw[:8])
    return "%08X-%04X-%04X-%s-%s" % (a, b, c, raw[8:10].hex().upper(), raw[10:16].hex().upper())


def read_at(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def footer(path, c):
    """The VHD footer (last 512 bytes): fixed, size a whole number of MiB, checksum valid. Returns
    the raw disk's size in bytes (the file without its footer), or None."""
    size = os.path.getsize(path)
    f = read_at(path, size - 512, 512)
    if not c.check("VHD footer cookie conectix", f[:8] == b"conectix", repr(f[:8])):
        return None
    disk_type = struct.unpack(">I", f[60:64])[0]
    c.check("VHD disk type fixed (2)", disk_type == 2, "type %d" % disk_type)
    current = struct.unpack(">Q", f[48:56])[0]
    c.check("VHD current size = file size - 512", current == size - 512, "%d vs %d" % (current, size - 512))
    c.check("virtual size a whole number of MiB", current % MIB == 0, "%d bytes = %.6f MiB" % (current, current / MIB))
    stored = struct.unpack(">I", f[64:68])[0]
    summed = (~sum(f[:64] + b"\0\0\0\0" + f[68:]) & 0xFFFFFFFF)
    c.check("VHD footer checksum", stored == summed, "stored %08x, computed %08x" % (stored, summed))
    return size - 512


def gpt(path, disk_bytes, c):
    """Both GPT headers and their entries; returns {number: (type, first_lba, last_lba)}."""
    parts = {}
    sectors = disk_bytes // 512
    for name, lba in (("primary", 1), ("backup", sectors - 1)):
        h = read_at(path, lba * 512, 512)
        if not c.check("GPT %s header signature" % name, h[:8] == b"EFI PART", repr(h[:8])):
            continue
        hsize = struct.unpack("<I", h[12:16])[0]
        crc = struct.unpack("<I", h[16:20])[0]
        c.check("GPT %s header CRC" % name, zlib.crc32(h[:16] + b"\0\0\0\0" + h[20:hsize]) == crc)
        my_lba, alt_lba = struct.unpack("<QQ", h[24:40])
        c.check("GPT %s header at LBA %d, the other at %d" % (name, lba, sectors - 1 if lba == 1 else 1),
                my_lba == lba and alt_lba == (sectors - 1 if lba == 1 else 1), "my %d alt %d" % (my_lba, alt_lba))
        entries_lba, count, esize, ecrc = struct.unpack("<QIII", h[72:92])
        table = read_at(path, entries_lba * 512, count * esize)
        c.check("GPT %s entries CRC" % name, zlib.crc32(table) == ecrc)
        if lba != 1:
            continue
        for i in range(count):
            e = table[i * esize:(i + 1) * esize]
            if e[:16] == b"\0" * 16:
                continue
            first, last = struct.unpack("<QQ", e[32:48])
            parts[i + 1] = (guid(e[:16]), first, last)
    return parts


class Root:
    """The ext4 root file system inside the image, through debugfs (exit 0 even on errors)."""

    def __init__(self, path, offset):
        self.spec = "%s?offset=%d" % (path, offset)

    def debugfs(self, request):
        r = subprocess.run(["debugfs", "-R", request, self.spec], capture_output=True)
        errors = [line for line in r.stderr.decode(errors="replace").splitlines()
                  if line.strip() and not line.startswith("debugfs ")]
        return r.stdout, errors

    def read(self, path):
        out, errors = self.debugfs("cat " + path)
        return None if errors else out

    def stat(self, path):
        out, errors = self.debugfs("stat " + path)
        return None if errors else out.decode(errors="replace")

    def exists(self, path):
        return self.stat(path) is not None

    def link(self, path):
        st = self.stat(path)
        m = re.search(r'Fast link dest: "([^"]*)"', st or "")
        return m.group(1) if m else None

    def mode(self, path):
        """Permission bits (debugfs prints them without the file type)."""
        m = re.search(r"Mode:\s+(\d+)", self.stat(path) or "")
        return int(m.group(1), 8) & 0o7777 if m else None

    def size(self, path):
        m = re.search(r"Size: (\d+)", self.stat(path) or "")
        return int(m.group(1)) if m else None

    def ls(self, path):
        out, errors = self.debugfs("ls -p " + path)
        if errors:
            return None
        names = []
        for line in out.decode(errors="replace").splitlines():
            fields = line.strip().strip("/").split("/")
            if len(fields) >= 5 and fields[4] not in (".", ".."):
                names.append(fields[4])
        return names


def esp_checks(path, offset, c):
    spec = "%s@@%d" % (path, offset)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    r = subprocess.run(["mtype", "-i", spec, "::/EFI/BOOT/BOOTX64.EFI"], capture_output=True, env=env)
    if not c.check("ESP holds EFI/BOOT/BOOTX64.EFI", r.returncode == 0 and r.stdout[:2] == b"MZ",
                   r.stderr.decode(errors="replace").strip()):
        return
    # grub-mkstandalone stores its grub.cfg uncompressed in the EFI binary's memdisk.
    cfg = r.stdout
    c.check("boot loader config: root by PARTUUID, console on ttyS0",
            re.search(rb"linux /vmlinuz root=PARTUUID=[0-9a-f-]{36} ro .*console=ttyS0,115200", cfg) is not None)
    c.check("boot loader config finds the root by its file system UUID",
            re.search(rb"search --no-floppy --fs-uuid --set=root [0-9a-f-]{36}", cfg) is not None)


def effective_datasources(root):
    """cloud-init's datasource_list as it merges cloud.cfg, then cloud.cfg.d/*.cfg in name order."""
    value = None
    files = ["/etc/cloud/cloud.cfg"] + ["/etc/cloud/cloud.cfg.d/" + n for n in
                                        sorted(root.ls("/etc/cloud/cloud.cfg.d") or []) if n.endswith(".cfg")]
    for f in files:
        text = root.read(f)
        if text is None:
            continue
        doc = yaml.safe_load(text) or {}
        if isinstance(doc, dict) and "datasource_list" in doc:
            value = (doc["datasource_list"], f)
    return value


def cloud_init_schema(text):
    """`cloud-init schema` (this machine's cloud-init) on a cloud.cfg.d file: (ok, its message)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".cfg") as f:
        f.write(b"#cloud-config\n" + text)
        f.flush()
        r = subprocess.run(["cloud-init", "schema", "--config-file", f.name], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def root_checks(root, c, wordpress_sha256, hainit_bin):
    vmlinuz, initrd = root.link("/vmlinuz"), root.link("/initrd.img")
    c.check("/vmlinuz and /initrd.img point at the kernel and its initramfs",
            vmlinuz and initrd and root.exists("/" + vmlinuz) and root.exists("/" + initrd), "%s %s" % (vmlinuz, initrd))
    kver = vmlinuz.split("vmlinuz-", 1)[1] if vmlinuz and "vmlinuz-" in vmlinuz else None
    c.check("Debian's cloud kernel", kver is not None and kver.endswith("-cloud-amd64"), str(kver))
    for m in MODULES:
        c.check("kernel module %s" % os.path.basename(m),
                kver is not None and root.exists("/lib/modules/%s/kernel/%s" % (kver, m)))

    ds = effective_datasources(root)
    c.check("cloud-init's datasource list is [Azure]", ds is not None and ds[0] == ["Azure"], str(ds))
    c.check("cloud-init runs (no cloud-init.disabled)", not root.exists("/etc/cloud/cloud-init.disabled"))
    for unit in ("cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service"):
        c.check("%s enabled" % unit, root.link("/etc/systemd/system/cloud-init.target.wants/" + unit) is not None)
    c.check("waagent enabled", root.link("/etc/systemd/system/multi-user.target.wants/walinuxagent.service"))
    waagent = (root.read("/etc/waagent.conf") or b"").decode()
    for kv in ("Provisioning.Agent=cloud-init", "ResourceDisk.Format=n", "ResourceDisk.EnableSwap=n"):
        c.check("waagent.conf %s" % kv, re.search(r"^%s$" % re.escape(kv), waagent, re.M) is not None)
    c.check("udev: /dev/disk/azure/scsi1/lunN (waagent)", root.exists("/lib/udev/rules.d/66-azure-storage.rules"))
    rules = (root.read("/etc/udev/rules.d/80-hainit-azure-data-disks.rules") or b"").decode()
    c.check("udev: /dev/disk/azure/data/by-lun/N", "disk/azure/data/by-lun/$env{HAINIT_AZURE_LUN}" in rules)
    c.check("systemd-networkd enabled, DHCP on hv_netvsc",
            root.link("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
            and b"Driver=hv_netvsc" in (root.read("/etc/systemd/network/10-azure-hv-netvsc.network") or b""))

    fstab = (root.read("/etc/fstab") or b"").decode()
    c.check("no swap in /etc/fstab", not any(len(l.split()) >= 3 and l.split()[2] == "swap"
                                             for l in fstab.splitlines() if not l.startswith("#")), fstab)
    for f in ("/swapfile", "/swap.img"):
        c.check("no %s" % f, not root.exists(f))
    text = root.read("/etc/cloud/cloud.cfg.d/99-hainit-azure.cfg") or b""
    cloud = yaml.safe_load(text) or {}
    c.check("cloud-init makes no swap file", (cloud.get("swap") or {}).get("size") == 0, str(cloud.get("swap")))
    ok, detail = cloud_init_schema(text)
    c.check("cloud-init schema accepts 99-hainit-azure.cfg", ok, detail)
    keys = [n for n in (root.ls("/etc/ssh") or []) if n.startswith("ssh_host_")]
    c.check("no SSH host keys", not keys, " ".join(keys))
    c.check("/etc/machine-id empty", root.exists("/etc/machine-id") and root.size("/etc/machine-id") == 0)
    c.check("no /var/lib/dbus/machine-id", not root.exists("/var/lib/dbus/machine-id"))

    c.check("/usr/local/sbin/hainit (0755)", root.mode("/usr/local/sbin/hainit") == 0o755)
    if hainit_bin:
        with open(hainit_bin, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        got = hashlib.sha256(root.read("/usr/local/sbin/hainit") or b"").hexdigest()
        c.check("hainit is %s" % hainit_bin, got == want, "%s vs %s" % (got, want))
    c.check("/usr/local/libexec/hainit-boot (0755)", root.mode("/usr/local/libexec/hainit-boot") == 0o755)
    unit = (root.read("/etc/systemd/system/hainit.service") or b"").decode()
    c.check("hainit.service runs hainit-boot", "ExecStart=/usr/local/libexec/hainit-boot" in unit)
    c.check("hainit.service enabled",
            root.link("/etc/systemd/system/multi-user.target.wants/hainit.service") == "/etc/systemd/system/hainit.service")

    defaults = yaml.safe_load(root.read("/usr/share/hainit/defaults.yaml") or b"") or {}
    web = defaults.get("web") or {}
    pinned = web.get("wordpress_sha256")
    tarball = root.read(web.get("wordpress_tarball") or "/usr/share/hainit/wordpress.tar.gz")
    got = hashlib.sha256(tarball).hexdigest() if tarball is not None else None
    c.check("WordPress tarball sha256 = the pin in defaults.yaml", pinned and got == pinned, "%s vs %s" % (got, pinned))
    if wordpress_sha256:
        c.check("WordPress pin is %s" % wordpress_sha256, pinned == wordpress_sha256, str(pinned))
    for f in LAB_ONLY:
        c.check("nothing of the lab's layer: no %s" % f, not root.exists(f))


def module_version(root, kver, module):
    """`modinfo -F version` of a module in the image (dumped with debugfs), or None."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, os.path.basename(module))
        root.debugfs("dump /lib/modules/%s/kernel/%s %s" % (kver, module, path))
        if not os.path.exists(path):
            return None
        r = subprocess.run(["modinfo", "-F", "version", path], capture_output=True, text=True)
        return r.stdout.strip() or None


def wordpress_version(tarball):
    """$wp_version of wp-includes/version.php in a WordPress tarball's bytes, or None."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball or b""), mode="r:gz") as t:
            f = t.extractfile("wordpress/wp-includes/version.php")
            m = re.search(rb"\$wp_version = '([^']+)'", f.read() if f else b"")
            return m.group(1).decode() if m else None
    except (tarfile.TarError, KeyError, OSError):
        return None


def versions(root):
    status = (root.read("/var/lib/dpkg/status") or b"").decode(errors="replace")
    found = {}
    for para in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", para, re.M))
        if fields.get("Package") in VERSIONS and fields.get("Status", "").endswith(" installed"):
            found[fields["Package"]] = fields.get("Version")
    out = {p: found.get(p) for p in VERSIONS}
    out["wordpress (baked tarball)"] = wordpress_version(root.read("/usr/share/hainit/wordpress.tar.gz"))
    vmlinuz = root.link("/vmlinuz") or ""
    if "vmlinuz-" in vmlinuz:
        out["drbd kernel module"] = module_version(root, vmlinuz.split("vmlinuz-", 1)[1], "drivers/block/drbd/drbd.ko")
    return out


def check(path, wordpress_sha256=None, hainit_bin=None):
    c = Checks()
    disk = footer(path, c)
    sha_file = path + ".sha256"
    if os.path.exists(sha_file):
        with open(sha_file) as f:
            want = f.read().split()[0]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(8 * MIB), b""):
                h.update(block)
        c.check("sha256 matches %s" % os.path.basename(sha_file), h.hexdigest() == want, h.hexdigest())
    if disk is None:
        return c, None
    parts = gpt(path, disk, c)
    esp = [(n, p) for n, p in parts.items() if p[0] == ESP_TYPE]
    roots = [(n, p) for n, p in parts.items() if p[0] == LINUX_ROOT_X86_64]
    c.check("GPT has an EFI system partition", len(esp) == 1, str(parts))
    c.check("GPT has one Linux x86-64 root partition", len(roots) == 1, str(parts))
    if esp:
        esp_checks(path, esp[0][1][1] * 512, c)
    root = None
    if roots:
        root = Root(path, roots[0][1][1] * 512)
        sb = root.stat("/")
        if c.check("root partition holds an ext4 file system", sb is not None):
            root_checks(root, c, wordpress_sha256, hainit_bin)
    return c, root


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("vhd")
    p.add_argument("--wordpress-sha256")
    p.add_argument("--hainit", help="the hainit binary the image must carry")
    p.add_argument("--versions", action="store_true", help="print the image's package versions (JSON)")
    a = p.parse_args(argv[1:])
    if not os.path.isfile(a.vhd):
        p.error("%s: no such file" % a.vhd)
    c, root = check(a.vhd, a.wordpress_sha256, a.hainit)
    for name, ok, detail in c.results:
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok or not detail else ": " + detail))
    if a.versions and root is not None:
        print(json.dumps(versions(root), indent=1))
    print("%s: %d checks, %d failed" % (a.vhd, len(c.results), len(c.failed)))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

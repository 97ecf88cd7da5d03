#!/usr/bin/env python3
"""The lab's layer on top of hainit's Azure image: what the lab's copy differs in, and why.

  layer.py apply  IMAGE.raw OFFSET PUBKEY    write the changes into the ext4 root file system that
                                             starts at byte OFFSET of IMAGE.raw (a copy of the VHD)
  layer.py overlay IMAGE.raw VHD OUT.qcow2    a qcow2 overlay of VHD holding only the clusters in
                                             which IMAGE.raw differs from it
  layer.py list                              the changes and their reasons, as JSON

No mounts: debugfs edits the file system inside the image file, e2fsck -fn judges the result, and
every change is read back. The overlay is then OUT.qcow2 over the VHD, with only the clusters the
changes touched (qemu-io writes them; qemu-img compare proves the overlay reads as the edited
copy), so the VHD itself stays as `make azure-image` built it (docs/lab.md lists the changes).
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST = os.path.join(HERE, "guest")
DIVERTED = "/usr/sbin/fence_azure_arm"

# Every difference between the lab's VMs and Azure's, with its reason. "guest" files come from
# images/lab/guest/ (same path in the image).
CHANGES = [
    {"what": "TCG start timeouts for corosync, pacemaker, pcsd and pcsd-ruby (systemd drop-ins, 600 s)",
     "why": "the lab emulates its CPUs (TCG, 10-30x slower than a VM on Azure); pcsd-ruby took longer "
            "than its stock 90 s to start on a busy lab host",
     "guest": ["etc/systemd/system/corosync.service.d/lab-tcg.conf",
               "etc/systemd/system/pacemaker.service.d/lab-tcg.conf",
               "etc/systemd/system/pcsd.service.d/lab-tcg.conf",
               "etc/systemd/system/pcsd-ruby.service.d/lab-tcg.conf"]},
    {"what": "the lab's fence_azure_arm at /usr/sbin/fence_azure_arm; Debian's diverted to "
             "fence_azure_arm.distrib (dpkg-divert --local)",
     "why": "it fences through the lab's emulated Azure Resource Manager (same parameters and calls, "
            "in curl): there is no management.azure.com here, and the Azure SDK costs seconds of "
            "emulated CPU per call; Debian's stays for the metadata pcs reads",
     "guest": ["usr/sbin/fence_azure_arm"], "divert": DIVERTED},
    {"what": "cloud-init disabled (/etc/cloud/cloud-init.disabled)",
     "why": "its Azure datasource needs Azure's provisioning media and the wireserver to report ready "
            "to; the lab has neither (its IMDS is hainit's fake). hainit-lab-guest does what "
            "cloud-init and DHCP do on Azure",
     "guest": ["etc/cloud/cloud-init.disabled"]},
    {"what": "hainit-lab-guest.service (enabled) and qemu_fw_cfg loaded at boot",
     "why": "host name, NIC addresses, /etc/hosts, the custom-data config (/etc/hainit/hainit.yaml, "
            "0600) and SSH host keys, from the lab host's fw_cfg blobs: Azure's DHCP and cloud-init "
            "give these",
     "guest": ["etc/systemd/system/hainit-lab-guest.service", "usr/local/libexec/hainit-lab-guest",
               "etc/modules-load.d/hainit-lab.conf"],
     "symlinks": {"etc/systemd/system/multi-user.target.wants/hainit-lab-guest.service":
                  "/etc/systemd/system/hainit-lab-guest.service",
                  "etc/systemd/system/network-online.target.wants/hainit-lab-guest.service":
                  "/etc/systemd/system/hainit-lab-guest.service"}},
    {"what": "waagent (walinuxagent.service) disabled",
     "why": "no wireserver in the lab: the agent would retry it for ever on emulated CPU (it serves "
            "run commands and extensions on Azure; the lab reaches its VMs over ssh)",
     "remove": ["etc/systemd/system/multi-user.target.wants/walinuxagent.service"]},
    {"what": "systemd-networkd-wait-online.service masked",
     "why": "networkd configures only the Hyper-V NIC (hv_netvsc); the lab's virtio NICs are "
            "hainit-lab-guest's, so it would wait its full 2 min (measured 157 s under TCG) for a "
            "link it never manages",
     "symlinks": {"etc/systemd/system/systemd-networkd-wait-online.service": "/dev/null"}},
    {"what": "the data disk's LUN 0 links for a virtio disk (udev rule 66-hainit-lab-azure-lun.rules)",
     "why": "on Azure waagent's 66-azure-storage.rules link the SCSI data disk at LUN 0 as "
            "/dev/disk/azure/scsi1/lun0; the lab's data disk is virtio (serial hainit-lun0), which "
            "those rules do not see, and hainit takes LUN 0 or nothing",
     "guest": ["etc/udev/rules.d/66-hainit-lab-azure-lun.rules"]},
    {"what": "root's authorized key (/root/.ssh/authorized_keys, the lab's key)",
     "why": "the lab drives its VMs over ssh as root; on Azure the admin user and its key come from "
            "cloud-init",
     "authorized_key": "root/.ssh/authorized_keys"},
]


class LayerError(Exception):
    pass


class Ext4:
    """The ext4 file system at `offset` in an image file, through debugfs (always exit 0: its errors
    are read from stderr)."""

    def __init__(self, image, offset):
        self.spec = "%s?offset=%d" % (image, offset)

    def debugfs(self, args, script=None, write=False):
        argv = ["debugfs"] + (["-w"] if write else []) + args + [self.spec]
        r = subprocess.run(argv, input=script, capture_output=True, text=True)
        errors = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("debugfs ")]
        return r.stdout, errors

    def exists(self, path):
        _, errors = self.debugfs(["-R", "stat " + path])
        if errors and not any("File not found" in e for e in errors):
            raise LayerError("debugfs stat %s: %s" % (path, "; ".join(errors)))
        return not errors

    def cat(self, path):
        out, errors = self.debugfs(["-R", "cat " + path])
        if errors:
            raise LayerError("debugfs cat %s: %s" % (path, "; ".join(errors)))
        return out

    def stat(self, path):
        out, errors = self.debugfs(["-R", "stat " + path])
        if errors:
            raise LayerError("debugfs stat %s: %s" % (path, "; ".join(errors)))
        return out

    def run(self, commands):
        _, errors = self.debugfs(["-f", "-"], script="\n".join(commands) + "\n", write=True)
        if errors:
            raise LayerError("debugfs: %s (commands: %s)" % ("; ".join(errors), commands))


def mode_of(local):
    return 0o755 if os.access(local, os.X_OK) else 0o644


class Writer:
    """Collects debugfs commands for one change, creating missing parent directories once."""

    def __init__(self, fs):
        self.fs, self.cmds, self.made, self.gone = fs, [], set(), set()

    def exists(self, path):
        """Whether `path` exists once the commands so far have run."""
        return path not in self.gone and (path in self.made or self.fs.exists(path))

    def owner(self, path, mode):
        self.cmds += ["sif %s mode 0%o" % (path, mode), "sif %s uid 0" % path, "sif %s gid 0" % path]

    def parents(self, path, mode=0o755):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if not self.exists(d):
                self.cmds.append("mkdir " + d)
                self.owner(d, 0o40000 | mode)
            self.made.add(d)

    def write(self, local, path, mode):
        self.parents(path, 0o700 if path.startswith("/root/") else 0o755)
        if self.exists(path):
            self.cmds.append("rm " + path)
        self.cmds.append("write %s %s" % (local, path))
        self.made.add(path)
        self.gone.discard(path)
        self.owner(path, 0o100000 | mode)

    def symlink(self, path, target):
        self.parents(path)
        if self.exists(path):
            self.cmds.append("rm " + path)
        self.cmds.append("symlink %s %s" % (path, target))
        self.made.add(path)
        self.gone.discard(path)


def diversions_entry(path):
    return "%s\n%s.distrib\n:\n" % (path, path)


def apply(image, offset, pubkey, tmpdir):
    """Write every change into the image's root file system, then read each one back."""
    fs = Ext4(image, offset)
    if not fs.exists("/etc/systemd/system/hainit.service"):
        raise LayerError("%s at offset %d has no /etc/systemd/system/hainit.service: not hainit's image"
                         % (image, offset))
    w = Writer(fs)
    expect_files, expect_links, expect_gone = {}, {}, []
    for change in CHANGES:
        if change.get("divert"):
            path = change["divert"]
            if fs.exists(path + ".distrib"):
                raise LayerError("%s.distrib exists already: the image is diverted" % path)
            w.cmds += ["ln %s %s.distrib" % (path, path), "unlink " + path]
            w.gone.add(path)
            diversions = os.path.join(tmpdir, "diversions")
            with open(diversions, "w") as f:
                f.write(fs.cat("/var/lib/dpkg/diversions") + diversions_entry(path))
            w.write(diversions, "/var/lib/dpkg/diversions", 0o644)
            expect_files["/var/lib/dpkg/diversions"] = diversions
        for rel in change.get("guest", []):
            local = os.path.join(GUEST, rel)
            w.write(local, "/" + rel, mode_of(local))
            expect_files["/" + rel] = local
        for rel, target in change.get("symlinks", {}).items():
            w.symlink("/" + rel, target)
            expect_links["/" + rel] = target
        for rel in change.get("remove", []):
            if not w.exists("/" + rel):
                raise LayerError("/%s is not in the image: nothing to remove" % rel)
            w.cmds.append("rm /" + rel)
            w.gone.add("/" + rel)
            expect_gone.append("/" + rel)
        if change.get("authorized_key"):
            path = "/" + change["authorized_key"]
            w.write(pubkey, path, 0o600)
            expect_files[path] = pubkey
    fs.run(w.cmds)
    verify(fs, expect_files, expect_links, expect_gone)
    r = subprocess.run(["e2fsck", "-fn", fs.spec], capture_output=True, text=True)
    if r.returncode != 0:
        raise LayerError("e2fsck -fn after the lab layer: exit %d\n%s" % (r.returncode, r.stdout[-2000:]))


def verify(fs, files, links, gone):
    for path, local in files.items():
        with open(local) as f:
            if fs.cat(path) != f.read():
                raise LayerError("%s does not read back as %s" % (path, local))
    for path, target in links.items():
        st = fs.stat(path)
        if 'Fast link dest: "%s"' % target not in st:
            raise LayerError("%s is not a symlink to %s:\n%s" % (path, target, st))
    for path in gone:
        if fs.exists(path):
            raise LayerError("%s is still there" % path)
    if not fs.exists(DIVERTED + ".distrib"):
        raise LayerError("%s.distrib missing after the diversion" % DIVERTED)


CLUSTER = 64 * 1024


def changed_runs(raw, vhd):
    """[(offset, length)] of the CLUSTER-aligned runs in which `raw` differs from the first bytes of
    `vhd` (a fixed VHD is the raw disk plus a footer). Only the data extents of `raw` are read: `raw`
    is a sparse copy of the VHD, so a hole in it is zeros in the VHD as well."""
    runs = []
    size = os.path.getsize(raw)
    with open(raw, "rb") as a, open(vhd, "rb") as b:
        fd = a.fileno()
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            off = start - start % CLUSTER
            while off < end:
                a.seek(off)
                b.seek(off)
                n = min(CLUSTER, size - off)
                if a.read(n) != b.read(n):
                    if runs and runs[-1][0] + runs[-1][1] == off:
                        runs[-1] = (runs[-1][0], runs[-1][1] + n)
                    else:
                        runs.append((off, n))
                off += CLUSTER
            pos = max(end, off)
    return runs


def overlay(raw, vhd, out, tmpdir):
    """OUT.qcow2 backed by the VHD, holding the runs in which `raw` differs; proven by qemu-img compare."""
    if os.path.getsize(raw) + 512 != os.path.getsize(vhd):
        raise LayerError("%s is not %s without its 512-byte footer" % (raw, vhd))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "vpc", "-b", vhd, out], check=True)
    runs = changed_runs(raw, vhd)
    cmds = []
    with open(raw, "rb") as f:
        for i, (off, n) in enumerate(runs):
            chunk = os.path.join(tmpdir, "run%d" % i)
            f.seek(off)
            with open(chunk, "wb") as c:
                c.write(f.read(n))
            cmds += ["-c", "write -q -s %s %d %d" % (chunk, off, n)]
    if cmds:
        r = subprocess.run(["qemu-io", "-f", "qcow2"] + cmds + [out], capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            raise LayerError("qemu-io writing the lab layer: %s" % (r.stderr.strip() or r.returncode))
    r = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, out], capture_output=True, text=True)
    if r.returncode != 0:
        raise LayerError("the overlay does not read as the edited copy: %s" % (r.stdout + r.stderr).strip())
    return {"runs": len(runs), "bytes": sum(n for _, n in runs)}


def summary():
    return [{"what": c["what"], "why": c["why"]} for c in CHANGES]


def main(argv):
    if argv[1:2] == ["list"]:
        print(json.dumps(summary(), indent=1))
        return 0
    if len(argv) != 5 or argv[1] not in ("apply", "overlay"):
        sys.stderr.write(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if argv[1] == "apply":
                apply(argv[2], int(argv[3]), argv[4], tmp)
            else:
                print(json.dumps(overlay(argv[2], argv[3], argv[4], tmp)))
        except LayerError as e:
            sys.stderr.write("lab layer: %s\n" % e)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

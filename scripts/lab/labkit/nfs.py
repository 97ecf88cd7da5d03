"""The lab's Azure Files NFS share: a userspace NFS 4.1 server (nfs-ganesha with its VFS backend)
that the run starts in its own network namespace at NFS_IP, an address of the web subnet, as a
private endpoint would have. The web VMs mount it on wp-content/uploads (tag hainit-share), as on
Azure. Userspace because the host kernel may have no nfsd (this one has no module for it) and a
kernel server would be the host's, not the run's; ganesha is a process the run starts and stops by
its own id like the fake IMDS and the load balancers.

The exported directory is RUN/nfs/export (owned by root, with no root squash: hainit chowns the
share's root to the web user, as Azure Files NFS with root squash off lets it). Only NFS 4.1 and
4.2 over TCP, nothing else of NFS (no rpcbind, lock manager or quotas: NFSv4 needs none of them).
"""

import os
import subprocess
import time

from . import common, net

NFS_IP = net.WEB_SUBNET + ".200"
EXPORT_PATH = "/hainit/wpcontent"
# The tag hainit-share of the web VMs: what `mount` and /proc/self/mountinfo call the export.
SOURCE = "%s:%s" % (NFS_IP, EXPORT_PATH)
# Lease and grace short, so a web node that reboots reclaims its state quickly (defaults: 60 s and
# 90 s; ganesha wants grace >= lease).
LEASE_S = 20
GRACE_S = 20
READY_LINE = "NFS SERVER INITIALIZED"


def config(export_dir, recovery_dir):
    """ganesha.conf for the lab's one export."""
    return """# Written by the hainit lab (scripts/lab/labkit/nfs.py)
NFS_CORE_PARAM {
    Protocols = 4;
    NFS_Port = 2049;
    Bind_Addr = %(ip)s;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}
NFSV4 {
    Minor_Versions = 1, 2;
    Lease_Lifetime = %(lease)d;
    Grace_Period = %(grace)d;
    RecoveryBackend = fs;
    RecoveryRoot = %(recovery)s;
}
NFS_KRB5 {
    Active_krb5 = false;
}
EXPORT {
    Export_Id = 1;
    Path = %(export)s;
    Pseudo = %(pseudo)s;
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {
        Name = VFS;
    }
}
LOG {
    Default_Log_Level = EVENT;
}
""" % {"ip": NFS_IP, "lease": LEASE_S, "grace": GRACE_S, "recovery": recovery_dir, "export": export_dir,
       "pseudo": EXPORT_PATH}


class Nfs:
    def __init__(self, lab):
        self.lab = lab
        self.dir = os.path.join(lab.run_dir, "nfs")
        self.export = os.path.join(self.dir, "export")
        self.log_path = os.path.join(self.dir, "ganesha.log")
        self.proc = None

    def start(self, timeout=60):
        """Start ganesha in the namespace and wait until it serves (its log says so)."""
        recovery = os.path.join(self.dir, "recovery")
        for d in (self.export, recovery):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.export, 0o755)
        conf = os.path.join(self.dir, "ganesha.conf")
        with open(conf, "w") as f:
            f.write(config(self.export, recovery))
        self.lab.net.ip("addr", "add", NFS_IP + "/32", "dev", net.BRIDGES["web"][0])
        out = open(os.path.join(self.dir, "ganesha.out"), "a")
        self.proc = subprocess.Popen(
            self.lab.net.cmd(["ganesha.nfsd", "-F", "-f", conf, "-L", self.log_path,
                              "-p", os.path.join(self.dir, "ganesha.pid"), "-N", "NIV_EVENT"]),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.lab.track(self.proc.pid, "nfs-ganesha")
        t0 = time.time()

        def ready():
            if self.proc.poll() is not None:
                raise common.LabError("nfs-ganesha exited %s; see %s" % (self.proc.returncode, self.log_path))
            try:
                with open(self.log_path) as f:
                    return READY_LINE in f.read()
            except FileNotFoundError:
                return False
        common.wait_until(ready, timeout, "nfs-ganesha to serve %s" % SOURCE, interval=0.5)
        self.lab.log("shared storage: nfs-ganesha serves %s (NFS 4.1, pid %d, %.1f s)"
                     % (SOURCE, self.proc.pid, time.time() - t0))

    def check(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise common.LabError("nfs-ganesha exited %s; see %s" % (self.proc.returncode, self.log_path))

    def path_of(self, url_path):
        """The file behind an uploads URL path (/wp-content/uploads/…) on the server's disk."""
        prefix = "/wp-content/uploads/"
        if not url_path.startswith(prefix):
            raise common.LabError("%s is not below %s" % (url_path, prefix))
        return os.path.join(self.export, url_path[len(prefix):])

    def stop(self):
        common.stop_process(self.proc, grace=10)

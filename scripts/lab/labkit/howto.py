"""The how-to's manual path, measured in the same run for comparison.

Full initial DRBD sync: the how-to brings a new pair up with `primary --force` (DRBD 8.4's
--overwrite-data-of-peer), which copies the whole disk to the peer before the pair is redundant;
hainit skips it on brand-new disks (new-current-uuid --clear-bitmap). Measured on a second, empty
disk of the same size on each db VM (/dev/vdc), over the same lab link, as a throw-away resource
with its own minor and port; the resync rate is left uncapped (c-max-rate 200M) so the figure is
the best case for the manual path.
"""

import re
import time

from . import common

RES = "howto"
CONF = "/root/howto-drbd.conf"
MINOR = 9
PORT = 7799


def config(lab):
    a, b = lab.vms["db-a"].spec, lab.vms["db-b"].spec
    return """resource %s {
  protocol C;
  disk { c-max-rate 200M; c-min-rate 50M; }
  on %s { device /dev/drbd%d; disk /dev/vdc; address %s:%d; meta-disk internal; }
  on %s { device /dev/drbd%d; disk /dev/vdc; address %s:%d; meta-disk internal; }
}
""" % (RES, a.name, MINOR, a.ip, PORT, b.name, MINOR, b.ip, PORT)


def state(vm):
    out = vm.try_ssh("cat /proc/drbd", timeout=20) or ""
    for line in out.splitlines():
        m = re.match(r"^\s*%d: cs:(\S+) ro:\S+ ds:(\S+)" % MINOR, line)
        if m:
            return m.group(1), m.group(2)
    return None, None


def full_sync(lab):
    a, b = lab.vms["db-a"], lab.vms["db-b"]
    text = config(lab)
    drbdadm = "drbdadm -c %s" % CONF
    for vm in (a, b):
        vm.ssh("modprobe drbd && cat > %s <<'EOF'\n%sEOF\n%s create-md --force %s >/dev/null 2>&1 && %s up %s"
               % (CONF, text, drbdadm, RES, drbdadm, RES), timeout=120)
    common.wait_until(lambda: state(a)[0] == "Connected", 120, "the how-to resource to connect", interval=1)
    t0 = time.time()
    a.ssh("%s primary --force %s" % (drbdadm, RES), timeout=60)
    common.wait_until(lambda: state(a)[1] == "UpToDate/UpToDate", 1800, "the how-to full sync", interval=1)
    seconds = time.time() - t0
    for vm in (a, b):
        vm.ssh("%s secondary %s 2>/dev/null; %s down %s" % (drbdadm, RES, drbdadm, RES), check=False, timeout=60)
    mib = lab.settings.data_disk_mib
    lab.log("how-to path: full initial sync of %d MiB took %.1f s (%.1f MiB/s)" % (mib, seconds, mib / seconds))
    return {"full_initial_sync_s": round(seconds, 1), "disk_mib": mib, "rate_mib_s": round(mib / seconds, 1)}

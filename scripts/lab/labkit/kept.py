"""The stack `make lab` keeps up after a passing run, for a person to look at.

The orchestrator (`lab.py run --keep`) exits. VMs, load balancers, IMDS and NFS servers and ssh
masters are processes of their own and stay; what ran inside the orchestrator, the emulated ARM
that fence_azure_arm calls, goes on in the keeper (`lab.py keep RUN_DIR`, tracked in pids.json like
the rest), so the db pair can still fence. It answers ARM but powers nothing on again: a db VM
fenced while the stack is kept stays off. `make lab-down` (clean.down) stops it all by the recorded
ids, and so does the next `make lab` before it starts.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.request

from . import arm, common, net
from .lab import wp_admin
from .vm import VM, VmSpec

LAB_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lab.py")
PUBLIC_URL = "http://%s/" % net.PUBLIC_VIP


def host_view(url=PUBLIC_URL, tries=3, timeout=30):
    """The front page from this machine, through the host link and the public LB, as a browser here
    gets it (no proxy): {ok, url, status, detail}. ok: 200, still at the public address after any
    redirect, and the lab's site."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    view = {"ok": False, "url": url}
    for attempt in range(tries):
        try:
            with opener.open(url, timeout=timeout) as r:
                body = r.read(1 << 20).decode(errors="replace")
                view.update(status=r.status, final_url=r.geturl())
        except OSError as e:
            view["detail"] = "%s: %s" % (url, e)
            time.sleep(2)
            continue
        if not view["final_url"].startswith(url):
            view["detail"] = "%s redirected to %s" % (url, view["final_url"])
        elif "hainit lab" not in body:
            view["detail"] = "%s answered %d without the lab's site title" % (url, view["status"])
        else:
            view.update(ok=True, detail="%s answered %d from this machine" % (url, view["status"]))
        return view
    return view


def hand_over(lab):
    """The orchestrator is about to exit and leave the stack up: its ARM goes on in the keeper; the
    run is marked kept in lab.json."""
    lab.sampler_stop.set()
    if lab.arm is not None:
        lab.arm.stop()
        lab.arm = None
        out = open(os.path.join(lab.run_dir, "keeper.log"), "a")
        proc = subprocess.Popen([sys.executable, LAB_PY, "keep", lab.run_dir], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        lab.track(proc.pid, "keeper (ARM)")
        common.wait_until(lambda: proc.poll() is not None or os.path.exists(arm.socket_path(lab.run_dir)), 30,
                          "the keeper to serve ARM", interval=0.2)
        if proc.poll() is not None:
            raise common.LabError("the keeper exited %s; see %s/keeper.log" % (proc.returncode, lab.run_dir))
    lab.meta["kept"] = True
    common.write_json(os.path.join(lab.run_dir, "lab.json"), lab.meta)


def kept_vms(run_dir):
    """The run's VMs as ARM sees them: VM objects on their directories (pid file, power cut)."""
    vms_dir = os.path.join(run_dir, "vms")
    place = types.SimpleNamespace(run_dir=run_dir)
    names = sorted(n for n in os.listdir(vms_dir) if "." not in n) if os.path.isdir(vms_dir) else []
    return {n: VM(VmSpec(n, None, 0, None, None, 0, []), place) for n in names}


def serve(run_dir):
    """`lab.py keep RUN_DIR`: the kept stack's ARM, until SIGTERM or SIGKILL."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server = arm.Arm(arm.socket_path(run_dir), lambda: kept_vms(run_dir), os.path.join(run_dir, "arm.jsonl")).start()
    print("keeper: ARM on %s (pid %d)" % (arm.socket_path(run_dir), os.getpid()), flush=True)
    while not done.wait(3600):
        pass
    server.stop()
    return 0


def admin(run_id=None):
    """`lab.py admin [RUN_ID]`: the wp-admin user and password of the kept stack (or of RUN_ID)."""
    from . import clean
    found = clean.runs([run_id] if run_id else None)
    if not run_id:
        found = [r for r in found if r[2].get("kept")]
    if not found:
        common.die("no kept stack%s: make lab leaves one up" % (" " + run_id if run_id else ""), 2)
    run_dir = found[-1][1]
    with open(os.path.join(run_dir, "secret")) as f:
        print("%s %s" % wp_admin(f.read().strip()))
    return 0


def banner(lab):
    """What `make lab` prints last when it leaves the stack up."""
    ssh = "sudo ip netns exec %s ssh -i %s -p 220N -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null " \
          "root@127.0.0.1" % (lab.net.ns, lab.ssh_key)
    return [
        "",
        "lab: the stack stays up (run %s, namespace %s)" % (lab.run_id, lab.net.ns),
        "  WordPress   %s   from a browser on this machine (the public load balancer)" % PUBLIC_URL,
        "  wp-admin    %swp-admin/   user wpadmin; its password: sudo python3 scripts/lab/lab.py admin"
        % PUBLIC_URL,
        "  a VM        %s   (N: 1 db-a, 2 db-b, 3 web-1, 4 web-2)" % ssh,
        "  from another machine: docs/lab.md \"Looking at the kept stack\"",
        "  stop it     sudo make lab-down",
    ]

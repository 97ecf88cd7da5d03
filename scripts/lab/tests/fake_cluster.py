#!/usr/bin/env python3
"""Stand-in `hainit` and `cibadmin` for test_converge (one script, by the name it is run as): a db
leader whose cluster carries hainit's rendered CIB (the golden debian12 one) with every timeout
hainit scales multiplied by the scale the cluster was last applied with. `plan --json` compares it
with the config's db.op_timeout_scale (FAKE_CONFIG); `hainit --role db` applies the config's.
FAKE_MODE makes it misbehave: extra-step (plan also changes db.packages), apply-noop (apply says it
changed but the CIB keeps its timeouts), touch-constraint (apply also changes a constraint's score)."""

import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.realpath(__file__))  # run through symlinks named hainit, cibadmin
GOLDEN = os.path.join(HERE, "..", "..", "..", "tests", "golden", "render-db", "debian12-leader", "var", "lib",
                      "hainit", "cib.xml")
MODE = os.environ.get("FAKE_MODE", "")


def read(name, default=None):
    try:
        with open(os.path.join(os.environ["FAKE_STATE"], name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def write(name, value):
    with open(os.path.join(os.environ["FAKE_STATE"], name), "w") as f:
        f.write(str(value))


def config_scale():
    with open(os.environ["FAKE_CONFIG"]) as f:
        return int(re.search(r"^  op_timeout_scale: (\d+)$", f.read(), re.M).group(1))


def scaled(text, scale):
    """A rendered CIB with every timeout hainit scales (not a fence device's) times scale."""
    root = ET.fromstring(text)
    conf = root.find("configuration")
    for prim in conf.find("resources").iter("primitive"):
        if prim.get("class") != "stonith":
            for op in prim.iter("op"):
                op.set("timeout", "%ds" % (int(op.get("timeout")[:-1]) * scale))
    for nv in conf.findall("op_defaults/meta_attributes/nvpair"):
        nv.set("value", "%ds" % (int(nv.get("value")[:-1]) * scale))
    return root


def cib():
    with open(GOLDEN) as f:
        root = scaled(f.read(), int(read("cluster_scale")))
    if read("constraint_touched"):
        root.find("configuration/constraints/rsc_colocation").set("score", "1000")
    return ET.tostring(root, encoding="unicode")


def plan():
    differs = config_scale() != int(read("cluster_scale"))
    steps = [{"name": "common.sysctl", "state": "ok", "actions": []},
             {"name": "db.packages", "state": "ok", "actions": []},
             {"name": "db.cluster.resources", "state": "ok", "actions": []}]
    if differs:
        steps[2] = {"name": "db.cluster.resources", "state": "change", "actions": [
            {"type": "dir", "path": "/run/hainit", "mode": "0700", "owner": "root", "group": "root"},
            {"type": "file", "path": "/run/hainit/cib.patch", "mode": "0600", "owner": "root", "group": "root",
             "sha256": "0" * 64},
            {"type": "command", "argv": ["cibadmin", "--patch", "--xml-file", "/run/hainit/cib.patch"],
             "why": "Pacemaker 2.1 line, 21 change(s) in one transaction against CIB 0.12.3: op_defaults timeout"}]}
    if MODE == "extra-step" and differs:
        steps[1] = {"name": "db.packages", "state": "change",
                    "actions": [{"type": "command", "argv": ["apt-get", "install", "-y", "mariadb-server"],
                                 "why": "install"}]}
    print(json.dumps({"steps": steps}, indent=1))


def apply():
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    new = config_scale()
    changed = new != int(read("cluster_scale"))
    lines = ["%s  INFO converging role=db node=db-a platform=debian12" % ts,
             '%s  INFO step{id="common.sysctl"}: ok' % ts, '%s  INFO step{id="db.packages"}: ok' % ts]
    if changed:
        if MODE != "apply-noop":
            write("cluster_scale", new)
        if MODE == "touch-constraint":
            write("constraint_touched", "1")
        lines.append('%s  INFO step{id="db.cluster.resources"}: start action=run cibadmin --patch' % ts)
        lines.append('%s  INFO step{id="db.cluster.resources"}: changed actions=3' % ts)
    else:
        lines.append('%s  INFO step{id="db.cluster.resources"}: ok' % ts)
    lines.append("%s  INFO converged steps=3 changed=%d" % (ts, int(changed)))
    print("\n".join(lines), file=sys.stderr)


def main():
    name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    if name == "cibadmin" and args == ["--query"]:
        print(cib())
    elif name == "hainit" and args == ["--role", "db", "plan", "--json"]:
        plan()
    elif name == "hainit" and args == ["--role", "db"]:
        apply()
    else:
        print("fake_cluster: unexpected %s %s" % (name, args), file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main())

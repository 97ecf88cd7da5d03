"""A changed setting reaches the running cluster (issue 19): after bring-up, on the db leader, one
setting of the node's config is changed (db.op_timeout_scale, old -> new). `plan` must show one
changing step, db.cluster.resources, with one `cibadmin --patch`; `apply` runs it; the live CIB,
read back with `cibadmin --query` and parsed, has every operation timeout hainit scales scaled by
new/old and nothing else in its resources and constraints changed; `plan` is converged again.
Then the original config goes back and is applied, and the CIB must be as it was, so the scenarios
that follow run the stack as configured. A failure of any of it fails the run."""

import hashlib
import json
import os
import re
import time
import xml.etree.ElementTree as ET

from . import common, rerun

CONFIG = "/etc/hainit/hainit.yaml"
SECTION, KEY = "db", "op_timeout_scale"
SETTING = SECTION + "." + KEY
STEP = "db.cluster.resources"
# hainit refuses a scale above this (src/roles/db/mod.rs).
SCALE_MAX = 10
# The operation whose timeout the report shows (cib::MYSQLD's monitor).
READ_BACK = ("mysqld", "monitor")
OP_DEFAULTS = "op_defaults timeout"


def leader(lab):
    """The db VM that writes the cluster configuration: the lowest name of the pair (design.md)."""
    return lab.vms[min(name for name, vm in lab.vms.items() if vm.spec.role == "db")]


# ---- the config ---------------------------------------------------------------------------------

def changed_config(text):
    """(old, new, text with the setting changed): the one `KEY: N` line of the `SECTION:` block,
    new = old + 1 (old - 1 at hainit's limit). Anything else is an error naming what it found."""
    lines = text.splitlines(True)
    section, found = None, []
    for i, line in enumerate(lines):
        top = re.match(r"^([A-Za-z_][\w-]*):", line)
        if top:
            section = top.group(1)
            continue
        m = re.match(r"^(\s+)%s:\s*(\S*)\s*$" % KEY, line)
        if m and section == SECTION:
            found.append((i, m))
    if len(found) != 1:
        raise common.LabError("%s: want one `%s:` line in its `%s:` section, found %d"
                              % (CONFIG, KEY, SECTION, len(found)))
    i, m = found[0]
    if not m.group(2).isdigit():
        raise common.LabError("%s: %s is %r, not a whole number" % (CONFIG, SETTING, m.group(2)))
    old = int(m.group(2))
    new = old + 1 if old < SCALE_MAX else old - 1
    lines[i] = "%s%s: %d\n" % (m.group(1), KEY, new)
    return old, new, "".join(lines)


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def write_config(vm, text):
    """The node's config replaced atomically (mode 0600, as cloud-init writes it); the text goes on
    ssh's stdin, never on a command line (it holds the shared secret). Checked by its sha256."""
    tmp = CONFIG + ".lab-new"
    r = vm.ssh("umask 077 && cat >%s && chmod 0600 %s && mv -f %s %s && sha256sum %s"
               % (tmp, tmp, tmp, CONFIG, CONFIG), check=False, timeout=60, input=text)
    got = r.stdout.split()[0] if r.returncode == 0 and r.stdout.split() else None
    if got != sha256(text):
        raise common.LabError("%s: writing %s failed (exit %d, sha256 %s): %s"
                              % (vm.name, CONFIG, r.returncode, got, (r.stderr or r.stdout).strip()[-300:]))


def config_sha(vm):
    r = vm.ssh("sha256sum %s" % CONFIG, check=False, timeout=60)
    if r.returncode != 0 or not r.stdout.split():
        raise common.LabError("%s: sha256sum %s exited %d: %s" % (vm.name, CONFIG, r.returncode, r.stderr.strip()))
    return r.stdout.split()[0]


# ---- plan --------------------------------------------------------------------------------------

def plan_summary(text):
    """`hainit plan --json` -> {changing_steps, actions, patch_actions, why}: the steps whose state is
    change, their actions, how many of those are `cibadmin --patch`, and what the patch says it does."""
    try:
        steps = json.loads(text)["steps"]
        changing = [s for s in steps if s["state"] == "change"]
        actions = [a for s in changing for a in s["actions"]]
    except (ValueError, KeyError, TypeError) as e:
        raise common.LabError("hainit plan --json is not a plan (%s): %s" % (e, text.strip()[:300]))
    if any(s["state"] not in ("ok", "change") for s in steps):
        raise common.LabError("hainit plan --json: a step state other than ok/change: %s"
                              % sorted({s["state"] for s in steps}))
    patches = [a for a in actions if a.get("type") == "command" and a.get("argv", [])[:2] == ["cibadmin", "--patch"]]
    return {"changing_steps": [s["name"] for s in changing], "actions": len(actions),
            "patch_actions": len(patches), "why": patches[0].get("why", "") if patches else None}


def one_patch(p):
    """None when the plan is what a changed setting must give: one changing step, STEP, one patch."""
    if p["changing_steps"] != [STEP] or p["patch_actions"] != 1:
        return ("plan should change only %s with one cibadmin --patch; it changes %s with %d patch(es)"
                % (STEP, ", ".join(p["changing_steps"]) or "nothing", p["patch_actions"]))
    return None


def plan(vm, timeout):
    t0 = time.time()
    r = vm.ssh("hainit --role db plan --json", check=False, timeout=timeout)
    if r.returncode != 0:
        raise common.LabError("%s: hainit --role db plan --json exited %d: %s"
                              % (vm.name, r.returncode, r.stderr.strip()[-400:]))
    p = plan_summary(r.stdout)
    p["seconds"] = round(time.time() - t0, 1)
    return p


# ---- the CIB ------------------------------------------------------------------------------------

def seconds(value, what):
    """A CIB timeout as hainit writes it ("80s", or a bare number of seconds) -> int."""
    m = re.match(r"^(\d+)s?$", value or "")
    if m is None:
        raise common.LabError("%s: timeout %r is not in seconds" % (what, value))
    return int(m.group(1))


def configuration(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise common.LabError("cibadmin --query gave no XML (%s): %s" % (e, text.strip()[:200]))
    conf = root.find("configuration")
    if root.tag != "cib" or conf is None or conf.find("resources") is None:
        raise common.LabError("cibadmin --query: no <cib><configuration><resources> in %s" % text.strip()[:200])
    return conf


def timeouts(text):
    """{"<primitive> <op> <interval>": seconds} for every operation of every primitive but fence
    devices (hainit scales those; a fence device's monitor it does not), and the operation default."""
    conf = configuration(text)
    out = {}
    for prim in conf.find("resources").iter("primitive"):
        if prim.get("class") == "stonith":
            continue
        for op in prim.iter("op"):
            label = "%s %s %s" % (prim.get("id"), op.get("name"), op.get("interval"))
            out[label] = seconds(op.get("timeout"), label)
    for nv in conf.findall("op_defaults/meta_attributes/nvpair"):
        if nv.get("name") == "timeout":
            out[OP_DEFAULTS] = seconds(nv.get("value"), OP_DEFAULTS)
    return out


def shape(text):
    """The CIB's resources and constraints without operation timeouts, as text: what must not move
    when only the timeouts do."""
    conf = configuration(text)
    parts = []
    for name in ("resources", "constraints"):
        el = conf.find(name)
        if el is None:
            parts.append("<%s/>" % name)
            continue
        for op in el.iter("op"):
            op.attrib.pop("timeout", None)
        parts.append(ET.tostring(el, encoding="unicode"))
    return "".join(parts)


def scaled(before, after, old, new):
    """Problems with the CIB after a scale change old -> new: every timeout must be before x new/old
    (exactly), no operation gained or lost, and at least one changed."""
    problems = []
    if set(before) != set(after):
        problems.append("operations differ: gone %s, new %s" % (sorted(set(before) - set(after)) or "none",
                                                                sorted(set(after) - set(before)) or "none"))
    for label in sorted(set(before) & set(after)):
        if after[label] * old != before[label] * new:
            problems.append("%s: timeout %d s -> %d s, want %s s" % (label, before[label], after[label],
                                                                     before[label] * new / old))
    if not before:
        problems.append("no operation timeouts in the CIB")
    return problems


def read_back(before, after):
    """The operation the report shows: its label, and its timeout before and after."""
    prefix = "%s %s " % READ_BACK
    label = next((k for k in sorted(after) if k.startswith(prefix)), None)
    if label is None or label not in before:
        raise common.LabError("the CIB has no %s %s operation" % READ_BACK)
    return {"op": label, "before_s": before[label], "after_s": after[label]}


def query(vm, name):
    """`cibadmin --query` on vm, kept beside it as NAME.xml; its text."""
    r = vm.ssh("cibadmin --query", check=False, timeout=120)
    if r.returncode != 0:
        raise common.LabError("%s: cibadmin --query exited %d: %s" % (vm.name, r.returncode, r.stderr.strip()[-300:]))
    with open(os.path.join(vm.dir, name + ".xml"), "w") as f:
        f.write(r.stdout)
    return r.stdout


# ---- the check ----------------------------------------------------------------------------------

def apply(vm, log_name, timeout, or_nothing=False):
    """`hainit --role db` as the operator runs it (rerun.command), its log beside the VM; it must exit
    0 having changed STEP only (or_nothing: or nothing at all)."""
    r = vm.ssh(rerun.command("db"), check=False, timeout=timeout)
    with open(os.path.join(vm.dir, log_name), "w") as f:
        f.write(r.stdout + r.stderr)
    a = rerun.parse(r.stdout)
    if a["exit"] != 0:
        raise common.LabError("%s: hainit --role db exited %d: %s" % (vm.name, a["exit"], a.get("error")))
    if a["changed_steps"] != [STEP] and not (or_nothing and not a["changed_steps"]):
        raise common.LabError("%s: hainit --role db changed %s, want %s only"
                              % (vm.name, ", ".join(a["changed_steps"]) or "nothing", STEP))
    return a


def run(lab, result, timeout=1200):
    """The check on the db leader; result["converge"]; LabError when it failed (after restoring)."""
    vm = leader(lab)
    out = {"node": vm.name, "setting": SETTING}
    result["converge"] = out
    with open(vm.path("hainit.yaml")) as f:
        original = f.read()
    changed = False
    before = None
    try:
        if config_sha(vm) != sha256(original):
            raise common.LabError("%s: %s is not the config the lab gave it" % (vm.name, CONFIG))
        old, new, text = changed_config(original)
        out.update(old=old, new=new)
        cib_before = query(vm, "cib-before-converge")
        before = timeouts(cib_before)
        changed = True  # from here on the original goes back, whatever failed (a write cut short too)
        write_config(vm, text)
        out["plan"] = plan(vm, timeout)
        problem = one_patch(out["plan"])
        if problem:
            raise common.LabError(problem)
        out["apply"] = apply(vm, "hainit-converge.log", timeout)
        cib_after = query(vm, "cib-after-converge")
        after = timeouts(cib_after)
        out["read_back"] = read_back(before, after)
        out["ops_changed"] = sum(1 for k in after if before.get(k) != after[k])
        problems = scaled(before, after, old, new)
        if shape(cib_before) != shape(cib_after):
            problems.append("the CIB's resources or constraints changed beyond operation timeouts "
                            "(cib-before-converge.xml, cib-after-converge.xml)")
        if problems:
            raise common.LabError("the CIB after apply: " + "; ".join(problems))
        again = plan(vm, timeout)
        out["converged_after"] = not again["changing_steps"]
        if again["changing_steps"]:
            raise common.LabError("plan after apply still changes %s" % ", ".join(again["changing_steps"]))
    except common.LabError as e:
        out["error"] = str(e)
    finally:
        if changed:
            out["restore"] = restore(vm, original, cib_before, timeout)
    out["ok"] = "error" not in out and "error" not in out.get("restore", {})
    lab.log("%s: %s changed on the converged leader: %s" % (vm.name, SETTING, summary(out)))
    if not out["ok"]:
        raise common.LabError("%s changed on %s: %s" % (SETTING, vm.name, failure(out)))
    return out


def restore(vm, original, cib_before, timeout):
    """The config the lab gave the node, applied (a check that failed before its apply leaves nothing
    to undo); the CIB must then be as before the change."""
    r = {}
    try:
        write_config(vm, original)
        r["apply"] = apply(vm, "hainit-converge-restore.log", timeout, or_nothing=True)
        cib = query(vm, "cib-restored")
        r["cib_as_before"] = timeouts(cib) == timeouts(cib_before) and shape(cib) == shape(cib_before)
        if not r["cib_as_before"]:
            raise common.LabError("the CIB after restoring differs from before the change (cib-restored.xml)")
    except common.LabError as e:
        r["error"] = "restoring the original config: %s" % e
    return r


def failure(out):
    return "; ".join(x for x in (out.get("error"), out.get("restore", {}).get("error")) if x)


def summary(out):
    """One line for lab.log and the report."""
    if not out.get("ok"):
        return "FAILED: " + failure(out)
    p, a, rb = out["plan"], out["apply"], out["read_back"]
    return ("%s -> %s: plan %d changing step (%s), %d action(s), %d patch; apply %.1f s; %s timeout %d s -> %d s "
            "(%d timeouts scaled); converged after; restored in %.1f s"
            % (out["old"], out["new"], len(p["changing_steps"]), ", ".join(p["changing_steps"]), p["actions"],
               p["patch_actions"], a["seconds"], rb["op"], rb["before_s"], rb["after_s"], out["ops_changed"],
               out["restore"]["apply"]["seconds"]))

"""report.md and report.json: pass/fail per scenario, timings, the manual path beside hainit's."""

import json
import os
import time

from . import browser, converge, report_html, rerun, sitecheck

TARGETS = {"lab_minutes": 30, "ram_mib": 8192, "initial_sync_s": 0, "failover_s": 60}
# Every scenario of `make lab`, in the order a full run takes them.
SCENARIOS = ["drill", "repair", "crash", "splitbrain"]


def scenario(result, name):
    return next((s for s in result.get("scenarios", []) if s["name"] == name), None)


def ratio(manual, ours):
    if manual is None or ours is None:
        return "–"
    if ours == 0:
        return "∞ (%.0f s saved)" % manual if manual else "1"
    return "%.1fx" % (manual / ours)


def fmt(v, unit=" s"):
    return "–" if v is None else ("%s%s" % (v, unit))


def figures(result):
    """The headline numbers, also stored in report.json under "figures"."""
    drill = scenario(result, "drill") or {}
    fo = drill.get("failover") or {}
    boot = result.get("boot") or {}
    howto = result.get("howto") or {}
    image = result.get("image") or {}
    t = drill.get("timings", {})
    base = image.get("base") or {}
    f = {
        "image_sha256": base.get("vhd_sha256"),
        "azure_image_build_s": (base.get("seconds") or {}).get("total"),
        "image_build_s": (image.get("seconds") or {}).get("total"),
        "image_cached": result.get("image_cached"),
        "boot_to_wordpress_s": boot.get("wordpress_s"),
        "boot_to_ssh_s": boot_range(boot, "ssh_s"),
        "firmware_and_loader_s": boot_range(boot, "firmware_and_loader_s"),
        "initial_sync_s": boot.get("initial_sync", {}).get("seconds"),
        "howto_full_initial_sync_s": howto.get("full_initial_sync_s"),
        "failover_kill_to_vip_write_s": t.get("failover_kill_to_vip_write_s"),
        "failover_kill_to_post_s": t.get("failover_kill_to_post_s"),
        "failover_timing_profile": (result.get("settings") or {}).get("timing_profile"),
        "failover_token_ms": fo.get("token_ms"),
        "resync_after_restart_s": t.get("killed_primary_restart_to_uptodate_s"),
        "repair_full_resync_s": ((scenario(result, "repair") or {}).get("timings") or {}).get("resync_to_fresh_node_s"),
        "lab_total_s": result.get("seconds"),
        "peak_rss_mib": result.get("peak_rss_mib"),
    }
    runs = [r for r in (result.get("rerun") or {}).values() if "seconds" in r]
    if runs:
        f["rerun_max_s"] = max(r["seconds"] for r in runs)
        f["rerun_actions"] = sum(r["actions"] for r in runs)
    conv = result.get("converge") or {}
    if conv.get("apply"):
        f["converge_apply_s"] = conv["apply"]["seconds"]
    marks = fo.get("marks_s", {})
    if "ilb_up" in marks and "ilb3306_up" in marks and f["failover_kill_to_vip_write_s"] is not None:
        # The how-to's ILB probes 3306: the same failover, with its probe's up-time instead of ours.
        f["howto_failover_3306_probe_s"] = round(f["failover_kill_to_vip_write_s"] - marks["ilb_up"]
                                                 + marks["ilb3306_up"], 1)
    return f


def targets(result, f):
    rows = []
    total = f.get("lab_total_s")
    ran = [s["name"] for s in result.get("scenarios", [])]
    measured = fmt(None if total is None else round(total / 60, 1), " min")
    if set(ran) >= set(SCENARIOS):
        met = bool(result.get("ok")) and total is not None and total < TARGETS["lab_minutes"] * 60
    else:
        # A run of some scenarios says nothing about the whole lab's time.
        measured += " (%s only)" % (", ".join(["bring-up"] + ran))
        met = None
    rows.append(("whole `make lab` from a cached image (every scenario run)", "< %d min" % TARGETS["lab_minutes"],
                 measured, met))
    rss = f.get("peak_rss_mib")
    rows.append(("RAM of all VMs (peak summed qemu RSS)", "< 8 GiB", fmt(rss, " MiB"),
                 bool(rss) and rss < TARGETS["ram_mib"]))
    sync = f.get("initial_sync_s")
    rows.append(("DRBD initial sync of a new pair", "0 s", fmt(sync), sync == 0))
    fo = f.get("failover_kill_to_vip_write_s")
    rows.append(("failover: kill -> first write through the VIP", "< 60 s", fmt(fo), fo is not None and fo < 60))
    reruns = result.get("rerun")
    if reruns:
        measured = "%s action(s), slowest %s" % (fmt(f.get("rerun_actions"), ""), fmt(f.get("rerun_max_s")))
        rows.append(("re-run of hainit on each converged VM", "0 actions, <= %.0f s" % rerun.TARGET_S, measured,
                     all(rerun.met(r) for r in reruns.values())))
    conv = result.get("converge")
    if conv:
        rows.append(("a changed %s on the converged db leader" % conv.get("setting", converge.SETTING),
                     "one patch, the new value in the CIB, converged after", converge_measured(conv),
                     bool(conv.get("ok"))))
    return rows


def converge_measured(conv):
    """The converge check in a few words (report.md's target row, report.html)."""
    if not conv.get("ok"):
        return "failed: " + clip(converge.failure(conv), 160)
    rb = conv["read_back"]
    return ("%s -> %s: %d patch, applied in %s s; %s timeout %s s -> %s s in the CIB"
            % (conv["old"], conv["new"], conv["plan"]["patch_actions"], conv["apply"]["seconds"], rb["op"],
               rb["before_s"], rb["after_s"]))


def write(result, run_dir):
    f = figures(result)
    result["figures"] = f
    result["targets"] = [{"what": w, "target": t, "measured": m, "met": ok} for w, t, m, ok in targets(result, f)]
    with open(os.path.join(run_dir, "report.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    s = result.get("settings", {})
    lab = result.get("kind", "lab") == "lab"
    verdict = "PASS" if result.get("ok") else "FAIL"
    if lab:
        lines = ["# hainit lab report — run %s" % result["run_id"], ""]
        where = "accelerator " + str(s.get("accel"))
    else:
        lines = ["# hainit Azure drill report — run %s" % result["run_id"], ""]
        where = "%s (resource group %s)" % (s.get("url"), s.get("resource_group"))
    lines.append("**%s** — %s, %s, %d s in all; run directory `%s`." % (
        verdict, result.get("started", ""), where, result.get("seconds") or 0, result["run_dir"]))
    if lab:
        lines += [""] + image_lines(result.get("image") or {})
    if result.get("error"):
        lines.append("")
        lines.append("Stopped early: `%s`" % result["error"])
    lines += ["", "## Scenarios", "", "| scenario | result | seconds |", "|---|---|---|"]
    if lab:
        lines.append("| bring-up (4 VMs, first boot, WordPress through the LB) | %s | %s |" % (
            "pass" if result.get("boot", {}).get("wordpress_s") else "fail",
            fmt(result.get("boot", {}).get("wordpress_s"), "")))
    for sc in result.get("scenarios", []):
        lines.append("| %s | %s | %s |" % (sc["name"], sc["status"], sc.get("seconds")))
    if not lab:
        lines += drill_timings(result)
        for sc in result.get("scenarios", []):
            lines += scenario_section(sc)
        lines += ["", "## Settings", "", "```", json.dumps(s, indent=1), "```"]
        path = os.path.join(run_dir, "report.md")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        report_html.write(result, run_dir, TARGETS["failover_s"])
        return path
    lines += ["", "## Timings: hainit beside the how-to's manual path (same run)", "",
              "| measure | hainit | how-to manual path | gain |", "|---|---|---|---|"]
    base = (result.get("image") or {}).get("base") or {}
    lines.append("| Azure image build (`make azure-image`, built %s) | %s | – | – |" % (
        base.get("built_at", "?"), fmt(f["azure_image_build_s"])))
    cached = " (cached; built in this time on %s)" % result.get("image", {}).get("built_at", "?")
    lines.append("| lab layer over it (`make lab-image`) | %s%s | – | – |" % (
        fmt(f["image_build_s"]), cached if f.get("image_cached") else ""))
    lines.append("| VM start -> its kernel (qemu, UEFI firmware, GRUB) | %s | – | – |" % fmt_range(f["firmware_and_loader_s"]))
    lines.append("| VMs started -> ssh (firmware, GRUB, kernel, first boot) | %s | – | – |" % fmt_range(f["boot_to_ssh_s"]))
    lines.append("| boot -> WordPress served through the public LB | %s | – | – |" % fmt(f["boot_to_wordpress_s"]))
    lines.append("| DRBD initial sync of a new pair (%s MiB) | %s | %s (full sync) | %s |" % (
        s.get("data_disk_mib"), fmt(f["initial_sync_s"]), fmt(f["howto_full_initial_sync_s"]),
        ratio(f["howto_full_initial_sync_s"], f["initial_sync_s"])))
    lines.append("| failover: kill -> first write through the VIP | %s | %s (ILB probing 3306) | %s |" % (
        fmt(f["failover_kill_to_vip_write_s"]), fmt(f.get("howto_failover_3306_probe_s")),
        ratio(f.get("howto_failover_3306_probe_s"), f["failover_kill_to_vip_write_s"])))
    lines.append("| timing profile of that failover (token read from the cluster) | %s, token %s | – | – |" % (
        f.get("failover_timing_profile") or "–", fmt(f.get("failover_token_ms"), " ms")))
    lines.append("| failover: kill -> post through the public LB | %s | – | – |" % fmt(f["failover_kill_to_post_s"]))
    lines.append("| resync after restarting the killed primary | %s | – | – |" % fmt(f["resync_after_restart_s"]))
    lines.append("| full resync to a replaced db VM | %s | – | – |" % fmt(f["repair_full_resync_s"]))
    lines += incidents_section(result)
    lines += bringup_section(result)
    lines += rerun_section(result)
    lines += converge_section(result)
    lines += failover_section(result, s)
    lines += ["", "## Targets (issue 5, item 8)", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for w, t, m, ok in targets(result, f):
        lines.append("| %s | %s | %s | %s |" % (w, t, m, "not judged" if ok is None else "yes" if ok else "**no**"))
    for sc in result.get("scenarios", []):
        lines += scenario_section(sc)
    lines += ["", "## Settings", "", "```", json.dumps(s, indent=1), "```"]
    path = os.path.join(run_dir, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    report_html.write(result, run_dir, TARGETS["failover_s"])
    return path


DRILL_TIMINGS = [("standby_stop_to_post_s", "standby stopped -> post through the public LB"),
                 ("standby_restart_to_uptodate_s", "standby started -> DRBD UpToDate/UpToDate"),
                 ("failover_stop_api_s", "power-off of the primary (the call itself)"),
                 ("failover_kill_to_post_s", "**primary powered off -> post through the public LB**"),
                 ("killed_primary_restart_to_uptodate_s", "killed primary started -> resynced")]


def drill_timings(result):
    """The drill's timings as a table (the Azure report; the lab's has them in its own table)."""
    drill = scenario(result, "drill") or {}
    t = drill.get("timings", {})
    lines = ["", "## Timings", "", "| measure | seconds |", "|---|---|"]
    for key, label in DRILL_TIMINGS:
        lines.append("| %s | %s |" % (label, fmt(t.get(key))))
    k = 1
    while "web%d_stop_to_post_s" % k in t:
        lines.append("| web VM %d stopped -> post | %s |" % (k, fmt(t.get("web%d_stop_to_post_s" % k))))
        lines.append("| web VM %d started -> in the LB again | %s |" % (k, fmt(t.get("web%d_start_to_lb_up_s" % k))))
        k += 1
    return lines


def boot_range(boot, key):
    """[min, max] of a first-boot measure over the VMs (ssh_s: from starting the VMs to ssh
    answering; firmware_and_loader_s: from a VM's start to its kernel's); None when none has it."""
    times = [v[key] for v in (boot.get("vms") or {}).values() if v.get(key) is not None]
    return [min(times), max(times)] if times else None


def fmt_range(r):
    return "–" if not r else ("%s s" % r[0] if r[0] == r[1] else "%s–%s s" % (r[0], r[1]))


def image_lines(image):
    """Which image the run proved: the Azure VHD by its sha256, and the lab's layer over it."""
    base = image.get("base") or {}
    if not base.get("vhd_sha256"):
        return ["Image: unknown (no image.json in the lab image)."]
    layer = image.get("lab_layer") or {}
    lines = ["Image: `hainit-debian12.vhd` sha256 `%s` (`make azure-image`, %s, %s), booted as Azure boots it: "
             "UEFI firmware (OVMF), its own GRUB and kernel. The lab's layer over it (a qcow2 overlay of %s "
             "bytes; the VHD is not written) changes:" % (base["vhd_sha256"], base.get("built_at", "?"),
                                                         base.get("kernel", "?"), layer.get("qcow2_bytes", "?")), ""]
    for c in layer.get("changes", []):
        lines.append("- %s" % c["what"])
    return lines


def failure_lines(result, run_dir, journal_lines=8):
    """Why a run failed, in the few lines a CI log's tail shows: the failing step and its error, and
    the end of hainit's journal on a VM whose first boot failed. The last line is the verdict."""
    lines, reasons = [], []
    if result.get("error"):
        reasons.append("bring-up" if not result.get("scenarios") else "run")
        lines.append("lab: stopped: %s" % clip(result["error"]))
    for sc in result.get("scenarios", []):
        if sc.get("status") != "fail":
            continue
        reasons.append("scenario " + sc["name"])
        bad = [st for st in sc.get("steps", []) if st.get("ok") is False]
        for st in bad:
            lines.append("lab: %s: step \"%s\" failed after %s s: %s" % (
                sc["name"], st["step"], st.get("seconds"), clip(st.get("error", ""))))
        if sc.get("error") and not bad:
            lines.append("lab: %s: %s" % (sc["name"], clip(sc["error"])))
        for x in sc.get("failed", []):
            lines.append("lab: %s: %s" % (sc["name"], clip(x)))
    for name, vm in sorted((result.get("boot") or {}).get("vms", {}).items()):
        if vm.get("hainit") == "ok":
            continue
        tail = journal_tail(os.path.join(run_dir, "vms", name, "diagnostics.txt"), journal_lines)
        state = vm.get("hainit") or "not finished"
        lines.append("lab: %s: hainit %s (exit %s)%s" % (name, state, vm.get("hainit_exit"),
                                                        "; its journal ends:" if tail else ""))
        lines += ["  " + clip(t) for t in tail]
    if result.get("kind", "lab") == "lab":
        lines.append("lab: FAILED (%s) — logs: %s (lab.log, vms/*/console.log, vms/*/diagnostics.txt)"
                     % (", ".join(reasons) or "unknown", run_dir))
    else:
        lines.append("drill: FAILED (%s) — logs: %s (drill.log, report.md)" % (", ".join(reasons) or "unknown", run_dir))
    return lines


def clip(text, width=240):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def journal_tail(path, n):
    """The last n lines of the hainit journal section of a VM's diagnostics.txt (stack.collect_diagnostics)."""
    try:
        with open(path) as f:
            sections = f.read().split("### ")
    except OSError:
        return []
    body = next((s for s in sections if s.startswith("journalctl -u hainit")), "")
    return [line for line in body.splitlines()[1:] if line.strip()][-n:]


def incidents_section(result):
    """db VMs fenced outside any scenario, started again before the next one (steps.recover_fenced)."""
    incidents = result.get("incidents") or []
    if not incidents:
        return []
    lines = ["", "## Incidents: fenced outside a scenario", ""]
    for i in incidents:
        when = time.strftime("%H:%M:%S", time.localtime(i["qemu_exit"])) if i.get("qemu_exit") else "unseen"
        lines.append("- %s fenced (qemu exited %s host time) before %s; started again, ssh after %s s; the "
                     "survivor said: %s" % (i["vm"], when, i["before"], i.get("boot_s"),
                                            "`%s`" % i["reason"] if i.get("reason") else "nothing"))
    return lines


def bringup_section(result):
    """Each VM's first boot, step by step (seconds, summed over hainit runs)."""
    vms = {name: v["steps_s"] for name, v in (result.get("boot") or {}).get("vms", {}).items() if v.get("steps_s")}
    if not vms:
        return []
    names = list(vms)
    steps = []
    for per_vm in vms.values():
        steps += [st for st in per_vm if st not in steps]
    lines = ["", "## Bring-up breakdown: hainit's steps at first boot (seconds)", "",
             "| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for st in steps:
        lines.append("| %s | %s |" % (st, " | ".join(fmt(vms[n].get(st), "") for n in names)))
    lines.append("| **hainit in all** | %s |" % " | ".join("**%s**" % round(sum(vms[n].values()), 1) for n in names))
    return lines


def rerun_section(result):
    """hainit once more on each VM after bring-up (rerun.run): seconds, actions, what changed."""
    reruns = result.get("rerun")
    if not reruns:
        return []
    lines = ["", "## Re-run on a converged node: `hainit --role db|web` after bring-up", "",
             "| VM | seconds | actions | steps changed | slowest steps | exit |", "|---|---|---|---|---|---|"]
    for name, r in reruns.items():
        if "seconds" not in r:
            lines.append("| %s | – | – | – | – | %s |" % (name, clip(r.get("error")).replace("|", "\\|")))
            continue
        changed = ", ".join(r["changed_steps"]) or "none"
        slowest = ", ".join("%s %s s" % kv for kv in r.get("slowest_steps_s", {}).items()) or "–"
        error = ": " + clip(r["error"]).replace("|", "\\|") if r.get("error") else ""
        lines.append("| %s | %s | %s | %s | %s | %s%s |" % (name, r["seconds"], r["actions"], changed, slowest,
                                                             r["exit"], error))
    return lines


def converge_section(result):
    """A changed setting on the running cluster and back (converge.run)."""
    conv = result.get("converge")
    if not conv:
        return []
    lines = ["", "## A changed setting on the running cluster: `%s` on %s" % (conv.get("setting"), conv.get("node")),
             ""]
    if conv.get("error") or conv.get("restore", {}).get("error"):
        lines += ["**Failed**: `%s`" % clip(converge.failure(conv), 600), ""]
    lines += ["| what | measured |", "|---|---|"]
    if "old" in conv:
        lines.append("| setting in /etc/hainit/hainit.yaml | %s -> %s |" % (conv["old"], conv["new"]))
    p = conv.get("plan")
    if p:
        lines.append("| `plan`: changing steps | %s |" % (", ".join(p["changing_steps"]) or "none"))
        lines.append("| `plan`: actions, of them `cibadmin --patch` | %d, %d |" % (p["actions"], p["patch_actions"]))
        if p.get("why"):
            lines.append("| `plan`: the patch | %s |" % clip(p["why"], 300).replace("|", "\\|"))
    a = conv.get("apply")
    if a:
        lines.append("| `apply`: seconds, actions, steps changed | %s, %s, %s |"
                     % (a["seconds"], a["actions"], ", ".join(a["changed_steps"]) or "none"))
    rb = conv.get("read_back")
    if rb:
        lines.append("| `cibadmin --query`: %s timeout | %s s -> %s s (%s timeouts scaled) |"
                     % (rb["op"], rb["before_s"], rb["after_s"], conv.get("ops_changed")))
    if "converged_after" in conv:
        lines.append("| `plan` after apply | %s |" % ("converged" if conv["converged_after"] else "**changes**"))
    r = conv.get("restore")
    if r and r.get("apply"):
        lines.append("| original config back: apply seconds, CIB as before | %s, %s |"
                     % (r["apply"]["seconds"], "yes" if r.get("cib_as_before") else "**no**"))
    return lines


def failover_section(result, s):
    fo = (scenario(result, "drill") or {}).get("failover")
    if not fo:
        return []
    ct = fo.get("cluster_timing") or {}
    lines = ["", "## Failover breakdown (hard kill of the primary db VM)", "",
             "Timing profile `%s`: corosync token %s ms, consensus %s ms, priority-fencing-delay %s (read from the "
             "survivor's running cluster); load balancer probes every %s s, %s consecutive results to change state; %s."
             % (s.get("timing_profile"), ct.get("token_ms", "?"), ct.get("consensus_ms", "?"),
                ct.get("priority_fencing_delay", "none"), s.get("probe_interval"), s.get("probe_threshold"),
                stonith_line(s)), "",
             "| stage | seconds |", "|---|---|"]
    for k, v in fo.get("stages_s", {}).items():
        lines.append("| %s | %s |" % (k, v))
    lines.append("| **kill -> first write through the VIP** | **%s** |" % fo.get("total_s"))
    if s.get("stonith") in ("arm", "sbd") and "fenced" not in fo.get("marks_s", {}):
        lines += ["", "No fencing result for the killed node found in the survivor's journal (no detected->fenced)."]
    fe = fo.get("fencing")
    if fe:
        lines += ["", "Fencing: %s s from the request to the result; of that the priority delay %s s and the fence "
                  "agent's round trip (IMDS token, ARM calls, until the VM is off) %s s; the ARM powerOff arrived "
                  "%s s after the request." % (fe.get("requested_to_fenced_s"), fmt(fe.get("priority_fencing_delay_s"), ""),
                                              fmt(fe.get("agent_round_trip_s"), ""),
                                              fmt(fe.get("requested_to_arm_power_off_s"), ""))]
    ops = fo.get("operations_s") or {}
    if ops:
        lines += ["", "The cluster's own operations (seconds after the kill: the controller initiating it, the "
                  "agent's result):", "", "| operation | initiated | result | agent |", "|---|---|---|---|"]
        for mark, o in ops.items():
            took = round(o["done"] - o["started"], 1) if o.get("done") is not None and o.get("started") is not None else None
            lines.append("| %s | %s | %s | %s |" % (mark, fmt(o.get("started"), ""), fmt(o.get("done"), ""), fmt(took)))
    return lines


def stonith_line(s):
    """The settings sentence on fencing."""
    if s.get("stonith") == "arm":
        return ("STONITH fence_azure_arm with the VM's managed identity (hainit's default on Azure) against the "
                "lab's emulated ARM: powerOff is a power cut of the VM; priority-fencing-delay %s s: a failover "
                "waits for it before promoting" % s.get("priority_fencing_delay_s"))
    if s.get("stonith") != "sbd":
        return "STONITH off (LAB_STONITH=off: nothing fences a lost node)"
    wd = s.get("sbd_watchdog_secs")
    return ("STONITH sbd on a disk shared by the db VMs (watchdog %s s, msgwait %s s, priority-fencing-delay "
            "%s s: a failover waits for both before promoting)" % (wd, 2 * wd if wd else "?",
                                                                  s.get("priority_fencing_delay_s")))


def fencing_lines(sc):
    """Who was fenced, when, and what the survivors' fencers recorded (scenario splitbrain)."""
    fe = sc.get("fencing")
    gap = (sc.get("writes") or {}).get("longest_gap")
    lines = []
    if gap:
        lines += ["", "Longest wait between acknowledged writes (I/O freeze): %s s, from %s s to %s s after the cut."
                  % (gap["seconds"], gap["from_s"], gap["to_s"])]
    if fe is None:
        return lines
    lines += [""]
    if not fe.get("fenced"):
        lines.append("- fenced: no db VM's qemu exited on its own")
    for f in fe.get("fenced", []):
        when = time.strftime("%H:%M:%S", time.localtime(f["qemu_exit"])) if f.get("qemu_exit") else "unseen"
        lines.append("- fenced: %s, qemu exited at %s host time (%s s after the cut); started again, ssh after %s s"
                     % (f["vm"], when, f.get("qemu_exit_after_cut_s"), f.get("boot_s")))
    for p in fe.get("arm_power_offs", []):
        lines.append("- ARM powerOff of %s asked by %s, %s s after the cut (%s)"
                     % (p["vm"], p["by"], p["after_cut_s"], "it was running" if p["was_running"] else "already off"))
    for name, text in fe.get("history", {}).items():
        lines += ["", "`stonith_admin --history '*'` on %s:" % name, "", "```", text or "(nothing)", "```"]
    for name, log in fe.get("fencer_log", {}).items():
        if log:
            lines += ["", "pacemaker-fenced on %s:" % name, "", "```"] + log + ["```"]
    return lines


def scenario_section(sc):
    lines = ["", "## Scenario %s: %s (%s s)" % (sc["name"], sc["status"].upper(), sc.get("seconds")), ""]
    if sc.get("error"):
        lines += ["Error: `%s`" % sc["error"], ""]
    for x in sc.get("failed", []):
        lines.append("- FAILED: %s" % x)
    for n in sc.get("notes", []):
        lines.append("- %s" % n)
    if sc.get("verdict"):
        lines += ["", "Verdict: `%s`" % json.dumps(sc["verdict"])]
    if sc.get("writes"):
        lines += ["", "Writes: `%s`" % json.dumps(sc["writes"])]
    lines += fencing_lines(sc)
    lines += browser.report_lines(sc.get("browser"))
    if sc.get("kills"):
        lines += ["", "| killed at action | hainit then | during |", "|---|---|---|"]
        for k in sc["kills"]:
            lines.append("| %s | %s (exit %s) | `%s` |" % (k["at_action"], k["state"], k["exit"], k["last_action"]))
    if sc.get("steps"):
        lines += ["", "| step | seconds | ok |", "|---|---|---|"]
        for st in sc["steps"]:
            lines.append("| %s | %s | %s |" % (st["step"], st.get("seconds"), "yes" if st.get("ok") else "**no**"))
    if sc.get("timings"):
        lines += ["", "Timings: " + ", ".join("%s %s s" % (k, v) for k, v in sc["timings"].items())]
    lines += sitecheck.report_lines(sc)
    return lines

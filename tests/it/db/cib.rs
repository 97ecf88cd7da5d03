//! pcs and Pacemaker judge the stack the leader builds: the `pcs -f` commands of
//! `db.cluster.resources` (from a plan on a cluster that is up, quorate and empty) run for real
//! on a two-node CIB made with `cibadmin --empty` (reference Appendix A); `crm_verify` accepts
//! it and `crm_simulate` shows promotion, failover and no failback. Only pcs 0.11 is installed
//! here, so the 0.9 (CentOS 7) and 0.10 (EL8) spellings cannot be judged by pcs itself.

use std::path::Path;
use std::process::Command;

use hainit::dialect::crm_mon::{self, ClusterState};
use hainit::dialect::pcs::BATCH_SCRIPT;
use hainit::engine::{self, Options, Step};
use hainit::plan::Action;
use hainit::platform::OsId;
use hainit::roles::db::resources::ResourcesStep;
use hainit::system::{Arg, Cmd, FakeSystem, Output};

use super::{run, Node};
use crate::common::output_with_stdin;

const PRIMITIVE: &str = "drbd_wpcluster";
const GROUP: [&str; 3] = ["fs_db", "mysqld", "lb_probe"];
/// Where the step builds its working copy (replaced by the test's file).
const WORK_CIB: &str = "/run/hainit/cib-hainit.xml";
/// Where the step writes the batch script (replaced by the test's copy).
const BATCH_PATH: &str = "/run/hainit/pcs-batch.py";

/// What the leader's resources step runs to build the stack: its `pcs -f` argv lists, and the
/// one command that runs them in a single interpreter where the platform batches them.
struct Planned {
    cmds: Vec<Vec<String>>,
    batch: Option<Cmd>,
}

/// Every action the leader's resources step plans on a quorate, empty cluster.
fn planned_actions(os: OsId, yaml: &str, options: Options) -> Vec<Action> {
    let node = Node::new(os, true, yaml);
    let cx = node.cx(options);
    let sys = FakeSystem::new("db-a");
    let live = std::fs::read_to_string(fixture("debian12-live.xml")).unwrap();
    sys.on(&["crm_mon"], move |_, _| Output::ok(live.clone()));
    sys.on(&["cibadmin", "--query"], |_, _| Output::ok("<resources/>\n"));
    let steps: Vec<Box<dyn Step>> = vec![Box::new(ResourcesStep)];
    let mut plan = engine::plan(&steps, &cx, &sys).unwrap();
    let actions = plan.steps.remove(0).actions;
    assert!(!actions.iter().any(|a| a.is_wait()), "the cluster is ready: no wait expected, got {actions:?}");
    actions
}

/// The build the leader's resources step plans on a quorate, empty cluster.
fn pcs_commands(os: OsId, yaml: &str, options: Options) -> Planned {
    let cx_batches = Node::new(os, true, yaml).cx(options).platform.db.pcs_batch;
    let actions = &planned_actions(os, yaml, options);
    let runs: Vec<&Cmd> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Run { cmd, .. } => Some(cmd),
            _ => None,
        })
        .collect();
    let batch = runs.iter().find(|c| c.args.iter().any(|a| *a == Arg::Plain(BATCH_PATH.into()))).map(|c| (*c).clone());
    let cmds: Vec<Vec<String>> = match &batch {
        Some(b) => {
            let script = actions.iter().find_map(|a| match a {
                Action::Write(f) if f.path == BATCH_PATH => Some(f.content.bytes().to_vec()),
                _ => None,
            });
            assert_eq!(script.as_deref(), Some(BATCH_SCRIPT.as_bytes()), "the plan writes the batch script");
            split_lines(std::str::from_utf8(b.stdin_bytes().expect("the batch reads its commands")).unwrap())
        }
        None => runs.iter().map(|c| c.argv_redacted()).filter(|argv| argv.len() > 2 && argv[1] == "-f").collect(),
    };
    assert!(cmds.len() >= 8, "{cmds:#?}");
    assert!(cmds.iter().all(|c| c[0] == "pcs" && c[1] == "-f" && c[2] == WORK_CIB), "{cmds:#?}");
    assert_eq!(batch.is_some(), cx_batches, "{actions:#?}");
    Planned { cmds, batch }
}

/// The lines of a batch as the script reads them (Python's own shlex).
fn split_lines(input: &str) -> Vec<Vec<String>> {
    let out = output_with_stdin(
        Command::new("python3")
            .args(["-c", "import json, shlex, sys; print(json.dumps([shlex.split(l) for l in sys.stdin]))"]),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crm_mon").join(name)
}

/// An empty CIB with the two nodes, as `pcs cluster cib` gives before any resource exists.
fn empty_cib(path: &Path) {
    let xml = run(Command::new("cibadmin").arg("--empty"));
    std::fs::write(path, xml).unwrap();
    for (id, name) in [("1", "db-a"), ("2", "db-b")] {
        run(Command::new("cibadmin")
            .env("CIB_file", path)
            .args(["-o", "nodes", "-C", "-X"])
            .arg(format!("<node id=\"{id}\" uname=\"{name}\"/>")));
    }
}

/// Build the stack in `path` with the real pcs: the planned batch, or each command.
fn build(path: &Path, planned: &Planned) {
    match &planned.batch {
        Some(batch) => {
            let out = run_batch(path, batch, std::str::from_utf8(batch.stdin_bytes().unwrap()).unwrap());
            assert!(out.status.success(), "{batch}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        }
        None => build_each(path, &planned.cmds),
    }
}

/// Each `pcs -f` command on its own, as platforms without the batch run them.
fn build_each(path: &Path, cmds: &[Vec<String>]) {
    for argv in cmds {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(argv[1..].iter().map(|a| if a == WORK_CIB { path.to_str().unwrap() } else { a.as_str() }));
        run(&mut cmd);
    }
}

/// The batch command for real: the script written beside `cib`, the lines aimed at `cib`.
fn run_batch(cib: &Path, batch: &Cmd, input: &str) -> std::process::Output {
    let script = cib.with_file_name("pcs-batch.py");
    std::fs::write(&script, BATCH_SCRIPT).unwrap();
    let args: Vec<String> = batch
        .args_exposed()
        .iter()
        .map(|a| if *a == BATCH_PATH { script.display().to_string() } else { a.to_string() })
        .collect();
    output_with_stdin(
        Command::new(&batch.program).args(args),
        input.replace(WORK_CIB, cib.to_str().unwrap()).as_bytes(),
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verify(path: &Path) {
    run(Command::new("crm_verify").arg("-V").arg("-x").arg(path));
}

/// `crm_simulate -x from -S -O to` with `extra` (node changes); the resulting cluster state.
fn simulate(from: &Path, to: &Path, extra: &[&str]) -> ClusterState {
    run(Command::new("crm_simulate").arg("-x").arg(from).args(["--quorum=true", "-S", "-O"]).arg(to).args(extra));
    state(to)
}

fn state(cib: &Path) -> ClusterState {
    let xml = run(Command::new("crm_mon").env("CIB_file", cib).args(["-1", "--output-as=xml"]));
    crm_mon::parse(&xml).unwrap_or_else(|e| panic!("crm_mon XML of {}: {e}\n{xml}", cib.display()))
}

/// What the DRBD agent does on a node whose disk is UpToDate: publish its promotion score.
fn promotion_score(cib: &Path, node: &str, score: u32) {
    run(Command::new("crm_attribute")
        .env("CIB_file", cib)
        .args(["-N", node, "-n"])
        .arg(format!("master-{PRIMITIVE}"))
        .args(["-v", &score.to_string(), "-l", "reboot"]));
}

fn set_stickiness(cib: &Path, value: u32) {
    run(Command::new("pcs")
        .arg("-f")
        .arg(cib)
        .args(["resource", "defaults", "update"])
        .arg(format!("resource-stickiness={value}")));
}

/// The stack runs on `node` only: DRBD promoted there, unpromoted on `other` (if given), the
/// group started there.
fn assert_runs_on(s: &ClusterState, node: &str, other: Option<&str>, when: &str) {
    assert_eq!(s.node_of(PRIMITIVE, "Promoted"), Some(node), "{when}: promoted DRBD\n{s:#?}");
    let promoted: Vec<_> = s.resources.iter().filter(|r| r.id == PRIMITIVE && r.role == "Promoted").collect();
    assert_eq!(promoted.len(), 1, "{when}: exactly one promoted DRBD\n{s:#?}");
    if let Some(other) = other {
        assert_eq!(s.node_of(PRIMITIVE, "Unpromoted"), Some(other), "{when}: unpromoted DRBD\n{s:#?}");
    }
    for rsc in GROUP {
        assert_eq!(s.node_of(rsc, "Started"), Some(node), "{when}: {rsc}\n{s:#?}");
    }
}

/// Both nodes up → promoted on db-a, the group there; db-a fails → everything on db-b; db-a
/// comes back (rebooted: no resource history) → it is unpromoted and nothing moves back, even
/// with a slightly higher promotion score. Returns the CIB after the comeback.
fn failover_without_failback(dir: &Path, stonith: bool) -> std::path::PathBuf {
    let cib = dir.join("cib.xml");
    let up = dir.join("1-up.xml");
    let s = simulate(&cib, &up, &["--node-up", "db-a", "--node-up", "db-b"]);
    // No promotion score yet (DRBD not UpToDate): nothing promoted, the group stays stopped.
    assert_eq!(s.node_of(PRIMITIVE, "Promoted"), None, "{s:#?}");
    for rsc in GROUP {
        assert_eq!(s.node_of(rsc, "Started"), None, "{rsc} must wait for a promoted DRBD\n{s:#?}");
    }
    promotion_score(&up, "db-a", 10000);
    promotion_score(&up, "db-b", 10000);
    let running = dir.join("2-running.xml");
    let s = simulate(&up, &running, &[]);
    assert_runs_on(&s, "db-a", Some("db-b"), "both nodes up");
    assert_eq!(s.stonith_enabled, Some(stonith));
    verify(&running);

    let failed = dir.join("3-failed.xml");
    let s = simulate(&running, &failed, &["--node-fail", "db-a"]);
    assert_runs_on(&s, "db-b", None, "db-a failed");
    assert!(!s.online_nodes().contains(&"db-a"), "{s:#?}");
    verify(&failed);

    // A rebooted node rejoins with an empty resource history (the DC replaces its lrm section
    // on join); DRBD starts there, resyncs, and the agent publishes its score again.
    run(Command::new("cibadmin").env("CIB_file", &failed).args(["--delete", "--xpath", "//node_state[@uname='db-a']"]));
    let back = dir.join("4-back.xml");
    let s = simulate(&failed, &back, &["--node-up", "db-a"]);
    assert_runs_on(&s, "db-b", Some("db-a"), "db-a rejoined");
    promotion_score(&back, "db-a", 10050);
    let settled = dir.join("5-settled.xml");
    let s = simulate(&back, &settled, &[]);
    assert_runs_on(&s, "db-b", Some("db-a"), "db-a up to date again (no failback)");
    verify(&settled);
    back
}

/// ocf:linbit:drbd refuses to start without notify=true; crm_simulate runs no agent, so the
/// clone's meta attributes are read from the CIB pcs wrote.
fn assert_clone_meta(cib: &Path) {
    let xml = std::fs::read_to_string(cib).unwrap();
    let start = xml.find("<clone ").or_else(|| xml.find("<master ")).expect("a promotable clone in the CIB");
    let clone = &xml[start..];
    let clone = &clone[..clone.find("</clone>").or_else(|| clone.find("</master>")).unwrap()];
    for (name, value) in [("notify", "true"), ("clone-max", "2"), ("clone-node-max", "1")] {
        assert!(clone.contains(&format!("name=\"{name}\" value=\"{value}\"")), "{name}={value} missing in {clone}");
    }
    let promotable = clone.contains("name=\"promotable\" value=\"true\"") || clone.starts_with("<master ");
    let max_one =
        clone.contains("name=\"promoted-max\" value=\"1\"") || clone.contains("name=\"master-max\" value=\"1\"");
    assert!(promotable && max_one, "not a promotable clone with one promoted instance: {clone}");
}

fn judge(os: OsId, yaml: &str, options: Options) {
    let stonith = options.managed_identity || yaml.contains("stonith: sbd");
    let tmp = tempfile::tempdir().unwrap();
    let cib = tmp.path().join("cib.xml");
    empty_cib(&cib);
    build(&cib, &pcs_commands(os, yaml, options));
    assert_clone_meta(&cib);
    if !stonith {
        // Without a status section crm_verify only accepts a CIB that does not need fencing
        // (reference §2.11); with STONITH it is judged on the simulated CIBs below.
        verify(&cib);
    }
    let back = failover_without_failback(tmp.path(), stonith);

    // The judge can fail: the same comeback without hainit's stickiness moves everything back.
    let control = tmp.path().join("control.xml");
    std::fs::copy(&back, &control).unwrap();
    set_stickiness(&control, 0);
    promotion_score(&control, "db-a", 10050);
    let s = simulate(&control, &tmp.path().join("control-out.xml"), &[]);
    assert_runs_on(&s, "db-a", Some("db-b"), "control without stickiness fails back");
}

#[test]
fn debian12_stack_promotes_fails_over_and_does_not_fail_back() {
    judge(OsId::Debian12, "\n", Options::default());
}

#[test]
fn debian12_stack_with_stonith_verifies_and_fails_over() {
    let options = Options { managed_identity: true, ..Options::default() };
    let cmds = pcs_commands(OsId::Debian12, "\n", options).cmds;
    assert!(cmds.iter().any(|c| c.contains(&"fence_azure_arm".to_string())), "{cmds:#?}");
    judge(OsId::Debian12, "\n", options);
}

/// SBD on a shared disk: pcs accepts fence_sbd (its metadata comes from the installed agent),
/// and the fenced failover is simulated like the Azure one.
#[test]
fn debian12_stack_with_sbd_verifies_and_fails_over() {
    let yaml = "db:\n  stonith: sbd\n  sbd_device: /dev/disk/by-id/scsi-hainit-sbd\n  sbd_watchdog_timeout_secs: 30\n";
    let cmds = pcs_commands(OsId::Debian12, yaml, Options::default()).cmds;
    let fence: Vec<&Vec<String>> = cmds.iter().filter(|c| c.contains(&"fence_sbd".to_string())).collect();
    assert_eq!(fence.len(), 1, "{cmds:#?}");
    assert!(fence[0].contains(&"devices=/dev/disk/by-id/scsi-hainit-sbd".to_string()), "{fence:?}");
    assert!(fence[0].contains(&"power_timeout=90".to_string()), "msgwait 60 s + 30: {fence:?}");
    assert!(!cmds.iter().any(|c| c.contains(&"fence_azure_arm".to_string())), "{cmds:#?}");
    judge(OsId::Debian12, yaml, Options::default());
}

#[test]
fn el9_stack_is_accepted_by_pcs_0_11() {
    judge(OsId::El9, "\n", Options::default());
}

/// A CIB pcs accepted but that breaks the stack is rejected by the simulation (the
/// colocation is what keeps the group with the promoted DRBD).
#[test]
fn the_simulation_rejects_a_stack_without_the_colocation() {
    let tmp = tempfile::tempdir().unwrap();
    let cib = tmp.path().join("cib.xml");
    empty_cib(&cib);
    let cmds: Vec<Vec<String>> = pcs_commands(OsId::Debian12, "\n", Options::default())
        .cmds
        .into_iter()
        .filter(|c| !c.contains(&"colocation".to_string()))
        .collect();
    build_each(&cib, &cmds);
    let up = tmp.path().join("up.xml");
    simulate(&cib, &up, &["--node-up", "db-a", "--node-up", "db-b"]);
    promotion_score(&up, "db-a", 5000);
    promotion_score(&up, "db-b", 10000);
    let s = simulate(&up, &tmp.path().join("run.xml"), &[]);
    assert_eq!(s.node_of(PRIMITIVE, "Promoted"), Some("db-b"), "{s:#?}");
    let together = GROUP.iter().all(|r| s.node_of(r, "Started") == Some("db-b"));
    assert!(!together, "without the colocation the group is placed regardless of DRBD\n{s:#?}");
}

/// The CIB's configuration section, which is what pcs wrote.
fn configuration(cib: &Path) -> String {
    run(Command::new("cibadmin").env("CIB_file", cib).args(["--query", "--scope", "configuration"]))
}

/// One interpreter builds exactly what one pcs per command builds (Debian 12 batches them).
#[test]
fn the_batch_builds_the_same_cib_as_one_pcs_per_command() {
    let yaml = "db:\n  stonith: sbd\n  sbd_device: /dev/disk/by-id/scsi-hainit-sbd\n";
    let planned = pcs_commands(OsId::Debian12, yaml, Options::default());
    assert!(planned.batch.is_some(), "Debian 12 batches the pcs commands");
    let tmp = tempfile::tempdir().unwrap();
    let (batched, each) = (tmp.path().join("batched/cib.xml"), tmp.path().join("each/cib.xml"));
    for cib in [&batched, &each] {
        std::fs::create_dir_all(cib.parent().unwrap()).unwrap();
        empty_cib(cib);
    }
    build(&batched, &planned);
    build_each(&each, &planned.cmds);
    let config = configuration(&batched);
    assert!(config.contains("fence_sbd") && config.contains(PRIMITIVE), "{config}");
    assert_eq!(config, configuration(&each));
}

/// The first failing command stops the batch with its status and names it; what came before
/// stays in the working copy (which is never pushed), nothing after it runs.
#[test]
fn a_failing_command_stops_the_batch_and_is_named() {
    let planned = pcs_commands(OsId::Debian12, "\n", Options::default());
    let batch = planned.batch.expect("Debian 12 batches the pcs commands");
    let tmp = tempfile::tempdir().unwrap();
    let cib = tmp.path().join("cib.xml");
    empty_cib(&cib);
    let bad = format!("pcs -f {WORK_CIB} resource create broken ocf:heartbeat:NoSuchAgent");
    let input = format!(
        "pcs -f {WORK_CIB} property set no-quorum-policy=freeze\n{bad}\npcs -f {WORK_CIB} resource defaults update resource-stickiness=77\n"
    );
    let out = run_batch(&cib, &batch, &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", stdout(&out));
    assert!(
        stderr.contains(&format!("pcs-batch: exit 1 from: {}", bad.replace(WORK_CIB, cib.to_str().unwrap()))),
        "{stderr}"
    );
    let config = configuration(&cib);
    assert!(config.contains("no-quorum-policy") && config.contains("freeze"), "{config}");
    assert!(!config.contains("broken") && !config.contains("\"77\""), "{config}");
}

/// pcs keeps its command runner (and the CIB file in it) from the first command, so a batch
/// naming two files is refused before anything runs.
#[test]
fn a_batch_naming_two_files_is_refused() {
    let batch = pcs_commands(OsId::Debian12, "\n", Options::default()).batch.expect("a batch");
    let tmp = tempfile::tempdir().unwrap();
    let cib = tmp.path().join("cib.xml");
    empty_cib(&cib);
    let other = tmp.path().join("other.xml");
    let input = format!(
        "pcs -f {WORK_CIB} property set no-quorum-policy=freeze\npcs -f {} property set maintenance-mode=true\n",
        other.display()
    );
    let before = configuration(&cib);
    let out = run_batch(&cib, &batch, &input);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the same FILE"), "{out:?}");
    assert_eq!(configuration(&cib), before);
    assert!(!other.exists());
}

/// The step's whole plan, run for real in `dir` against `live` (a CIB file standing in for the
/// running cluster, as `CIB_file` makes cibadmin use it): the fetch, the working copy, the
/// build, crm_diff's patch and its push. Paths under /run/hainit land in `dir`.
fn apply_to_live_cib(actions: &[Action], dir: &Path, live: &Path) {
    let here = |p: &str| p.replace("/run/hainit", dir.to_str().unwrap());
    let command = |cmd: &Cmd| {
        let mut c = Command::new(&cmd.program);
        c.args(cmd.args_exposed().iter().map(|a| here(a)));
        if cmd.program == "cibadmin" {
            c.env("CIB_file", live);
        }
        c
    };
    for action in actions {
        match action {
            Action::Dir { .. } => {}
            Action::Write(f) => std::fs::write(here(&f.path), f.content.bytes()).unwrap(),
            Action::Run { cmd, .. } if cmd.here_document().is_some() => {
                let out = output_with_stdin(&mut command(cmd), here(cmd.here_document().unwrap()).as_bytes());
                assert!(out.status.success(), "{cmd}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            }
            Action::Run { cmd, .. } => {
                run(&mut command(cmd));
            }
            Action::Capture { cmd, path, ok_exits, .. } => {
                let out = command(cmd).output().unwrap();
                let code = out.status.code().unwrap();
                assert!(ok_exits.contains(&code), "{cmd} exited {code}: {}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(here(path), &out.stdout).unwrap();
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
}

/// What `pcs cluster cib` and `cib-push diff-against=` did, done with cibadmin and crm_diff:
/// the running cluster's CIB ends up holding exactly the configuration built offline.
#[test]
fn the_planned_fetch_and_patch_put_the_stack_into_the_live_cib() {
    for os in [OsId::Debian12, OsId::El9, OsId::Centos7] {
        let actions = planned_actions(os, "\n", Options::default());
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("live.xml");
        empty_cib(&live);
        let before = configuration(&live);
        if os == OsId::Centos7 {
            // pcs 0.9's spellings cannot be run by pcs 0.11: build with the Debian commands,
            // and judge only CentOS 7's fetch and push around them.
            let debian = planned_actions(OsId::Debian12, "\n", Options::default());
            let build: Vec<Action> = debian.into_iter().filter(is_build).collect();
            let around: Vec<Action> = actions.into_iter().filter(|a| !is_build(a)).collect();
            let split =
                around.iter().position(|a| matches!(a, Action::Capture { cmd, .. } if cmd.program == "crm_diff"));
            let (fetch, push) = around.split_at(split.expect("a crm_diff"));
            apply_to_live_cib(&[fetch, &build, push].concat(), tmp.path(), &live);
        } else {
            apply_to_live_cib(&actions, tmp.path(), &live);
        }
        let config = configuration(&live);
        assert_ne!(config, before, "{os:?}: nothing was pushed");
        assert_eq!(config, configuration(&tmp.path().join("cib-hainit.xml")), "{os:?}");
        assert!(config.contains(PRIMITIVE) && GROUP.iter().all(|r| config.contains(r)), "{os:?}: {config}");
        verify(&live);
    }
}

/// The `pcs -f` commands (or their batch): what builds the working copy.
fn is_build(a: &Action) -> bool {
    match a {
        Action::Run { cmd, .. } => cmd.here_document().is_some() || cmd.args.first() == Some(&Arg::Plain("-f".into())),
        Action::Write(f) => f.path == BATCH_PATH,
        _ => false,
    }
}

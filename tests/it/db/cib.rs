//! Pacemaker judges the configuration hainit wants, for every line (1.1, 2.0, 2.1: Debian's
//! Pacemaker ships every schema from 1.0 on): the rendered CIB of each platform (golden) passes
//! `crm_verify`; `crm_simulate` shows promotion, a failover of the whole stack and no failback;
//! every agent parameter and cluster option hainit sets exists in the metadata; and the patch
//! that converges a live CIB, applied by the real cibadmin on a CIB file (`CIB_file`), touches
//! only what changed, keeps what an operator added, removes what hainit no longer wants, and is
//! refused when the CIB changed after it was read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hainit::cib::desired::{desired, every_variant, Spec};
use hainit::cib::diff::Change;
use hainit::cib::line::{Line, Version};
use hainit::cib::live::Live;
use hainit::cib::model::Agent;
use hainit::cib::patch::EXIT_OLD_DATA;
use hainit::cib::{self, render};
use hainit::dialect::crm_mon::{self, ClusterState, Role};
use hainit::engine::{Options, Step};
use hainit::platform::OsId;
use hainit::roles::db::resources::{spec, ResourcesStep, RENDERED};

use super::{run, Node};
use crate::common::fake_imds::{Document, FakeImds};
use crate::common::{assert_golden, hainit, stderr, this_host_as_db_leader_doc, TestRoot};

const PRIMITIVE: &str = "drbd_wpcluster";
const GROUP: [&str; 3] = ["fs_db", "mysqld", "lb_probe"];
const SBD_YAML: &str =
    "db:\n  stonith: sbd\n  sbd_device: /dev/disk/by-id/scsi-hainit-sbd\n  sbd_watchdog_timeout_secs: 30\n";
/// One Pacemaker of each line (2.0.5 with priority-fencing-delay, 2.0.3 without).
const VERSIONS: [Version; 4] = [Version(1, 1, 23), Version(2, 0, 3), Version(2, 0, 5), Version(2, 1, 5)];

/// The VM has a managed identity: fence_azure_arm fences, as on Azure.
fn identity() -> Options {
    Options { managed_identity: true, ..Options::default() }
}

/// What `render` writes for the leader of `os`: /var/lib/hainit/cib.xml.
fn rendered(os: OsId, yaml: &str, options: Options) -> String {
    let node = Node::new(os, true, yaml);
    let files = ResourcesStep.files(&node.cx(options)).unwrap();
    let file = files.into_iter().find(|f| f.path == RENDERED).expect("the resources step renders the CIB");
    String::from_utf8(file.content.bytes().to_vec()).unwrap()
}

/// `f(spec)` for the leader of `os` on the Pacemaker `version`.
fn with_spec<T>(os: OsId, yaml: &str, options: Options, version: Version, f: impl FnOnce(&Spec) -> T) -> T {
    let node = Node::new(os, true, yaml);
    let cx = node.cx(options);
    f(&spec(&cx, version))
}

fn verify(path: &Path) {
    run(Command::new("crm_verify").arg("-V").arg("-x").arg(path));
}

/// The two db nodes, as the cluster adds them when they join.
fn add_nodes(cib: &Path) {
    for (id, name) in [("1", "db-a"), ("2", "db-b")] {
        run(Command::new("cibadmin")
            .env("CIB_file", cib)
            .args(["-o", "nodes", "-C", "-X"])
            .arg(format!("<node id=\"{id}\" uname=\"{name}\"/>")));
    }
}

#[test]
fn the_rendered_cib_of_every_platform_is_golden_and_crm_verify_accepts_it() {
    for (os, schema, promoted, clone) in [
        (OsId::Centos7, "pacemaker-2.10", "Master", "<master id=\"ms_drbd_wpcluster\">"),
        (OsId::El8, "pacemaker-3.0", "Master", "<clone id=\"drbd_wpcluster-clone\">"),
        (OsId::El9, "pacemaker-3.7", "Promoted", "<clone id=\"drbd_wpcluster-clone\">"),
        (OsId::Debian12, "pacemaker-3.7", "Promoted", "<clone id=\"drbd_wpcluster-clone\">"),
    ] {
        let text = rendered(os, "\n", identity());
        assert_golden(&format!("render-db/{os}-leader/var/lib/hainit/cib.xml"), &text);
        assert!(text.contains(&format!("validate-with=\"{schema}\"")), "{os}: {text}");
        assert!(text.contains(clone) && text.contains(&format!("with-rsc-role=\"{promoted}\"")), "{os}: {text}");
        assert!(text.contains("fence_azure_arm") && text.contains("failure-timeout"), "{os}: {text}");
        let tmp = tempfile::tempdir().unwrap();
        for (yaml, what) in [("\n", "azure"), (SBD_YAML, "sbd"), ("db:\n  stonith: off\n", "off")] {
            let options = if what == "azure" { identity() } else { Options::default() };
            let path = tmp.path().join(format!("{os}-{what}.xml"));
            std::fs::write(&path, rendered(os, yaml, options)).unwrap();
            verify(&path);
        }
    }
}

/// A CIB that is not what Pacemaker wants is refused: the judge can fail.
#[test]
fn crm_verify_refuses_a_broken_render() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cib.xml");
    let text = rendered(OsId::Debian12, "\n", identity());
    std::fs::write(&path, text.replace("first-action=\"promote\"", "first-action=\"elect\"")).unwrap();
    let out = Command::new("crm_verify").arg("-x").arg(&path).output().unwrap();
    assert!(!out.status.success(), "crm_verify accepted an unknown action");
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
    run(Command::new("cibadmin").env("CIB_file", cib).args(["--modify", "--xml-text"]).arg(format!(
        "<nvpair id=\"rsc_defaults-meta_attributes-resource-stickiness\" name=\"resource-stickiness\" value=\"{value}\"/>"
    )));
}

/// The stack runs on `node` only: DRBD promoted there, unpromoted on `other` (if given), the
/// group started there.
fn assert_runs_on(s: &ClusterState, node: &str, other: Option<&str>, when: &str) {
    assert_eq!(s.node_of(PRIMITIVE, Role::Promoted), Some(node), "{when}: promoted DRBD\n{s:#?}");
    let promoted = s.resources.iter().filter(|r| r.id == PRIMITIVE && r.role == Role::Promoted).count();
    assert_eq!(promoted, 1, "{when}: exactly one promoted DRBD\n{s:#?}");
    if let Some(other) = other {
        assert_eq!(s.node_of(PRIMITIVE, Role::Unpromoted), Some(other), "{when}: unpromoted DRBD\n{s:#?}");
    }
    for rsc in GROUP {
        assert_eq!(s.node_of(rsc, Role::Started), Some(node), "{when}: {rsc}\n{s:#?}");
    }
}

/// The rendered CIB with both nodes, in `dir`.
fn cluster_of(dir: &Path, text: &str) -> PathBuf {
    let cib = dir.join("cib.xml");
    std::fs::write(&cib, text).unwrap();
    add_nodes(&cib);
    cib
}

/// Both nodes up → promoted on db-a, the group there; db-a fails → everything on db-b; db-a
/// comes back (rebooted: no resource history) → it is unpromoted and nothing moves back, even
/// with a slightly higher promotion score. Returns the CIB after the comeback.
fn failover_without_failback(dir: &Path, cib: &Path, stonith: bool, line: Line) -> PathBuf {
    let up = dir.join("1-up.xml");
    let s = simulate(cib, &up, &["--node-up", "db-a", "--node-up", "db-b"]);
    // No promotion score yet (DRBD not UpToDate): nothing promoted, the group stays stopped.
    assert_eq!(s.node_of(PRIMITIVE, Role::Promoted), None, "{line}: {s:#?}");
    for rsc in GROUP {
        assert_eq!(s.node_of(rsc, Role::Started), None, "{line}: {rsc} must wait for a promoted DRBD\n{s:#?}");
    }
    promotion_score(&up, "db-a", 10000);
    promotion_score(&up, "db-b", 10000);
    let running = dir.join("2-running.xml");
    let s = simulate(&up, &running, &[]);
    assert_runs_on(&s, "db-a", Some("db-b"), &format!("{line}: both nodes up"));
    assert_eq!(s.stonith_enabled, Some(stonith), "{line}");
    verify(&running);

    let failed = dir.join("3-failed.xml");
    let s = simulate(&running, &failed, &["--node-fail", "db-a"]);
    assert_runs_on(&s, "db-b", None, &format!("{line}: db-a failed"));
    assert!(!s.online_nodes().contains(&"db-a"), "{line}: {s:#?}");
    verify(&failed);

    // A rebooted node rejoins with an empty resource history (the DC replaces its lrm section
    // on join); DRBD starts there, resyncs, and the agent publishes its score again.
    run(Command::new("cibadmin").env("CIB_file", &failed).args(["--delete", "--xpath", "//node_state[@uname='db-a']"]));
    let back = dir.join("4-back.xml");
    let s = simulate(&failed, &back, &["--node-up", "db-a"]);
    assert_runs_on(&s, "db-b", Some("db-a"), &format!("{line}: db-a rejoined"));
    promotion_score(&back, "db-a", 10050);
    let settled = dir.join("5-settled.xml");
    let s = simulate(&back, &settled, &[]);
    assert_runs_on(&s, "db-b", Some("db-a"), &format!("{line}: db-a up to date again (no failback)"));
    verify(&settled);
    back
}

/// Every line, with Azure fencing, SBD and none: the stack is promoted, fails over together and
/// does not fail back; without the stickiness it would (the judge can fail).
#[test]
fn every_line_fails_over_together_and_does_not_fail_back() {
    for os in [OsId::Centos7, OsId::El8, OsId::Debian12] {
        for (yaml, options, stonith) in [
            ("\n", identity(), true),
            (SBD_YAML, Options::default(), true),
            ("db:\n  stonith: off\n", Options::default(), false),
        ] {
            let line = os.platform().pacemaker.line();
            let tmp = tempfile::tempdir().unwrap();
            let cib = cluster_of(tmp.path(), &rendered(os, yaml, options));
            let back = failover_without_failback(tmp.path(), &cib, stonith, line);

            let control = tmp.path().join("control.xml");
            std::fs::copy(&back, &control).unwrap();
            set_stickiness(&control, 0);
            promotion_score(&control, "db-a", 10050);
            let s = simulate(&control, &tmp.path().join("control-out.xml"), &[]);
            assert_runs_on(&s, "db-a", Some("db-b"), &format!("{line}: control without stickiness fails back"));
        }
    }
}

const FAST_YAML: &str = "db:\n  timing_profile: fast\n";

/// The fast timing profile (docs/failover.md), rendered: crm_verify accepts it; its fence delay,
/// the probe listener before MariaDB; and a node that azure-events-az marks for maintenance
/// (#health-azure -1000000, what it writes before an announced Freeze) hands everything to the
/// other node while the events clone keeps running on both. The Azure profile has no such rule:
/// the same mark moves nothing there (the judge can fail).
#[test]
fn the_fast_profile_drains_a_node_before_scheduled_maintenance() {
    let fast = rendered(OsId::Debian12, FAST_YAML, identity());
    assert_golden("render-db/debian12-leader-fast/var/lib/hainit/cib.xml", &fast);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fast.xml");
    std::fs::write(&path, &fast).unwrap();
    verify(&path);
    with_spec(OsId::Debian12, FAST_YAML, identity(), Version(2, 1, 5), |spec| {
        let c = desired(spec);
        assert!(c.properties.contains(&("priority-fencing-delay", "5s".into())), "{:?}", c.properties);
        assert!(c.properties.contains(&("node-health-strategy", "custom".into())), "{:?}", c.properties);
        let group = c.resources.iter().find(|r| r.id() == "g_db").unwrap();
        let order: Vec<&str> = group.primitives().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(order, ["fs_db", "lb_probe", "mysqld"]);
    });

    for (yaml, drains) in [(FAST_YAML, true), ("\n", false)] {
        let dir = tmp.path().join(if drains { "fast" } else { "azure" });
        std::fs::create_dir(&dir).unwrap();
        let cib = cluster_of(&dir, &rendered(OsId::Debian12, yaml, identity()));
        let up = dir.join("up.xml");
        simulate(&cib, &up, &["--node-up", "db-a", "--node-up", "db-b"]);
        promotion_score(&up, "db-a", 10000);
        promotion_score(&up, "db-b", 10000);
        let running = dir.join("running.xml");
        let s = simulate(&up, &running, &[]);
        assert_runs_on(&s, "db-a", Some("db-b"), "both nodes up");
        run(Command::new("crm_attribute").env("CIB_file", &running).args([
            "--node",
            "db-a",
            "--name",
            "#health-azure",
            "--update",
            "-1000000",
            "--lifetime=forever",
        ]));
        let marked = dir.join("marked.xml");
        let s = simulate(&running, &marked, &[]);
        if drains {
            assert_runs_on(&s, "db-b", None, "db-a marked for maintenance");
            for node in ["db-a", "db-b"] {
                let events = s
                    .resources
                    .iter()
                    .any(|r| r.id.starts_with("health-azure-events") && r.active && r.nodes.iter().any(|n| n == node));
                assert!(events, "the events clone keeps running on {node}: {s:#?}");
            }
        } else {
            assert_runs_on(&s, "db-a", Some("db-b"), "no rule in the azure profile: nothing moves");
        }
    }
}

/// Azure → fast → Azure on a live cluster: each switch is one patch that converges, and going
/// back removes the events clone, its rule and the health strategy again.
#[test]
fn switching_the_timing_profile_converges_both_ways() {
    let cib = LiveCib::new(Line::V2_1);
    with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| cib.converge(spec));
    with_spec(OsId::Debian12, FAST_YAML, identity(), Version(2, 1, 5), |spec| {
        let w: Vec<String> = whats(&cib.converge(spec)).into_iter().map(String::from).collect();
        for wanted in [
            "property priority-fencing-delay: 15s → 5s",
            "set property node-health-strategy=custom",
            "add clone health-azure-events-clone",
        ] {
            assert!(w.iter().any(|c| c == wanted), "{wanted}: {w:#?}");
        }
        assert_converged(&cib, spec, "fast");
    });
    let config = cib.configuration();
    assert!(config.contains("rsc-pattern=\"!health-.*\"") && config.contains("azure-events-az"), "{config}");
    let (probe, mysqld) = (config.find("id=\"lb_probe\"").unwrap(), config.find("id=\"mysqld\"").unwrap());
    assert!(probe < mysqld, "the fast profile starts the listener first: {config}");
    with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| {
        cib.converge(spec);
        assert_converged(&cib, spec, "back to azure");
    });
    let config = cib.configuration();
    for gone in ["azure-events-az", "node-health-strategy", "health-"] {
        assert!(!config.contains(gone), "{gone} stayed: {config}");
    }
}

/// The colocation is what keeps the group with the promoted DRBD: without it the simulation
/// places the group regardless.
#[test]
fn the_simulation_rejects_a_stack_without_the_colocation() {
    let tmp = tempfile::tempdir().unwrap();
    let text = rendered(OsId::Debian12, "db:\n  stonith: off\n", Options::default());
    let start = text.find("<rsc_colocation").unwrap();
    let end = start + text[start..].find("/>").unwrap() + 2;
    let cib = cluster_of(tmp.path(), &format!("{}{}", &text[..start], &text[end..]));
    let up = tmp.path().join("up.xml");
    simulate(&cib, &up, &["--node-up", "db-a", "--node-up", "db-b"]);
    promotion_score(&up, "db-a", 5000);
    promotion_score(&up, "db-b", 10000);
    let s = simulate(&up, &tmp.path().join("run.xml"), &[]);
    assert_eq!(s.node_of(PRIMITIVE, Role::Promoted), Some("db-b"), "{s:#?}");
    let together = GROUP.iter().all(|r| s.node_of(r, Role::Started) == Some("db-b"));
    assert!(!together, "without the colocation the group is placed regardless of DRBD\n{s:#?}");
}

/// The `<parameter name=…>` of a metadata document.
fn parameters(xml: &str) -> BTreeSet<String> {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .unwrap_or_else(|e| panic!("metadata is not XML: {e}\n{xml}"));
    doc.descendants()
        .filter(|n| n.has_tag_name("parameter"))
        .filter_map(|n| n.attribute("name"))
        .map(String::from)
        .collect()
}

/// What Pacemaker's own daemons take as options (`pacemaker-<daemon> metadata`).
fn daemon_parameters(daemons: &[&str]) -> BTreeSet<String> {
    daemons
        .iter()
        .flat_map(|d| parameters(&run(Command::new(format!("/usr/lib/pacemaker/pacemaker-{d}")).arg("metadata"))))
        .collect()
}

/// Every parameter hainit gives an agent is one the agent (or, for a fence device, the fencer)
/// knows, and every cluster option one the cluster knows — on every line, with every device.
#[test]
fn every_parameter_and_option_hainit_sets_exists_in_the_metadata() {
    let fencer = daemon_parameters(&["fenced"]);
    let options = daemon_parameters(&["schedulerd", "controld", "based", "fenced"]);
    assert!(fencer.contains("pcmk_host_map") && options.contains("priority-fencing-delay"));
    let configurations = with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), every_variant);
    let mut agents_seen = BTreeSet::new();
    for c in &configurations {
        for (name, _) in &c.properties {
            assert!(options.contains(*name), "{}: cluster option {name} is unknown to Pacemaker", c.line);
        }
        for p in c.primitives() {
            let spec = p.agent.spec();
            let mut known = parameters(&run(Command::new("crm_resource").args(["--show-metadata", &spec])));
            if matches!(p.agent, Agent::Stonith(_)) {
                known.extend(fencer.iter().cloned());
            }
            for (name, _) in &p.params {
                assert!(
                    known.contains(*name),
                    "{}: {} sets {name}, which {spec} does not know: {known:?}",
                    c.line,
                    p.id
                );
            }
            agents_seen.insert(spec);
        }
    }
    let expected = [
        "ocf:heartbeat:Filesystem",
        "ocf:heartbeat:azure-events-az",
        "ocf:heartbeat:azure-lb",
        "ocf:heartbeat:mysql",
        "ocf:linbit:drbd",
    ];
    let stonith = ["stonith:fence_azure_arm", "stonith:fence_sbd"];
    assert_eq!(agents_seen.into_iter().collect::<Vec<_>>(), [&expected[..], &stonith[..]].concat());
}

/// A CIB file standing in for the running cluster (`CIB_file` makes cibadmin use it).
struct LiveCib {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl LiveCib {
    /// A new two-node cluster's CIB, on the schema a Pacemaker of `line` makes it with.
    fn new(line: Line) -> LiveCib {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cib.xml");
        let mut empty = Command::new("cibadmin");
        empty.arg("--empty");
        match line {
            Line::V1_1 => empty.arg("pacemaker-2.10"),
            Line::V2_0 => empty.arg("pacemaker-3.5"),
            Line::V2_1 => &mut empty,
        };
        std::fs::write(&path, run(&mut empty)).unwrap();
        add_nodes(&path);
        LiveCib { _dir: dir, path }
    }

    fn cibadmin(&self, args: &[&str]) -> std::process::Output {
        Command::new("cibadmin").env("CIB_file", &self.path).args(args).output().unwrap()
    }

    fn read(&self) -> Live {
        let out = self.cibadmin(&["--query"]);
        assert!(out.status.success(), "{out:?}");
        Live::parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
    }

    /// `cibadmin --patch` as db.cluster.resources runs it.
    fn patch(&self, patch: &str) -> std::process::Output {
        let file = self.path.with_file_name("cib.patch");
        std::fs::write(&file, patch).unwrap();
        self.cibadmin(&["--patch", "--xml-file", file.to_str().unwrap()])
    }

    /// Plan against the live CIB and apply; the changes it made.
    fn converge(&self, spec: &Spec) -> Vec<Change> {
        let wanted = cib::converge(spec, &self.read()).unwrap();
        if !wanted.changes.is_empty() {
            let out = self.patch(&wanted.patch);
            assert!(out.status.success(), "cibadmin --patch: {out:?}\n{}", wanted.patch);
        }
        wanted.changes
    }

    fn configuration(&self) -> String {
        String::from_utf8(self.cibadmin(&["--query", "--scope", "configuration"]).stdout).unwrap()
    }
}

/// Converged: the live CIB holds everything hainit wants, and a re-run changes nothing.
fn assert_converged(cib: &LiveCib, spec: &Spec, when: &str) {
    let again = cib::converge(spec, &cib.read()).unwrap();
    assert_eq!(again.changes, [], "{when}: a re-run would change something");
    // Without a status section crm_verify calls the nodes unclean, which only matters with
    // STONITH (reference §2.11); the simulations judge those configurations.
    if spec.stonith.is_none() {
        run(Command::new("crm_verify").env("CIB_file", &cib.path).arg("-L").arg("-V"));
    }
}

/// From a new cluster's CIB to the whole stack in one patch, on every line, with every device;
/// then nothing to do.
#[test]
fn one_patch_builds_the_stack_on_every_line_and_a_rerun_changes_nothing() {
    for version in VERSIONS {
        for (yaml, options) in
            [("\n", identity()), (SBD_YAML, Options::default()), ("db:\n  stonith: off\n", Options::default())]
        {
            with_spec(OsId::Debian12, yaml, options, version, |spec| {
                let cib = LiveCib::new(version.line());
                let changes = cib.converge(spec);
                assert!(changes.len() >= 5, "{version}: {changes:#?}");
                assert_converged(&cib, spec, &format!("{version} {yaml:?}"));
                let config = cib.configuration();
                assert!(config.contains(PRIMITIVE) && GROUP.iter().all(|r| config.contains(r)), "{version}: {config}");
                let promotable =
                    if version.line() == Line::V1_1 { "<master " } else { "name=\"promotable\" value=\"true\"" };
                assert!(config.contains(promotable), "{version}: {config}");
            });
        }
    }
}

/// The converged stack with one setting changed: the patch touches only that, and applied it
/// yields the new configuration.
#[test]
fn a_changed_setting_is_a_patch_of_just_that() {
    let base = "\n";
    let cases: [(&str, Judge); 3] = [
        ("db:\n  probe_port: 62501\n", |c: &[Change]| {
            assert_eq!(whats(c), ["lb_probe port: 62500 → 62501"]);
        }),
        ("db:\n  vm_names:\n    db-b: vm-db-b-new\n", |c: &[Change]| {
            assert_eq!(c.len(), 1, "{c:#?}");
            assert!(whats(c)[0].starts_with("fence_azure pcmk_host_map: db-a:"), "{c:#?}");
            assert!(whats(c)[0].ends_with("db-b:vm-db-b-new"), "{c:#?}");
        }),
        ("db:\n  op_timeout_scale: 3\n", |c: &[Change]| {
            // Every operation timeout and the default one, nothing else.
            // (the fence device's monitor is fixed)
            assert_eq!(c.len(), 16 + 1, "{:#?}", whats(c));
            for change in c {
                let Change::Modify { attrs, path, .. } = change else { panic!("{change:?}") };
                let touched: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
                let timeout = path.contains("/op[") && touched == ["timeout"];
                let default = path.contains("op_defaults") && touched == ["value"];
                assert!(timeout || default, "{change:#?}");
            }
            assert!(whats(c).contains(&"drbd_wpcluster op monitor 29s: timeout 20s → 60s"), "{:#?}", whats(c));
        }),
    ];
    for version in [Version(1, 1, 23), Version(2, 1, 5)] {
        for (yaml, judge) in &cases {
            let cib = LiveCib::new(version.line());
            with_spec(OsId::Debian12, base, identity(), version, |spec| cib.converge(spec));
            with_spec(OsId::Debian12, yaml, identity(), version, |spec| {
                let changes = cib.converge(spec);
                judge(&changes);
                assert_converged(&cib, spec, &format!("{version} {yaml}"));
                let live = render::configuration(&desired(spec));
                let config = cib.configuration();
                for nv in live.descendants().into_iter().filter(|e| e.name == "nvpair" || e.name == "op") {
                    let value = nv.get("value").or(nv.get("timeout")).unwrap();
                    assert!(config.contains(&format!("\"{value}\"")), "{version} {yaml}: {value} missing in {config}");
                }
            });
        }
    }
}

/// Asserts what a patch changed.
type Judge = fn(&[Change]);

fn whats(changes: &[Change]) -> Vec<&str> {
    changes.iter().map(Change::what).collect()
}

/// What an operator adds — a resource of their own, a constraint, a meta attribute on one of
/// hainit's resources (`pcs resource disable`), a cluster option — survives a re-run and a patch.
#[test]
fn an_operators_own_configuration_survives() {
    let cib = LiveCib::new(Line::V2_1);
    with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| cib.converge(spec));
    let own = [
        ("resources", "<primitive id=\"operators_dummy\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\"/>"),
        (
            "constraints",
            "<rsc_location id=\"cli-prefer-operators_dummy\" rsc=\"operators_dummy\" node=\"db-b\" score=\"100\"/>",
        ),
    ];
    for (scope, xml) in own {
        let out = cib.cibadmin(&["-C", "-o", scope, "-X", xml]);
        assert!(out.status.success(), "{out:?}");
    }
    run(Command::new("crm_resource").env("CIB_file", &cib.path).args([
        "-r",
        "mysqld",
        "--meta",
        "-p",
        "target-role",
        "-v",
        "Stopped",
    ]));
    run(Command::new("crm_attribute").env("CIB_file", &cib.path).args([
        "--type",
        "crm_config",
        "-n",
        "maintenance-mode",
        "-v",
        "false",
    ]));
    with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| {
        assert_converged(&cib, spec, "operator's additions")
    });
    with_spec(OsId::Debian12, "db:\n  probe_port: 1234\n", identity(), Version(2, 1, 5), |spec| {
        assert_eq!(whats(&cib.converge(spec)), ["lb_probe port: 62500 → 1234"]);
    });
    let config = cib.configuration();
    for kept in
        ["operators_dummy", "cli-prefer-operators_dummy", "name=\"target-role\" value=\"Stopped\"", "maintenance-mode"]
    {
        assert!(config.contains(kept), "{kept} was lost: {config}");
    }
}

/// What hainit created but no longer wants goes: the SBD device and its delay when the cluster
/// moves to Azure fencing, the fence device and the fencing options when STONITH is turned off,
/// and pcmk_delay_max once Pacemaker has priority-fencing-delay.
#[test]
fn owned_objects_no_longer_wanted_are_removed() {
    let cib = LiveCib::new(Line::V2_1);
    with_spec(OsId::Debian12, SBD_YAML, Options::default(), Version(2, 0, 3), |spec| cib.converge(spec));
    assert!(cib.configuration().contains("pcmk_delay_max"));
    with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| {
        let changes = cib.converge(spec);
        let w = whats(&changes);
        assert!(w.contains(&"remove primitive fence_sbd") && w.contains(&"add primitive fence_azure"), "{w:#?}");
        assert!(w.contains(&"set property priority-fencing-delay=15s"), "{w:#?}");
        assert_converged(&cib, spec, "moved to Azure fencing");
    });
    let config = cib.configuration();
    assert!(!config.contains("fence_sbd") && !config.contains("pcmk_delay_max"), "{config}");
    with_spec(OsId::Debian12, "db:\n  stonith: off\n", Options::default(), Version(2, 1, 5), |spec| {
        let w = whats(&cib.converge(spec)).into_iter().map(String::from).collect::<Vec<_>>();
        for gone in ["remove primitive fence_azure", "unset property stonith-timeout (was 900)"] {
            assert!(w.iter().any(|c| c == gone), "{gone}: {w:#?}");
        }
        assert!(w.contains(&"property stonith-enabled: true → false".to_string()), "{w:#?}");
        assert_converged(&cib, spec, "STONITH off");
    });
    let config = cib.configuration();
    assert!(!config.contains("fence_azure") && !config.contains("priority-fencing-delay"), "{config}");
}

/// A patch made against one version of the CIB is refused once the CIB has changed — by an
/// operator's configuration change or by a status update alike — and changes nothing.
#[test]
fn a_concurrent_change_makes_the_patch_fail_instead_of_overwriting() {
    for change in ["configuration", "status"] {
        let cib = LiveCib::new(Line::V2_1);
        with_spec(OsId::Debian12, "\n", identity(), Version(2, 1, 5), |spec| cib.converge(spec));
        let wanted = with_spec(OsId::Debian12, "db:\n  probe_port: 62501\n", identity(), Version(2, 1, 5), |spec| {
            cib::converge(spec, &cib.read()).unwrap()
        });
        assert_eq!(wanted.changes.len(), 1);
        // Between hainit's read and its patch:
        match change {
            "configuration" => {
                run(Command::new("crm_resource")
                    .env("CIB_file", &cib.path)
                    .args(["-r", "lb_probe", "-p", "port", "-v", "7777"]));
            }
            // The DC recording that db-a joined: num_updates moves, the epoch does not.
            _ => {
                run(Command::new("cibadmin").env("CIB_file", &cib.path).args(["-C", "-o", "status", "-X"]).arg(
                    "<node_state id=\"1\" uname=\"db-a\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"/>",
                ));
            }
        }
        let before = cib.configuration();
        let out = cib.patch(&wanted.patch);
        assert_eq!(out.status.code(), Some(EXIT_OLD_DATA), "{change}: {out:?}");
        assert_eq!(cib.configuration(), before, "{change}: a refused patch changed the CIB");
        // The same patch made against the CIB as it is now applies.
        let fresh = with_spec(OsId::Debian12, "db:\n  probe_port: 62501\n", identity(), Version(2, 1, 5), |spec| {
            cib.converge(spec)
        });
        assert_eq!(fresh.len(), 1, "{change}: {fresh:#?}");
        assert!(cib.configuration().contains("value=\"62501\""));
    }
}

/// A live CIB still on a schema older than Pacemaker 2.1's role names is refused with the fix,
/// not patched into a validation error.
#[test]
fn a_cib_on_an_old_schema_is_refused_on_the_2_1_line() {
    let cib = LiveCib::new(Line::V2_0);
    let e =
        with_spec(OsId::El8, "\n", identity(), Version(2, 1, 7), |spec| cib::converge(spec, &cib.read()).unwrap_err());
    assert!(e.to_string().contains("pacemaker-3.5") && e.to_string().contains("cibadmin --upgrade"), "{e}");
    with_spec(OsId::El8, "\n", identity(), Version(2, 0, 5), |spec| {
        cib.converge(spec);
        assert_converged(&cib, spec, "2.0 line on pacemaker-3.5");
    });
}

/// `hainit render --out DIR --os OS` on a db node writes DIR/var/lib/hainit/cib.xml, of the
/// line `--os` selects, and crm_verify accepts it.
#[test]
fn render_out_writes_the_cib_of_the_selected_line() {
    // The db node is this machine, /dev/null its blank data disk.
    let doc = this_host_as_db_leader_doc();
    let imds = FakeImds::start(Document::Text(doc));
    imds.set_identity(true);
    let root = TestRoot::new();
    let config = std::fs::read_to_string(root.host_path("/etc/hainit/hainit.yaml")).unwrap();
    root.write("/etc/hainit/hainit.yaml", &format!("{config}db:\n  data_disk: /dev/null\n"));
    for (os, schema) in [
        ("centos7", "pacemaker-2.10"),
        ("el8", "pacemaker-3.0"),
        ("el9", "pacemaker-3.7"),
        ("debian12", "pacemaker-3.7"),
    ] {
        let out_dir = tempfile::tempdir().unwrap();
        let out = hainit(&imds.url(), root.path(), os, &["render", "--out", out_dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{os}: {}", stderr(&out));
        let path = out_dir.path().join("var/lib/hainit/cib.xml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{os}: {}: {e}", path.display()));
        assert!(text.contains(&format!("validate-with=\"{schema}\"")), "{os}: {text}");
        assert!(text.contains("fence_azure_arm"), "{os}: the VM has an identity: {text}");
        verify(&path);
    }
}

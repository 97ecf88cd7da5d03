//! The leader builds the whole stack in a CIB file offline and pushes it once (reference §2.5,
//! §2.10); then both nodes wait until the cluster runs MariaDB.

use std::time::Duration;

use super::bootstrap::fs_name;
use super::facts::{device, drbd_primitive, resource, RUN_DIR};
use super::fencing::stonith;
use crate::dialect::crm_mon::{self, ClusterState};
use crate::dialect::pcs::{self, CibSpec, BATCH_SCRIPT, MYSQLD};
use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::platform::Platform;
use crate::system::{Cmd, FileSpec, Probe};

pub fn crm_mon_query(cx: &Context) -> Cmd {
    crm_mon_query_for(cx.platform)
}

/// [`crm_mon_query`] without a `Context` (for `status`).
pub fn crm_mon_query_for(platform: &Platform) -> Cmd {
    Cmd::new("crm_mon").arg("-1").args(platform.crm_mon_xml.iter().copied())
}

/// The live cluster state, or `None` when crm_mon cannot reach a cluster.
pub fn cluster_state(cx: &Context, probe: &dyn Probe) -> Result<Option<ClusterState>> {
    let out = probe.query(&crm_mon_query(cx))?;
    Ok(crm_mon::parse(&out.stdout).ok().filter(|s| s.connected))
}

pub fn cib_spec<'a>(cx: &'a Context) -> CibSpec<'a> {
    let db = &cx.platform.db;
    CibSpec {
        drbd_resource: resource(cx),
        drbd_primitive: drbd_primitive(cx),
        device: device(cx),
        mount_point: &cx.config.db.mount_point,
        fs_type: fs_name(cx.config.db.fs_type),
        mysqld_binary: db.mysqld_binary,
        my_cnf: db.my_cnf,
        mysql_pid: db.mysql_pid,
        mysql_socket: db.mysql_socket,
        mysql_log: db.mysql_log,
        probe_port: cx.config.db.probe_port,
        nc: db.nc,
        stonith: stonith(cx),
        op_timeout_scale: cx.config.db.op_timeout_scale,
    }
}

pub struct ResourcesStep;

impl Step for ResourcesStep {
    fn id(&self) -> &'static str {
        "db.cluster.resources"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        if !cx.inv.is_leader() {
            return Ok(Vec::new());
        }
        let timeout = Duration::from_secs(cx.config.db.cluster_timeout_secs);
        let state = cluster_state(cx, probe)?;
        let ready = state.as_ref().is_some_and(|s| s.quorate && s.dc.is_some() && s.online_nodes().len() == 2);
        let cib = probe.query(&Cmd::new("cibadmin").args(["--query", "--scope", "resources"]))?;
        if cib.success() && cib.stdout.contains(&format!("id=\"{}\"", drbd_primitive(cx))) {
            return Ok(Vec::new());
        }
        let orig = format!("{RUN_DIR}/cib-orig.xml");
        let new = format!("{RUN_DIR}/cib-hainit.xml");
        let pcs = cx.platform.pcs;
        let mut actions = Vec::new();
        if !ready {
            // The plan shows the whole push; apply gets here again once both nodes are in.
            actions.push(Action::wait("Pacemaker on both nodes, with quorum and a DC", timeout));
        }
        actions.push(Action::dir(RUN_DIR, 0o700, "root", "root"));
        // What `pcs cluster cib` and `cib-push diff-against=` run, without pcs's interpreter
        // start (44 s and 50 s under emulation in the lab).
        actions.push(Action::capture(
            Cmd::new("cibadmin").args(["--query", "--local"]),
            &orig,
            "the live CIB to diff against",
        ));
        actions.push(Action::run(Cmd::new("cp").args([&orig, &new]), "a working copy"));
        let cmds = pcs.cib_commands(&new, &cib_spec(cx));
        let script = format!("{RUN_DIR}/pcs-batch.py");
        let batch = cx.platform.db.pcs_batch.then(|| pcs::batch(cx.platform.db.python, &script, &cmds)).flatten();
        match batch {
            Some(batch) => {
                actions.push(Action::Write(FileSpec::new(&script, BATCH_SCRIPT, 0o600)));
                actions.push(Action::run(batch, "build the stack offline, in one pcs interpreter"));
            }
            None => actions.extend(cmds.into_iter().map(|cmd| Action::run(cmd, "build the stack offline"))),
        }
        let patch = format!("{RUN_DIR}/cib-hainit.patch");
        actions.push(Action::Capture {
            cmd: Cmd::new("crm_diff").args(["--original", &orig, "--new", &new, "--no-version"]),
            path: patch.clone(),
            // crm_diff exits 1 when the files differ; 0 (no difference) means the build added nothing.
            ok_exits: vec![1],
            why: "the stack as a patch to the live CIB".into(),
        });
        actions.push(Action::run(
            Cmd::new("cibadmin").args(["--patch", "--xml-file", &patch]),
            "push the whole stack in one transaction",
        ));
        Ok(actions)
    }
}

/// Wait until the cluster reports MariaDB started somewhere.
pub struct ReadyStep;

impl Step for ReadyStep {
    fn id(&self) -> &'static str {
        "db.cluster.ready"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let started = cluster_state(cx, probe)?.is_some_and(|s| s.node_of(MYSQLD, "Started").is_some());
        Ok(if started {
            Vec::new()
        } else {
            vec![Action::wait(
                "the cluster to start MariaDB".to_string(),
                Duration::from_secs(cx.config.db.cluster_timeout_secs),
            )]
        })
    }
}

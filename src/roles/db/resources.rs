//! The cluster configuration: the leader brings the live CIB to the configuration hainit wants
//! (crate::cib) with one guarded patch — on a new cluster the whole stack, on a converged one
//! nothing, on a changed setting just that. Then both nodes wait until the cluster runs MariaDB
//! and its fence device can reach both VMs.

use std::collections::BTreeSet;
use std::time::Duration;

use super::bootstrap::fs_name;
use super::facts::{device, drbd_primitive, resource, RUN_DIR};
use super::fencer::restart_if_blind;
use super::fencing::{stonith, FenceAgent, Stonith};
use super::timing::Timing;
use crate::cib::desired::{desired, Spec};
use crate::cib::line::Version;
use crate::cib::live::Live;
use crate::cib::patch::EXIT_OLD_DATA;
use crate::cib::{self, render, MYSQLD};
use crate::dialect::crm_mon::{self, Cluster, ClusterState, Role};
use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::platform::Platform;
use crate::system::{Cmd, FileSpec, Probe};

/// The patch `db.cluster.resources` applies (tmpfs: written and applied in the same run).
pub const PATCH: &str = "/run/hainit/cib.patch";
/// Where `render` puts the configuration hainit wants, as a whole CIB.
pub const RENDERED: &str = "/var/lib/hainit/cib.xml";

pub fn crm_mon_query(cx: &Context) -> Cmd {
    crm_mon_query_for(cx.platform)
}

/// [`crm_mon_query`] without a `Context` (for `status`).
pub fn crm_mon_query_for(platform: &Platform) -> Cmd {
    Cmd::new("crm_mon").arg("-1").args(platform.crm_mon_xml.iter().copied())
}

/// The cluster as crm_mon sees it from this node; a failing or unreadable crm_mon is an error.
pub fn cluster_state(cx: &Context, probe: &dyn Probe) -> Result<Cluster> {
    crm_mon::read(&probe.query(&crm_mon_query(cx))?)
}

/// What the configuration is made from, for the Pacemaker `pacemaker`.
pub fn spec<'a>(cx: &'a Context, pacemaker: Version) -> Spec<'a> {
    let db = &cx.platform.db;
    Spec {
        pacemaker,
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
        timing: Timing::for_config(cx),
    }
}

pub struct ResourcesStep;

impl Step for ResourcesStep {
    fn id(&self) -> &'static str {
        "db.cluster.resources"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        // One node writes the configuration, so two configs never take turns.
        if !cx.inv.is_leader() {
            return Ok(Vec::new());
        }
        let formed = matches!(cluster_state(cx, probe)?, Cluster::Running(s) if s.is_formed(cx.inv.peers.len()));
        let pacemaker = Version::installed(probe, cx.platform.pacemaker)?;
        // Before the cluster runs, the plan shows the patch into the CIB a new cluster starts
        // with; apply makes it again from the live CIB once the wait is over.
        let live = if formed { Live::read(probe)? } else { Live::empty() };
        let wanted = cib::converge(&spec(cx, pacemaker), &live)?;
        if wanted.changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut actions = Vec::new();
        if !formed {
            actions.push(Action::wait(
                "Pacemaker on both nodes, with quorum and a DC",
                Duration::from_secs(cx.config.db.cluster_timeout_secs),
            ));
        }
        let against = if formed { format!("CIB {}", live.version) } else { "a new cluster's CIB".to_string() };
        let list: Vec<&str> = wanted.changes.iter().map(|c| c.what()).collect();
        let why = format!(
            "Pacemaker {} line, {} change(s) in one transaction against {against} (refused if it changed since): {}",
            pacemaker.line(),
            list.len(),
            list.join("; ")
        );
        actions.push(Action::dir(RUN_DIR, 0o700, "root", "root"));
        actions.push(Action::Write(FileSpec::new(PATCH, wanted.patch, 0o600)));
        actions.push(Action::run(
            // 103: the CIB moved on between reading and patching; a re-run reads it again.
            Cmd::new("cibadmin").args(["--patch", "--xml-file", PATCH]).not_ready_exit(EXIT_OLD_DATA),
            why,
        ));
        Ok(actions)
    }

    /// The configuration hainit wants, for this OS's Pacemaker (the platform table's).
    fn files(&self, cx: &Context) -> Result<Vec<FileSpec>> {
        let text = render::document(&desired(&spec(cx, cx.platform.pacemaker)));
        Ok(vec![FileSpec::new(RENDERED, text, 0o644)])
    }
}

/// `stonith_admin --list-targets`: the fence agent's own `list`, run by this node's fencer with
/// this node's credentials (for fence_azure_arm, the VM's identity and its role assignment).
pub fn list_targets(device: &str) -> Cmd {
    Cmd::new("stonith_admin").args(["--list-targets", device, "--timeout", "240"])
}

/// The targets in `stonith_admin --list-targets` output: one a line, in any of the spellings
/// Pacemaker and the agents use (`vm-a`, `vm-a,alias`, `  * vm-a`); headings end in `:`.
pub fn listed_targets(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches(['*', '-']).trim())
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .filter_map(|l| l.split([',', ' ', '\t']).next())
        .map(str::to_string)
        .collect()
}

/// What the fence device must be able to reach: the VMs its host map names (fence_azure_arm),
/// or the nodes' slots on the shared disk (fence_sbd).
fn fence_targets(cx: &Context, s: &Stonith) -> Vec<String> {
    match &s.agent {
        FenceAgent::AzureArm { host_map, .. } => {
            host_map.split(';').filter_map(|pair| pair.split_once(':')).map(|(_, vm)| vm.to_string()).collect()
        }
        FenceAgent::Sbd { .. } => cx.inv.peers.iter().map(|p| p.name.clone()).collect(),
    }
}

/// Wait until the cluster runs MariaDB and, with STONITH, until the fence device is started and
/// its agent lists both VMs: a node is ready only once it could fence its peer.
pub struct ReadyStep;

impl Step for ReadyStep {
    fn id(&self) -> &'static str {
        "db.cluster.ready"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let timeout = Duration::from_secs(cx.config.db.cluster_timeout_secs);
        let state = match cluster_state(cx, probe)? {
            Cluster::Running(s) if s.node_of(MYSQLD, Role::Started).is_some() => s,
            _ => return Ok(vec![Action::wait("the cluster to start MariaDB", timeout)]),
        };
        let Some(stonith) = stonith(cx) else { return Ok(Vec::new()) };
        // A fencer that never read the CIB knows no device to list: it is restarted first.
        let restart = restart_if_blind(cx.platform, probe)?;
        if !restart.is_empty() {
            return Ok(restart);
        }
        Ok(fencing_wait(cx, probe, &state, &stonith)?.map(|what| Action::wait(what, timeout)).into_iter().collect())
    }
}

/// What fencing still waits for, if anything.
fn fencing_wait(cx: &Context, probe: &dyn Probe, state: &ClusterState, s: &Stonith) -> Result<Option<String>> {
    let device = s.id();
    if state.node_of(device, Role::Started).is_none() {
        return Ok(Some(format!("the fence device {device} to start")));
    }
    let targets = fence_targets(cx, s);
    let out = probe.query(&list_targets(device))?;
    let listed = if out.success() { listed_targets(&out.stdout) } else { BTreeSet::new() };
    let missing: Vec<&str> = targets.iter().filter(|t| !listed.contains(*t)).map(String::as_str).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let answer = if out.success() {
        format!("it lists {}", listed.into_iter().collect::<Vec<_>>().join(", "))
    } else {
        out.tail().lines().next().unwrap_or("no answer").to_string()
    };
    Ok(Some(format!("the fence device {device} to list {} (stonith_admin: {answer})", missing.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_in_every_spelling() {
        let two = |t: &str| listed_targets(t).into_iter().collect::<Vec<_>>();
        assert_eq!(two("vm-a\nvm-b\n"), ["vm-a", "vm-b"]);
        assert_eq!(two("vm-a,\nvm-b,alias\n"), ["vm-a", "vm-b"]);
        assert_eq!(two("Fence Targets:\n  * vm-a\n  * vm-b\n"), ["vm-a", "vm-b"]);
        assert!(listed_targets("").is_empty());
    }
}

//! `status` for a db node: the DRBD replication state of this node and, from `crm_mon` XML, the
//! cluster's view — quorum, nodes, where MariaDB runs, STONITH and failed actions. Nothing here
//! fails: whatever cannot be read becomes a FAIL or WARN item that says why.

use super::facts::{drbd_primitive_of, drbd_state_of, is_corosync_of, COROSYNC_CONF};
use super::fencer::blind_fencer;
use super::resources::crm_mon_query_for;
use super::unfence::{constraints_query, fence_constraints};
use crate::cib::xml::Element;
use crate::cib::{FENCE_AZURE, FENCE_SBD, FS, MYSQLD, PROBE};
use crate::config::Config;
use crate::dialect::crm_mon::{self, Cluster, ClusterState, NodeStatus, Role};
use crate::dialect::drbd::{DiskState, DrbdState};
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::status::Health;
use crate::system::{Cmd, Probe};

pub fn collect(inv: &Inventory, platform: &Platform, config: &Config, probe: &dyn Probe) -> Vec<Health> {
    let (mut items, state) = drbd(inv, config, probe);
    let (cluster, connected) = cluster(inv, platform, probe);
    items.extend(cluster);
    if connected {
        items.extend(fencing(inv, platform, state.as_ref(), probe));
        if let Ok(Some(pid)) = blind_fencer(platform, probe) {
            items.push(Health::fail(
                "fencer",
                format!(
                    "{} (pid {pid}) could not reach the CIB when it started: it knows no fence device and this \
                     node cannot fence its peer; re-run hainit (it restarts the fencer)",
                    platform.fencer
                ),
            ));
        }
    }
    items
}

fn drbd(inv: &Inventory, config: &Config, probe: &dyn Probe) -> (Vec<Health>, Option<DrbdState>) {
    let (res, minor) = (inv.cluster.as_str(), config.db.drbd_minor);
    match probe.exists("/proc/drbd") {
        Ok(true) => {}
        Ok(false) => return (vec![Health::fail("drbd", "the DRBD kernel module is not loaded (no /proc/drbd)")], None),
        Err(e) => return (vec![Health::fail("drbd", e.to_string())], None),
    }
    match drbd_state_of(probe, res, minor) {
        Err(e) => (vec![Health::fail("drbd", format!("resource {res}: {e}"))], None),
        Ok(None) => (vec![Health::fail("drbd", format!("resource {res} (/dev/drbd{minor}) is not up"))], None),
        Ok(Some(s)) => {
            let split = s.is_standalone() && split_brain_logged(probe, minor);
            (vec![drbd_role(&s), drbd_connection(&s, res, split), drbd_disk(&s), drbd_sync(&s)], Some(s))
        }
    }
}

/// DRBD's fence-peer handler left a constraint that forbids promotion elsewhere: expected while
/// the peer is away or resyncing, stale (the node can never take over) once both are UpToDate.
fn fencing(inv: &Inventory, platform: &Platform, state: Option<&DrbdState>, probe: &dyn Probe) -> Option<Health> {
    // Called with the cluster running: a failed query is reported, never read as "none".
    let q = constraints_query();
    let out = match probe.query(&q) {
        Ok(out) if out.success() => out,
        Ok(out) => return Some(Health::warn("drbd-fencing", format!("`{q}` failed: {}", out.tail()))),
        Err(e) => return Some(Health::warn("drbd-fencing", format!("`{q}`: {e}"))),
    };
    let clone = platform.pacemaker.line().clone_id(&drbd_primitive_of(&inv.cluster));
    let ids = match fence_constraints(&out.stdout, &clone) {
        Ok(found) if found.is_empty() => return None,
        Ok(found) => found.iter().filter_map(Element::id).collect::<Vec<_>>().join(", "),
        Err(e) => return Some(Health::warn("drbd-fencing", e.to_string())),
    };
    let synced = state.is_some_and(DrbdState::is_in_sync);
    Some(if synced {
        Health::warn(
            "drbd-fencing",
            format!(
                "{ids} is stale: both disks are UpToDate but only one node may be promoted; re-run hainit (it removes \
                 it) or `pcs constraint remove` it"
            ),
        )
    } else {
        Health::warn(
            "drbd-fencing",
            format!("{ids}: promotion is held where the current data is until the peer has resynced"),
        )
    })
}

fn drbd_role(s: &DrbdState) -> Health {
    let detail = format!("{} here, peer {}", s.role, s.peer_role);
    if s.is_primary() && s.peer_is_primary() {
        Health::fail("drbd-role", format!("{detail}: both nodes are Primary (split brain)"))
    } else {
        Health::ok("drbd-role", detail)
    }
}

/// DRBD's kernel log says it dropped the connection over a split brain it did not resolve
/// (8.4 and 9 word it the same; the line names the device, `drbd<minor>`). There is no
/// structured source for it: the state only shows StandAlone.
fn split_brain_logged(probe: &dyn Probe, minor: u32) -> bool {
    let dev = format!("drbd{minor}");
    let Ok(out) = probe.query(&Cmd::new("journalctl").args(["-k", "-b", "-o", "cat", "--no-pager"])) else {
        return false;
    };
    out.success()
        && out
            .stdout
            .lines()
            .any(|l| l.contains(SPLIT_BRAIN_LOGGED) && l.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == dev))
}

const SPLIT_BRAIN_LOGGED: &str = "Split-Brain detected but unresolved";

fn drbd_connection(s: &DrbdState, res: &str, split_brain: bool) -> Health {
    let c = s.link();
    if s.is_connected() {
        Health::ok("drbd-connection", format!("{c}: replicating to the peer"))
    } else if split_brain {
        Health::fail(
            "drbd-connection",
            format!(
                "StandAlone after a split brain: both nodes wrote while apart and DRBD kept both sides' data (this \
                 node: {}, {}). Choose the node whose writes since the split are discarded; on it run `drbdadm \
                 disconnect {res}; drbdadm secondary {res}; drbdadm connect --discard-my-data {res}`, then on the \
                 other `drbdadm connect {res}` (docs/operations.md, \"Split brain\")",
                s.role, s.disk
            ),
        )
    } else if s.is_standalone() {
        Health::fail(
            "drbd-connection",
            "StandAlone: not trying to reach the peer (a split brain, a shared secret the peer does not share, or a \
             configuration mismatch; the kernel log says which: `journalctl -k | grep -i drbd`)",
        )
    } else {
        Health::warn("drbd-connection", format!("{c}: the peer is not connected, writes are not replicated"))
    }
}

fn drbd_disk(s: &DrbdState) -> Health {
    use DiskState::*;
    let detail = format!("{} here, peer {}", s.disk, s.peer_disk);
    match (s.disk, s.peer_disk) {
        (UpToDate, UpToDate) => Health::ok("drbd-disk", detail),
        (Diskless | Failed | Detaching, _) => {
            Health::fail("drbd-disk", format!("{detail}: no local disk attached (I/O error or detached)"))
        }
        (UpToDate, _) => Health::warn("drbd-disk", format!("{detail}: only this node has current data")),
        _ => Health::warn("drbd-disk", format!("{detail}: this node's data is not current")),
    }
}

fn drbd_sync(s: &DrbdState) -> Health {
    if !s.is_syncing() {
        return Health::ok("drbd-sync", "no resync running");
    }
    let done = s.sync_percent.map(|p| format!("{p:.1}% done")).unwrap_or_else(|| "progress unknown".into());
    Health::warn("drbd-sync", format!("{}: resync {done}", s.link()))
}

/// The cluster's items, and whether crm_mon reached a running cluster.
fn cluster(inv: &Inventory, platform: &Platform, probe: &dyn Probe) -> (Vec<Health>, bool) {
    let out = match probe.query(&crm_mon_query_for(platform)) {
        Ok(out) => out,
        Err(e) => return (vec![Health::fail("cluster", format!("crm_mon: {e}"))], false),
    };
    if out.code == Some(127) {
        return (vec![Health::fail("cluster", "crm_mon is not installed (Pacemaker command-line tools)")], false);
    }
    let state = match crm_mon::read(&out) {
        Ok(Cluster::Running(s)) => s,
        Err(e) => return (vec![Health::fail("cluster", e.to_string())], false),
        Ok(Cluster::Pacemakerd(p)) => {
            let what = format!("Pacemaker runs here but does not serve the cluster yet (pacemakerd: {p})");
            return (vec![Health::warn("cluster", what)], false);
        }
        Ok(Cluster::NotRunning) => {
            let formed =
                probe.read_string(COROSYNC_CONF).ok().flatten().is_some_and(|t| is_corosync_of(&inv.cluster, &t));
            let item = if formed {
                Health::fail(
                    "cluster",
                    format!(
                        "Pacemaker is not running on this node (crm_mon cannot connect); cluster {} is set up here",
                        inv.cluster
                    ),
                )
            } else {
                Health::warn(
                    "cluster",
                    format!(
                        "not formed yet: {COROSYNC_CONF} does not describe cluster {} (hainit forms it)",
                        inv.cluster
                    ),
                )
            };
            return (vec![item], false);
        }
    };
    let items = vec![
        match &state.dc {
            Some(dc) => Health::ok("cluster", format!("cluster {} running, DC {dc}", inv.cluster)),
            None => Health::warn("cluster", format!("cluster {} has no DC elected yet", inv.cluster)),
        },
        if state.quorate {
            Health::ok("quorum", "quorate")
        } else {
            Health::fail("quorum", "no quorum: the cluster stops its resources")
        },
        nodes(inv, &state),
        mariadb(inv, &state),
        stonith(&state),
        failures(&state),
    ];
    (items, true)
}

fn nodes(inv: &Inventory, state: &ClusterState) -> Health {
    let (mut bad, mut warn) = (Vec::new(), Vec::new());
    for peer in &inv.peers {
        match state.nodes.iter().find(|n| n.name == peer.name) {
            None => warn.push(format!("{} is not a cluster member", peer.name)),
            Some(n) => match n.status {
                NodeStatus::Unclean => bad.push(format!("{} is unclean (waiting to be fenced)", n.name)),
                NodeStatus::Offline | NodeStatus::Pending => {
                    warn.push(format!("{} is offline (no failover possible)", n.name))
                }
                NodeStatus::Standby => warn.push(format!("{} is in standby", n.name)),
                NodeStatus::Online | NodeStatus::Maintenance => {}
            },
        }
    }
    let online = state.online_nodes();
    let online = if online.is_empty() { "none".to_string() } else { online.join(", ") };
    if !bad.is_empty() {
        bad.extend(warn);
        Health::fail("nodes", format!("{}; online: {online}", bad.join("; ")))
    } else if !warn.is_empty() {
        Health::warn("nodes", format!("{}; online: {online}", warn.join("; ")))
    } else {
        Health::ok("nodes", format!("online: {online}"))
    }
}

fn mariadb(inv: &Inventory, state: &ClusterState) -> Health {
    let primitive = drbd_primitive_of(&inv.cluster);
    if !state.resources.iter().any(|r| r.id == primitive) {
        return Health::warn(
            "mariadb",
            format!("the cluster has no {primitive} resource yet (the leader pushes the stack)"),
        );
    }
    let here = |n: &str| if n == inv.node.name { format!("{n} (this node)") } else { n.to_string() };
    let promoted = state.node_of(&primitive, Role::Promoted);
    let promoted_text = promoted.map(here).unwrap_or_else(|| "no node".into());
    let Some(node) = state.node_of(MYSQLD, Role::Started) else {
        return Health::fail(
            "mariadb",
            format!("{MYSQLD} is not running on any node; DRBD is promoted on {promoted_text}"),
        );
    };
    let mut missing: Vec<&str> =
        [FS, PROBE].into_iter().filter(|id| state.node_of(id, Role::Started) != Some(node)).collect();
    if promoted != Some(node) {
        missing.push("the promoted DRBD");
    }
    if missing.is_empty() {
        Health::ok("mariadb", format!("running on {} with {FS}, {PROBE} and the promoted DRBD", here(node)))
    } else {
        Health::warn(
            "mariadb",
            format!(
                "running on {} but without {} there (DRBD promoted on {promoted_text})",
                here(node),
                missing.join(", ")
            ),
        )
    }
}

fn stonith(state: &ClusterState) -> Health {
    let started = [FENCE_AZURE, FENCE_SBD].into_iter().find(|id| state.node_of(id, Role::Started).is_some());
    match (state.stonith_enabled, started) {
        (Some(true), Some(id)) => Health::ok("stonith", format!("enabled, {id} started")),
        (Some(true), None) => {
            Health::warn("stonith", format!("enabled, but no fence device ({FENCE_AZURE} or {FENCE_SBD}) is started"))
        }
        (Some(false), _) => Health::fail(
            "stonith",
            "disabled (db.stonith: off): nothing fences a lost node, a split brain is contained only by DRBD \
             resource-level fencing; give the db VMs a managed identity with the fence role (db.stonith: auto) or \
             a shared SBD disk (db.stonith: sbd)",
        ),
        (None, _) => Health::warn("stonith", "unknown: crm_mon reported no stonith-enabled option"),
    }
}

fn failures(state: &ClusterState) -> Health {
    let failed: Vec<&str> = state.resources.iter().filter(|r| r.failed).map(|r| r.id.as_str()).collect();
    let cleanup = "clear with `pcs resource cleanup` once the cause is fixed";
    if !failed.is_empty() {
        let mut all: Vec<String> = failed.iter().map(|id| format!("{id} failed")).collect();
        all.extend(state.failures.iter().cloned());
        Health::fail("failed-actions", format!("{}; {cleanup}", all.join("; ")))
    } else if !state.failures.is_empty() {
        Health::warn("failed-actions", format!("{}; {cleanup}", state.failures.join("; ")))
    } else {
        Health::ok("failed-actions", "none")
    }
}

//! The leader's one-time bootstrap before Pacemaker takes over: promote DRBD, create the
//! filesystem, mount it (MariaDB is initialised in between, see mariadb.rs), then hand
//! everything back. Whether it runs is one decision ([`decide`]) made from both nodes' facts
//! (safety rule 7); each step consults it and checks real state, so a run killed anywhere
//! resumes.

use std::time::Duration;

use super::disk::{backing, signatures};
use super::facts::{cluster_owns, device, drbd_state, generation, mount_point_of, resource};
use crate::config::FsType;
use crate::dialect::drbd::{DiskState, DrbdState};
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::roles::units;
use crate::system::{Cmd, Probe};

/// What the replicated data holds, read from the backing partition (a Secondary 8.4 device
/// cannot be opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Empty,
    /// A filesystem signature (`TYPE=…`).
    Filesystem(String),
}

/// Every fact the decision needs. The costly ones are read only in the cell that needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub leader: bool,
    /// The CIB here holds hainit's DRBD resource.
    pub cluster_here: bool,
    /// This node's DRBD state and the peer's as DRBD reports it; `None` while not configured.
    pub drbd: Option<DrbdState>,
    /// This disk's generation is the one create-md wrote (read when both disks are Inconsistent).
    pub just_created: Option<bool>,
    /// What the data holds (read when both disks are UpToDate and both nodes Secondary).
    pub data: Option<Data>,
}

/// The one answer every bootstrap step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A plan on a machine whose DRBD is not up yet: show what a brand-new pair does.
    Predict,
    /// Both sides are new (the peer agrees: connected, both Inconsistent, no resync, and this
    /// disk's generation is create-md's): skip the initial sync, become the first primary.
    First,
    /// This leader's own bootstrap is under way: it is the Primary (only the bootstrap promotes
    /// before a cluster exists), or the new pair's data is still empty.
    Continue,
    /// The stack is the cluster's to run: join and let Pacemaker decide. The reason says why.
    Join(&'static str),
    /// Bounded wait for what it names.
    Wait(String),
    /// No rule covers these facts: stop, touching nothing.
    Refuse(String),
}

/// The matrix (docs/db-role.md, "The first primary"), first match wins.
pub fn decide(f: &Facts) -> Decision {
    use Decision::*;
    if !f.leader {
        return Join("not the leader: only the leader bootstraps");
    }
    if f.cluster_here {
        return Join("the CIB here holds the stack: Pacemaker decides");
    }
    let Some(s) = &f.drbd else { return Predict };
    if !s.is_connected() {
        return Wait("the DRBD peer to connect: the first primary is decided from both nodes".into());
    }
    if s.peer_is_primary() {
        return Join("the peer is Primary: its cluster runs the database");
    }
    if s.is_primary() {
        return Continue;
    }
    if s.is_brand_new_pair() {
        return match f.just_created {
            Some(true) => First,
            Some(false) => Refuse(
                "both disks are Inconsistent, but this one has held a data generation (drbdadm get-gi): an \
                 interrupted resync, not a new pair; no side has current data to promote"
                    .into(),
            ),
            None => Refuse("this disk's generation was not read".into()),
        };
    }
    if s.peer_disk == DiskState::UpToDate && s.disk != DiskState::UpToDate {
        return Join("the data lives on the peer: this node receives it and joins");
    }
    if s.disk == DiskState::UpToDate && s.peer_disk == DiskState::UpToDate {
        return match &f.data {
            Some(Data::Empty) => Continue,
            Some(Data::Filesystem(_)) => {
                Join("the data holds a filesystem: the bootstrap has handed off, or the peer's cluster owns it")
            }
            None => Refuse("what the data holds was not read".into()),
        };
    }
    if s.disk == DiskState::UpToDate && (s.is_syncing() || s.holds_stale_peer_disk()) {
        return Wait(format!("the peer's disk to be UpToDate (it is {}, {})", s.peer_disk, s.link()));
    }
    Refuse(format!(
        "DRBD shows {}/{} ({}, {}/{}): no side is known to hold the current data, so no node may become the first \
         primary; see docs/operations.md",
        s.disk,
        s.peer_disk,
        s.link(),
        s.role,
        s.peer_role
    ))
}

/// Read the facts from this node (only the leader's, and only what its cell needs).
pub fn facts(cx: &Context, probe: &dyn Probe) -> Result<Facts> {
    let mut f = Facts { leader: cx.inv.is_leader(), cluster_here: false, drbd: None, just_created: None, data: None };
    if !f.leader {
        return Ok(f);
    }
    f.cluster_here = cluster_owns(cx, probe)?;
    if f.cluster_here {
        return Ok(f);
    }
    f.drbd = drbd_state(cx, probe)?;
    let Some(s) = &f.drbd else { return Ok(f) };
    let secondaries = !s.is_primary() && !s.peer_is_primary();
    if s.is_brand_new_pair() {
        f.just_created = Some(generation(cx, probe)?.is_just_created());
    } else if s.is_in_sync() && secondaries {
        f.data = Some(data(cx, probe)?);
    }
    Ok(f)
}

/// The decision for this node now.
pub fn decision(cx: &Context, probe: &dyn Probe) -> Result<Decision> {
    Ok(decide(&facts(cx, probe)?))
}

/// What the backing partition holds. DRBD writes to it below the page cache, so cached pages
/// of an earlier read may predate mkfs: drop them first (BLKFLSBUF writes no data).
fn data(cx: &Context, probe: &dyn Probe) -> Result<Data> {
    let part = backing(cx, probe)?;
    let flush = Cmd::new("blockdev").args(["--flushbufs", &part.path]);
    let out = probe.query(&flush)?;
    if !out.success() {
        return Err(flush.failure(&out, format!("`{flush}` failed: {}", out.tail())));
    }
    let sigs = signatures(probe, &part.path)?;
    Ok(match sigs.into_iter().find(|(k, v)| k == "TYPE" && v != "drbd") {
        Some((_, fs)) => Data::Filesystem(fs),
        None => Data::Empty,
    })
}

/// How a bootstrap step reads the decision: the live state to act on, or what to return.
pub enum Gate {
    /// Act on the machine as it is (this node's DRBD state).
    Live(DrbdState),
    /// Show the actions a brand-new pair will take (plan before they ran).
    Predict,
    /// Return these actions (nothing, or a wait).
    Done(Vec<Action>),
}

pub fn gate(cx: &Context, probe: &dyn Probe) -> Result<Gate> {
    let f = facts(cx, probe)?;
    Ok(match decide(&f) {
        Decision::Predict | Decision::First => Gate::Predict,
        Decision::Continue => match f.drbd {
            Some(s) => Gate::Live(s),
            None => Gate::Predict,
        },
        Decision::Join(_) => Gate::Done(Vec::new()),
        Decision::Wait(what) => {
            Gate::Done(vec![Action::wait(what, Duration::from_secs(cx.config.db.peer_timeout_secs))])
        }
        Decision::Refuse(why) => return Err(Error::step(format!("refusing to bootstrap: {why}"))),
    })
}

pub fn fs_name(fs: FsType) -> &'static str {
    match fs {
        FsType::Ext4 => "ext4",
        FsType::Xfs => "xfs",
    }
}

pub struct PrimaryStep;

impl Step for PrimaryStep {
    fn id(&self) -> &'static str {
        "db.bootstrap.primary"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let promote =
            || vec![Action::run(Cmd::new("drbdadm").args(["primary", resource(cx)]), "bootstrap on the leader")];
        Ok(match gate(cx, probe)? {
            Gate::Done(actions) => actions,
            Gate::Predict => promote(),
            Gate::Live(s) if s.is_primary() => Vec::new(),
            Gate::Live(_) => promote(),
        })
    }
}

/// mkfs only on a device blkid has just found empty (safety rule 2); a filesystem of another
/// type is an error. Where the device cannot be read yet (a plan before the promotion), the
/// mkfs shown is a prediction: apply checks again once this node is Primary.
pub struct MkfsStep;

impl Step for MkfsStep {
    fn id(&self) -> &'static str {
        "db.bootstrap.mkfs"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let dev = device(cx);
        let fs = fs_name(cx.config.db.fs_type);
        let mkfs =
            || vec![Action::run(Cmd::new(format!("mkfs.{fs}")).args(["-q", &dev]), "filesystem for the datadir")];
        match gate(cx, probe)? {
            Gate::Done(actions) => Ok(actions),
            Gate::Live(s) if s.is_primary() => {
                let sigs = signatures(probe, &dev)?;
                match sigs.iter().find(|(k, _)| k == "TYPE").map(|(_, v)| v.as_str()) {
                    None if sigs.is_empty() => Ok(mkfs()),
                    Some(t) if t == fs => Ok(Vec::new()),
                    other => Err(Error::step(format!(
                        "{dev} already holds {}, not the configured {fs}; refusing to create a filesystem over it",
                        other.unwrap_or("an unknown signature")
                    ))),
                }
            }
            // Secondary and Continue: the data was read empty (decide's UpToDate/UpToDate cell).
            Gate::Predict | Gate::Live(_) => Ok(mkfs()),
        }
    }
}

pub struct MountStep;

impl Step for MountStep {
    fn id(&self) -> &'static str {
        "db.bootstrap.mount"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let dev = device(cx);
        let mp = &cx.config.db.mount_point;
        let mount = || -> Result<Vec<Action>> {
            let mut actions = Vec::new();
            if !probe.exists(mp)? {
                actions.push(Action::dir(mp.clone(), 0o755, "root", "root"));
            }
            let fs = fs_name(cx.config.db.fs_type);
            actions.push(Action::run(Cmd::new("mount").args(["-t", fs, &dev, mp]), "mount the DRBD filesystem"));
            Ok(actions)
        };
        match gate(cx, probe)? {
            Gate::Done(actions) => Ok(actions),
            Gate::Live(_) if mount_point_of(probe, &dev)?.as_deref() == Some(mp.as_str()) => Ok(Vec::new()),
            Gate::Predict | Gate::Live(_) => mount(),
        }
    }
}

/// Stop MariaDB, unmount, demote: Pacemaker starts everything itself once the CIB is pushed.
pub struct HandoffStep;

impl Step for HandoffStep {
    fn id(&self) -> &'static str {
        "db.bootstrap.handoff"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let dev = device(cx);
        let mp = &cx.config.db.mount_point;
        let unit = cx.platform.db.mariadb_service;
        let stop = Action::run(Cmd::new("systemctl").args(["stop", unit]), "hand MariaDB to Pacemaker");
        let umount = Action::run(Cmd::new("umount").arg(mp), "hand the filesystem to Pacemaker");
        let demote = Action::run(Cmd::new("drbdadm").args(["secondary", resource(cx)]), "hand DRBD to Pacemaker");
        Ok(match gate(cx, probe)? {
            Gate::Done(actions) => actions,
            Gate::Predict => vec![stop, umount, demote],
            Gate::Live(s) => {
                let mut actions = Vec::new();
                if units::state(probe, unit)?.is_active() {
                    actions.push(stop);
                }
                if mount_point_of(probe, &dev)?.is_some() {
                    actions.push(umount);
                }
                if s.is_primary() {
                    actions.push(demote);
                }
                actions
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::drbd::{Connection, Replication, Role};

    fn drbd(conn: Connection, repl: Replication, roles: (Role, Role), disks: (DiskState, DiskState)) -> DrbdState {
        DrbdState {
            role: roles.0,
            disk: disks.0,
            connection: conn,
            replication: repl,
            peer_role: roles.1,
            peer_disk: disks.1,
            sync_percent: None,
        }
    }

    /// The decision as a table: facts → the one answer. Each row is a case the bootstrap meets.
    #[test]
    fn the_first_primary_matrix() {
        use Connection::{Connected, StandAlone, WFConnection};
        use DiskState::{Consistent, DUnknown, Inconsistent, Outdated, UpToDate};
        use Replication::{Established, Off, SyncSource, SyncTarget};
        use Role::{Primary, Secondary, Unknown};
        let sec = (Secondary, Secondary);
        let up = (UpToDate, UpToDate);
        let fresh = drbd(Connected, Established, sec, (Inconsistent, Inconsistent));
        let synced = drbd(Connected, Established, sec, up);
        let fs = Some(Data::Filesystem("ext4".into()));
        type Row = (&'static str, bool, bool, Option<DrbdState>, Option<bool>, Option<Data>, &'static str);
        let rows: Vec<Row> = vec![
            ("follower", false, false, Some(fresh.clone()), None, None, "Join"),
            ("the cluster owns it here", true, true, Some(synced.clone()), None, None, "Join"),
            ("plan on a fresh VM", true, false, None, None, None, "Predict"),
            (
                "peer not connected yet",
                true,
                false,
                Some(drbd(WFConnection, Off, (Secondary, Unknown), (UpToDate, DUnknown))),
                None,
                None,
                "Wait",
            ),
            (
                "split brain: StandAlone",
                true,
                false,
                Some(drbd(StandAlone, Off, (Primary, Unknown), (UpToDate, DUnknown))),
                None,
                None,
                "Wait",
            ),
            ("both brand new", true, false, Some(fresh.clone()), Some(true), None, "First"),
            ("both Inconsistent, old generation", true, false, Some(fresh.clone()), Some(false), None, "Refuse"),
            (
                "peer Primary (its cluster runs)",
                true,
                false,
                Some(drbd(Connected, Established, (Secondary, Primary), up)),
                None,
                None,
                "Join",
            ),
            (
                "replaced leader receiving the data",
                true,
                false,
                Some(drbd(Connected, SyncTarget, (Secondary, Primary), (Inconsistent, UpToDate))),
                None,
                None,
                "Join",
            ),
            (
                "replaced leader, resync done, peer Secondary",
                true,
                false,
                Some(synced.clone()),
                None,
                fs.clone(),
                "Join",
            ),
            (
                "replaced leader behind a Secondary peer, syncing",
                true,
                false,
                Some(drbd(Connected, SyncTarget, sec, (Inconsistent, UpToDate))),
                None,
                None,
                "Join",
            ),
            (
                "outdated here, peer current",
                true,
                false,
                Some(drbd(Connected, Established, sec, (Outdated, UpToDate))),
                None,
                None,
                "Join",
            ),
            (
                "own bootstrap: sync skipped, nothing written",
                true,
                false,
                Some(synced.clone()),
                None,
                Some(Data::Empty),
                "Continue",
            ),
            (
                "own bootstrap: promoted",
                true,
                false,
                Some(drbd(Connected, Established, (Primary, Secondary), up)),
                None,
                None,
                "Continue",
            ),
            ("own bootstrap: handed off", true, false, Some(synced.clone()), None, fs, "Join"),
            (
                "resync to the peer running",
                true,
                false,
                Some(drbd(Connected, SyncSource, sec, (UpToDate, Inconsistent))),
                None,
                None,
                "Wait",
            ),
            (
                "no side current",
                true,
                false,
                Some(drbd(Connected, Established, sec, (Consistent, Outdated))),
                None,
                None,
                "Refuse",
            ),
        ];
        for (name, leader, cluster_here, drbd, just_created, data, want) in rows {
            let d = decide(&Facts { leader, cluster_here, drbd, just_created, data });
            let got = format!("{d:?}");
            assert!(got.starts_with(want), "{name}: {got}");
        }
    }

    /// A replaced leader (no CIB here) whose peer is an UpToDate Secondary never promotes,
    /// mounts or starts MariaDB, whatever the data holds; with an empty data it would only
    /// continue a bootstrap whose pair holds nothing to lose.
    #[test]
    fn a_primary_is_only_ever_made_from_new_or_empty_data() {
        use DiskState::*;
        use Replication::Established;
        use Role::*;
        for disks in DiskState::ALL.iter().flat_map(|a| DiskState::ALL.iter().map(move |b| (*a, *b))) {
            for data in [None, Some(Data::Empty), Some(Data::Filesystem("xfs".into()))] {
                let s = drbd(Connection::Connected, Established, (Secondary, Secondary), disks);
                let f = Facts {
                    leader: true,
                    cluster_here: false,
                    drbd: Some(s),
                    just_created: Some(false),
                    data: data.clone(),
                };
                let d = decide(&f);
                let promotes = matches!(d, Decision::First | Decision::Continue);
                let allowed = disks == (UpToDate, UpToDate) && data == Some(Data::Empty);
                assert_eq!(promotes, allowed, "{disks:?} {data:?}: {d:?}");
            }
        }
    }
}

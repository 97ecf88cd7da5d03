//! The leader's one-time bootstrap before Pacemaker takes over: promote DRBD, create the
//! filesystem, mount it (MariaDB is initialised in between, see mariadb.rs), then hand
//! everything back. Each step checks real state, so a run killed anywhere resumes.

use super::disk::signatures;
use super::facts::{cluster_owns, device, drbd_state, mount_point_of, resource};
use crate::config::FsType;
use crate::dialect::drbd::DrbdState;
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::roles::units;
use crate::system::{Cmd, Probe};

/// Whether the bootstrap applies now.
pub enum Gate {
    /// Not the leader, Pacemaker owns the stack, or the data lives on the peer (a replaced
    /// leader syncs from it and must never promote itself).
    Skip,
    /// DRBD is not up yet (a plan on a fresh machine): show what will happen.
    Predict,
    Live(DrbdState),
}

pub fn gate(cx: &Context, probe: &dyn Probe) -> Result<Gate> {
    if !cx.inv.is_leader() || cluster_owns(cx, probe)? {
        return Ok(Gate::Skip);
    }
    Ok(match drbd_state(cx, probe)? {
        None => Gate::Predict,
        Some(s) if s.peer_is_primary() => Gate::Skip,
        Some(s) if s.is_brand_new_pair() => Gate::Predict,
        Some(s) if s.disk != "UpToDate" => Gate::Skip,
        Some(s) => Gate::Live(s),
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
            Gate::Skip => Vec::new(),
            Gate::Predict => promote(),
            Gate::Live(s) if s.is_primary() => Vec::new(),
            Gate::Live(_) => promote(),
        })
    }
}

/// Never over a filesystem (safety rule 2): an existing one of another type is an error.
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
            Gate::Skip => Ok(Vec::new()),
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
        let mount = || {
            let mut actions = Vec::new();
            if !probe.exists(mp).unwrap_or(false) {
                actions.push(Action::dir(mp.clone(), 0o755, "root", "root"));
            }
            let fs = fs_name(cx.config.db.fs_type);
            actions.push(Action::run(Cmd::new("mount").args(["-t", fs, &dev, mp]), "mount the DRBD filesystem"));
            actions
        };
        Ok(match gate(cx, probe)? {
            Gate::Skip => Vec::new(),
            Gate::Live(_) if mount_point_of(probe, &dev)?.as_deref() == Some(mp.as_str()) => Vec::new(),
            Gate::Predict | Gate::Live(_) => mount(),
        })
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
            Gate::Skip => Vec::new(),
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

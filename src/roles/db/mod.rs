//! The db role: data disk, DRBD pair, MariaDB on the DRBD filesystem, Pacemaker/Corosync via
//! pcs with the LB probe listener and fencing — formed unattended on both nodes at once.
//!
//! Order: packages → disk → DRBD (module, config, metadata, up) → MariaDB settings → cluster
//! prerequisites (hosts, hacluster, pcsd) → wait for the DRBD peer → the leader's bootstrap
//! (skip the initial sync and re-handshake, primary, mkfs, mount, datadir, server, secure,
//! hand-off) → corosync.conf → authkey → SBD (when it fences) → start → unfence → resources
//! (leader) → MariaDB started → a blind fencer restarted. Once the CIB holds the stack,
//! Pacemaker owns DRBD, the mount and mysqld, and every bootstrap step stands aside.

pub mod bootstrap;
pub mod cluster;
pub mod disk;
pub mod drbd;
pub mod facts;
pub mod fencer;
pub mod fencing;
mod health;
pub mod mariadb;
pub mod resources;
pub mod sbd;
pub mod timing;
pub mod unfence;

use tracing::warn;

use crate::config::Config;
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::roles::firewall::FirewallStep;
use crate::roles::packages::PackagesStep;
use crate::status::Health;
use crate::system::Probe;

pub fn steps(cx: &Context) -> Vec<Box<dyn Step>> {
    let mut steps: Vec<Box<dyn Step>> = vec![Box::new(PackagesStep::db())];
    if cx.platform.firewalld {
        steps.push(Box::new(FirewallStep::db()));
    }
    steps.extend::<Vec<Box<dyn Step>>>(vec![
        Box::new(disk::PartitionStep),
        Box::new(drbd::ModuleStep),
        Box::new(drbd::ConfigStep),
        Box::new(drbd::MetadataStep),
        Box::new(drbd::UpStep),
        Box::new(mariadb::ConfigStep),
        Box::new(mariadb::UnitStep),
        Box::new(cluster::HostsStep),
        Box::new(cluster::HaclusterStep),
        Box::new(cluster::PcsdStep),
        Box::new(drbd::PeerStep),
        Box::new(drbd::InitialSyncStep),
        Box::new(drbd::AgreeStep),
        Box::new(bootstrap::PrimaryStep),
        Box::new(bootstrap::MkfsStep),
        Box::new(bootstrap::MountStep),
        Box::new(mariadb::DatadirStep),
        Box::new(mariadb::ServerStep),
        Box::new(mariadb::SecureStep),
        Box::new(bootstrap::HandoffStep),
        Box::new(cluster::CorosyncStep),
        // After corosync.conf: `pcs cluster setup` destroys the old cluster on both nodes first,
        // and that removes /etc/corosync/authkey (found in the lab).
        Box::new(cluster::AuthkeyStep),
        Box::new(sbd::DeviceStep),
        Box::new(sbd::ServiceStep),
        Box::new(cluster::StartStep),
        Box::new(resources::ResourcesStep),
        Box::new(resources::ReadyStep),
        // By now the fencer has long decided whether it reached the CIB.
        Box::new(fencer::FencerStep),
        Box::new(cluster::BootStep),
        // Last: on a node receiving a resync it waits for the end of it.
        Box::new(unfence::UnfenceStep),
    ]);
    steps
}

/// Inputs the db role needs, checked before any step touches the machine (exit 2).
pub fn validate(cx: &Context, probe: &dyn Probe) -> Result<()> {
    // First: it needs nothing from the machine, and without fencing nothing else matters.
    fencing::validate(cx)?;
    timing::validate(cx)?;
    let db = &cx.config.database;
    for (key, value) in [("database.name", &db.name), ("database.user", &db.user)] {
        if value.is_empty() || value.len() > 32 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::input(format!("{key} {value:?} must be 1–32 letters, digits or _")));
        }
    }
    for host in mariadb::allowed_hosts(cx)? {
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || ".%_/:-".contains(c)) {
            return Err(Error::input(format!("db.allowed_hosts entry {host:?} is not a MariaDB host pattern")));
        }
    }
    let scale = cx.config.db.op_timeout_scale;
    if !(1..=10).contains(&scale) {
        return Err(Error::input(format!("db.op_timeout_scale {scale} must be between 1 and 10")));
    }
    let mp = &cx.config.db.mount_point;
    if !mp.starts_with('/') || mp.contains(char::is_whitespace) {
        return Err(Error::input(format!("db.mount_point {mp:?} must be an absolute path without spaces")));
    }
    // DRBD `on` sections and corosync node names are matched against `uname -n`.
    let host = probe.hostname()?;
    if host != cx.inv.node.name {
        return Err(Error::input(format!(
            "this host is named {host:?} (uname -n) but tag hainit-peers calls it {:?}; DRBD and corosync need \
             them to be equal",
            cx.inv.node.name
        )));
    }
    let data = disk::find(cx, probe)?;
    sbd::validate(cx)?;
    if let (Some(dev), Some(data)) = (sbd::device(cx), &data) {
        if disk::canonical(probe, dev)?.as_deref() == Some(data.device.as_str()) {
            return Err(Error::input(format!(
                "db.sbd_device {dev} is the data disk ({}): SBD needs a disk of its own, shared by both nodes",
                data.device
            )));
        }
    }
    if let Some(why) = fencing::stonith_off_reason(cx) {
        warn!(
            "STONITH is disabled: {why}; a split brain is then contained only by DRBD resource-level fencing, and \
             `status` reports FAIL"
        );
    }
    Ok(())
}

pub fn health(inv: &Inventory, platform: &Platform, config: &Config, probe: &dyn Probe) -> Vec<Health> {
    health::collect(inv, platform, config, probe)
}

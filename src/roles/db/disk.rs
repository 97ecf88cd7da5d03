//! db.disk.partition: find the data disk and give it one GPT partition labelled
//! `hainit-<cluster>`. On Azure the data disk is LUN 0 or nothing: never "the one unused disk",
//! which can be the ephemeral resource disk. Safety rule 1: a disk holding anything — a
//! partition table, a filesystem, a DRBD signature — or mounted is refused; `--wipe-data-disk=DEV`
//! lets only foreign content on that very disk go, and only while the peer holds current data.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::facts::{drbd_state, mounts, partition_label};
use crate::dialect::drbd::DiskState as DrbdDisk;
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::system::{Cmd, Probe};

/// Azure's udev rule names data disk LUN 0 here (WALinuxAgent 66-azure-storage.rules, §1.6).
pub const AZURE_LUN0: &str = "/dev/disk/azure/scsi1/lun0";
/// azure-vm-utils' name for it, also on NVMe sizes (no SCSI LUNs there).
pub const AZURE_LUN0_BY_LUN: &str = "/dev/disk/azure/data/by-lun/0";
/// udevd's control socket: present while udev runs.
const UDEV_CONTROL: &str = "/run/udev/control";

/// The chosen disk: how it was named, and the kernel device behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDisk {
    pub path: String,
    pub device: String,
}

impl DataDisk {
    /// Kernel name, e.g. `sdc`.
    pub fn name(&self) -> &str {
        self.device.trim_start_matches("/dev/")
    }
}

/// `path` with every symlink resolved, or `None` when it does not exist (`readlink -e` exit 1).
pub fn canonical(probe: &dyn Probe, path: &str) -> Result<Option<String>> {
    let cmd = Cmd::new("readlink").args(["-e", path]);
    let out = probe.query(&cmd)?;
    match out.code {
        Some(0) if !out.stdout.trim().is_empty() => Ok(Some(out.stdout.trim().to_string())),
        Some(1) => Ok(None),
        _ => Err(cmd.failure(&out, format!("`{cmd}` failed: {}", out.tail()))),
    }
}

/// The data disk: `db.data_disk` when the config names one (it must exist, and be LUN 0 where
/// Azure's link exists), else Azure's LUN 0; `None` while LUN 0 is not there (yet).
pub fn find(cx: &Context, probe: &dyn Probe) -> Result<Option<DataDisk>> {
    let mut lun0 = None;
    for link in [AZURE_LUN0, AZURE_LUN0_BY_LUN] {
        if let Some(device) = canonical(probe, link)? {
            lun0 = Some(DataDisk { path: link.to_string(), device });
            break;
        }
    }
    let Some(path) = &cx.config.db.data_disk else { return Ok(lun0) };
    let device = canonical(probe, path)?
        .ok_or_else(|| Error::input(format!("data disk {path} (db.data_disk) does not exist")))?;
    match lun0 {
        Some(lun) if lun.device != device => Err(Error::input(format!(
            "db.data_disk {path} is {device}, but Azure's data disk LUN 0 ({}) is {}: the data disk is LUN 0",
            lun.path, lun.device
        ))),
        _ => Ok(Some(DataDisk { path: path.clone(), device })),
    }
}

/// What to wait for while LUN 0 is absent (a late attach; NVMe sizes without azure-vm-utils
/// never get it: then set db.data_disk).
pub fn wait_for_lun0(cx: &Context) -> Action {
    let luns: Vec<String> = cx.inv.azure.data_disk_luns.iter().map(u32::to_string).collect();
    let listed = if luns.is_empty() { "none".to_string() } else { luns.join(", ") };
    Action::wait(
        format!(
            "Azure data disk LUN 0 ({AZURE_LUN0} or {AZURE_LUN0_BY_LUN}; IMDS lists data disks at LUN {listed}) — no \
             other disk is ever taken for the data"
        ),
        Duration::from_secs(cx.config.db.peer_timeout_secs),
    )
}

/// Partition names of a disk from sysfs (`sdc1`, `nvme0n1p1`, `loop0p1`), in order.
pub fn partitions(probe: &dyn Probe, disk: &str) -> Result<Vec<String>> {
    let mut parts: Vec<String> = probe
        .list(&format!("/sys/block/{disk}"))?
        .into_iter()
        .filter(|n| n.starts_with(disk) && n.len() > disk.len())
        .collect();
    parts.sort_by_key(|p| p.trim_start_matches(disk).trim_start_matches('p').parse::<u32>().unwrap_or(u32::MAX));
    Ok(parts)
}

/// `blkid -p -o export DEV` as key/value pairs; empty when nothing is found (exit 2).
pub fn signatures(probe: &dyn Probe, dev: &str) -> Result<Vec<(String, String)>> {
    let out = probe.query(&Cmd::new("blkid").args(["-p", "-o", "export", dev]))?;
    match out.code {
        Some(0) => Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| *k != "DEVNAME")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        Some(2) => Ok(Vec::new()),
        _ => Err(Error::step(format!("blkid -p {dev} failed: {}", out.tail()))),
    }
}

fn value<'a>(sigs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    sigs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// libblkid names DRBD's internal metadata (v08 and v09) `TYPE=drbd`.
fn holds_drbd(sigs: &[(String, String)]) -> bool {
    value(sigs, "TYPE") == Some("drbd")
}

/// What is on the disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    Blank,
    /// One GPT partition carrying our label.
    Ours,
    /// Something else, described for the refusal message; `drbd`: a DRBD signature is among it.
    Used {
        found: String,
        drbd: bool,
    },
    Mounted(String),
}

pub fn inspect(cx: &Context, probe: &dyn Probe, disk: &DataDisk) -> Result<DiskState> {
    let parts = partitions(probe, disk.name())?;
    for (source, mount_point) in mounts(probe)? {
        let s = source.trim_start_matches("/dev/");
        if s == disk.name() || parts.iter().any(|p| p == s) {
            return Ok(DiskState::Mounted(format!("{source} is mounted at {mount_point}")));
        }
    }
    let sigs = signatures(probe, &disk.device)?;
    if sigs.is_empty() && parts.is_empty() {
        return Ok(DiskState::Blank);
    }
    let part_sigs = parts
        .iter()
        .map(|p| signatures(probe, &format!("/dev/{p}")))
        .collect::<Result<Vec<Vec<(String, String)>>>>()?;
    let label = partition_label(cx);
    if value(&sigs, "PTTYPE") == Some("gpt")
        && parts.len() == 1
        && value(&part_sigs[0], "PART_ENTRY_NAME") == Some(&label)
    {
        return Ok(DiskState::Ours);
    }
    let mut found: Vec<String> = sigs
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "PTTYPE" | "TYPE" | "LABEL" | "USAGE"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !parts.is_empty() {
        found.push(format!("partitions {}", parts.join(", ")));
    }
    let drbd = holds_drbd(&sigs) || part_sigs.iter().any(|s| holds_drbd(s));
    Ok(DiskState::Used { found: found.join(", "), drbd })
}

/// The partition DRBD uses: `/dev/disk/by-partuuid/<uuid>` of partition 1 of the data disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    pub path: String,
    /// The partition's kernel device, once it exists.
    pub partition: Option<String>,
}

/// The GUID hainit gives the partition it creates (sgdisk --partition-guid), so that a plan on
/// a fresh VM shows the resource file it will get: derived from the VM, so that two VMs —
/// and a snapshot made on another VM — never share it by construction.
pub fn planned_partuuid(cx: &Context) -> String {
    let id = format!("hainit/drbd-partition/{}/{}/{}", cx.inv.cluster, cx.inv.node.name, cx.inv.azure.vm_id);
    let mut b: [u8; 16] = Sha256::digest(id.as_bytes())[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4 layout
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = crate::secrets::hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The backing partition: the PARTUUID partition 1 of the data disk carries (read with blkid),
/// or the one hainit will give it while it does not exist yet.
pub fn backing(cx: &Context, probe: &dyn Probe) -> Result<Backing> {
    let path = |uuid: &str| format!("/dev/disk/by-partuuid/{}", uuid.to_ascii_lowercase());
    let planned = || Backing { path: path(&planned_partuuid(cx)), partition: None };
    let Some(disk) = find(cx, probe)? else { return Ok(planned()) };
    let Some(first) = partitions(probe, disk.name())?.into_iter().next() else { return Ok(planned()) };
    let partition = format!("/dev/{first}");
    Ok(match value(&signatures(probe, &partition)?, "PART_ENTRY_UUID") {
        Some(uuid) => Backing { path: path(uuid), partition: Some(partition) },
        // Not a GPT partition: db.disk.partition has refused the disk already.
        None => planned(),
    })
}

impl Backing {
    /// The link must lead to partition 1 of the data disk: a copy of the disk (a restored
    /// snapshot attached too) carries the same PARTUUID, and udev points the link at either.
    pub fn verify(&self, probe: &dyn Probe) -> Result<()> {
        let Some(partition) = &self.partition else { return Ok(()) };
        match canonical(probe, &self.path)? {
            Some(dev) if dev == *partition => Ok(()),
            Some(dev) => Err(Error::step(format!(
                "{} leads to {dev}, not to {partition} on the data disk: another disk carries the same partition \
                 UUID (a copy of the data disk?); detach it before DRBD attaches the wrong one",
                self.path
            ))),
            None => Err(Error::step(format!(
                "{} does not exist although {partition} carries that UUID: udev has not created the link (is \
                 systemd-udevd running?)",
                self.path
            ))),
        }
    }
}

/// What `--wipe-data-disk=DEV` allows on a disk that holds something (the matrix of
/// docs/db-role.md): foreign content on the named data disk, while the peer holds current data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wipe {
    Allowed,
    /// Why not, as the end of the refusal's sentence; it suggests the flag only where it works.
    Refused(String),
}

/// The facts the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WipeFacts<'a> {
    /// The flag's device, resolved; `None` when the flag was not given.
    pub named: Option<&'a str>,
    /// Devices the flag may name: the data disk and, for the metadata step, its partition.
    pub this: &'a [&'a str],
    /// A DRBD signature (or metadata dump-md calls unclean) is on it.
    pub drbd: bool,
    /// DRBD on this node is connected and sees the peer's disk UpToDate.
    pub peer_up_to_date: bool,
}

pub fn wipe_decision(f: WipeFacts) -> Result<Wipe> {
    let flag = format!("--wipe-data-disk={}", f.this[0]);
    if let Some(named) = f.named {
        if !f.this.contains(&named) {
            return Err(Error::input(format!(
                "--wipe-data-disk names {named}, which is not the data disk ({}); nothing was touched",
                f.this.join(", ")
            )));
        }
    }
    Ok(match (f.drbd, f.peer_up_to_date, f.named.is_some()) {
        (true, _, _) => Wipe::Refused(
            "it holds DRBD metadata: replicated data that hainit never wipes (docs/operations.md, \"Wiping a data \
             disk\")"
                .into(),
        ),
        (false, false, _) => Wipe::Refused(
            "the peer's disk is not known to be UpToDate (DRBD is not connected to it here), so this disk may hold the \
             only copy of the data; hainit wipes nothing then (docs/operations.md, \"Wiping a data disk\")"
                .into(),
        ),
        (false, true, false) => {
            Wipe::Refused(format!("the peer holds current data; pass {flag} to destroy this disk's contents"))
        }
        (false, true, true) => Wipe::Allowed,
    })
}

/// [`wipe_decision`] with the facts read from the machine.
pub fn may_wipe(cx: &Context, probe: &dyn Probe, this: &[&str], drbd: bool) -> Result<Wipe> {
    let named = match cx.options.wipe_data_disk {
        None => None,
        Some(dev) => Some(
            canonical(probe, dev)?
                .ok_or_else(|| Error::input(format!("--wipe-data-disk={dev}: no such device; nothing was touched")))?,
        ),
    };
    let peer_up_to_date = drbd_state(cx, probe)?.is_some_and(|s| s.is_connected() && s.peer_disk == DrbdDisk::UpToDate);
    wipe_decision(WipeFacts { named: named.as_deref(), this, drbd, peer_up_to_date })
}

pub struct PartitionStep;

impl Step for PartitionStep {
    fn id(&self) -> &'static str {
        "db.disk.partition"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let Some(disk) = find(cx, probe)? else { return Ok(vec![wait_for_lun0(cx)]) };
        let dev = &disk.device;
        // Without a udev daemon there is nothing to settle (and udevadm may not be installed:
        // found on the test machine, where `udevadm settle` failed the step with exit 127).
        let udev = probe.exists(UDEV_CONTROL)?;
        let create = || {
            let mut actions = vec![Action::run(
                Cmd::new("sgdisk").args([
                    "--new=1:0:0".to_string(),
                    "--typecode=1:8300".to_string(),
                    format!("--partition-guid=1:{}", planned_partuuid(cx)),
                    format!("--change-name=1:{}", partition_label(cx)),
                    dev.clone(),
                ]),
                format!("one GPT partition over the blank data disk {}", disk.path),
            )];
            if udev {
                actions.push(Action::run(
                    Cmd::new("udevadm").args(["settle", "--timeout=60"]),
                    "let udev create /dev/disk/by-partuuid/ for the new partition",
                ));
            }
            actions
        };
        let (found, drbd) = match inspect(cx, probe, &disk)? {
            DiskState::Ours => return Ok(Vec::new()),
            DiskState::Blank => return Ok(create()),
            DiskState::Mounted(what) => {
                return Err(Error::step(format!(
                    "data disk {} ({dev}) is in use: {what}; refusing to touch it",
                    disk.path
                )))
            }
            DiskState::Used { found, drbd } => (found, drbd),
        };
        match may_wipe(cx, probe, &[dev], drbd)? {
            Wipe::Refused(why) => Err(Error::step(format!(
                "data disk {} ({dev}) is not blank ({found}); refusing to partition it: {why}",
                disk.path
            ))),
            Wipe::Allowed => {
                let mut actions: Vec<Action> = partitions(probe, disk.name())?
                    .iter()
                    .map(|p| {
                        Action::run(Cmd::new("wipefs").args(["--all", &format!("/dev/{p}")]), "--wipe-data-disk: erase")
                    })
                    .collect();
                actions.push(Action::run(
                    Cmd::new("sgdisk").args(["--zap-all", dev]),
                    format!("--wipe-data-disk: destroy {found} on {} (the peer holds current data)", disk.path),
                ));
                actions.push(Action::run(Cmd::new("wipefs").args(["--all", dev]), "--wipe-data-disk: erase"));
                actions.extend(create());
                Ok(actions)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell of the wipe matrix.
    #[test]
    fn wipe_matrix() {
        let this = ["/dev/sdc", "/dev/sdc1"];
        let case = |named, drbd, peer| wipe_decision(WipeFacts { named, this: &this, drbd, peer_up_to_date: peer });
        for named in [None, Some("/dev/sdc"), Some("/dev/sdc1")] {
            for peer in [false, true] {
                let Wipe::Refused(why) = case(named, true, peer).unwrap() else { panic!("{named:?} {peer}") };
                assert!(why.contains("DRBD metadata") && !why.contains("--wipe"), "{why}");
            }
            let Wipe::Refused(why) = case(named, false, false).unwrap() else { panic!("{named:?}") };
            assert!(why.contains("only copy") && !why.contains("--wipe"), "{why}");
        }
        let Wipe::Refused(why) = case(None, false, true).unwrap() else { panic!() };
        assert!(why.contains("pass --wipe-data-disk=/dev/sdc"), "{why}");
        assert_eq!(case(Some("/dev/sdc"), false, true).unwrap(), Wipe::Allowed);
        let e = case(Some("/dev/sdd"), false, true).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Input);
        assert!(e.to_string().contains("/dev/sdd") && e.to_string().contains("/dev/sdc"), "{e}");
    }
}

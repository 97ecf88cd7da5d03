//! db.disk.partition: find the data disk and give it one GPT partition labelled
//! `hainit-<cluster>`. Safety rule 1: a disk holding anything — a partition table, a filesystem,
//! a DRBD signature — or mounted is refused unless `--wipe-data-disk`; a mounted one always.

use super::facts::{mounts, partition_label};
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::system::{Cmd, Probe};

/// Azure's udev rule names data disk LUN 0 here (WALinuxAgent 66-azure-storage.rules, §1.6).
pub const AZURE_LUN0: &str = "/dev/disk/azure/scsi1/lun0";
const AZURE_RESOURCE: &str = "/dev/disk/azure/resource";
/// udevd's control socket: present while udev runs.
const UDEV_CONTROL: &str = "/run/udev/control";
/// Block devices that are never a data disk.
const NOT_DISKS: [&str; 9] = ["loop", "ram", "sr", "dm-", "md", "zram", "nbd", "drbd", "fd"];

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

/// `path` with every symlink resolved, or `None` when it does not exist.
pub fn canonical(probe: &dyn Probe, path: &str) -> Result<Option<String>> {
    let out = probe.query(&Cmd::new("readlink").args(["-e", path]))?;
    Ok(out.success().then(|| out.stdout.trim().to_string()).filter(|s| !s.is_empty()))
}

/// LUN 0, else `db.data_disk`, else the one whole disk that is neither the OS disk nor the Azure
/// resource disk nor in use; ambiguity is bad input listing the candidates.
pub fn find(cx: &Context, probe: &dyn Probe) -> Result<DataDisk> {
    let named = |path: &str, why: &str| -> Result<DataDisk> {
        let device =
            canonical(probe, path)?.ok_or_else(|| Error::input(format!("data disk {path} ({why}) does not exist")))?;
        Ok(DataDisk { path: path.to_string(), device })
    };
    if probe.exists(AZURE_LUN0)? {
        return named(AZURE_LUN0, "Azure LUN 0");
    }
    if let Some(path) = &cx.config.db.data_disk {
        return named(path, "db.data_disk");
    }
    let mut candidates = unused_disks(probe)?;
    // On a re-run the disk we partitioned is the answer even if another blank disk appeared.
    let label = partition_label(cx);
    let ours: Vec<String> = candidates
        .iter()
        .filter(|d| {
            partitions(probe, d).ok().and_then(|p| p.first().cloned()).is_some_and(|p| {
                part_label(probe, &format!("/dev/{p}")).ok().flatten().as_deref() == Some(label.as_str())
            })
        })
        .cloned()
        .collect();
    if ours.len() == 1 {
        candidates = ours;
    }
    match candidates.as_slice() {
        [one] => Ok(DataDisk { path: format!("/dev/{one}"), device: format!("/dev/{one}") }),
        [] => Err(Error::input(format!(
            "no data disk: {AZURE_LUN0} is absent, db.data_disk is not set and no unused disk was found"
        ))),
        many => Err(Error::input(format!(
            "cannot tell which disk is the data disk: candidates {}; set db.data_disk",
            many.iter().map(|d| format!("/dev/{d}")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Whole disks (by kernel name) that hold no mounted filesystem or swap and are not the Azure
/// resource disk.
fn unused_disks(probe: &dyn Probe) -> Result<Vec<String>> {
    let mut used: Vec<String> = mounts(probe)?.into_iter().map(|(s, _)| s).collect();
    let swaps = probe.read_string("/proc/swaps")?.unwrap_or_default();
    used.extend(swaps.lines().skip(1).filter_map(|l| l.split_whitespace().next().map(str::to_string)));
    if let Some(resource) = canonical(probe, AZURE_RESOURCE)? {
        used.push(resource);
    }
    let mut disks = Vec::new();
    for name in probe.list("/sys/block")? {
        if NOT_DISKS.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let parts = partitions(probe, &name)?;
        let in_use = used.iter().any(|u| {
            let u = u.trim_start_matches("/dev/");
            u == name || parts.iter().any(|p| p == u)
        });
        let holders = !probe.list(&format!("/sys/block/{name}/holders"))?.is_empty();
        if !in_use && !holders {
            disks.push(name);
        }
    }
    Ok(disks)
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

fn part_label(probe: &dyn Probe, part: &str) -> Result<Option<String>> {
    Ok(signatures(probe, part)?.into_iter().find(|(k, _)| k == "PART_ENTRY_NAME").map(|(_, v)| v))
}

/// What is on the disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    Blank,
    /// One GPT partition carrying our label.
    Ours,
    /// Something else, described for the refusal message.
    Used(String),
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
    let gpt = sigs.iter().any(|(k, v)| k == "PTTYPE" && v == "gpt");
    if gpt && parts.len() == 1 {
        let label = part_label(probe, &format!("/dev/{}", parts[0]))?;
        if label.as_deref() == Some(partition_label(cx).as_str()) {
            return Ok(DiskState::Ours);
        }
    }
    let mut found: Vec<String> = sigs
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "PTTYPE" | "TYPE" | "LABEL" | "USAGE"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !parts.is_empty() {
        found.push(format!("partitions {}", parts.join(", ")));
    }
    Ok(DiskState::Used(found.join(", ")))
}

pub struct PartitionStep;

impl Step for PartitionStep {
    fn id(&self) -> &'static str {
        "db.disk.partition"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let disk = find(cx, probe)?;
        let dev = &disk.device;
        // Without a udev daemon there is nothing to settle (and udevadm may not be installed:
        // found on the test machine, where `udevadm settle` failed the step with exit 127).
        let udev = probe.exists(UDEV_CONTROL)?;
        let create = || {
            let mut actions = vec![Action::run(
                Cmd::new("sgdisk").args([
                    "--new=1:0:0".to_string(),
                    "--typecode=1:8300".to_string(),
                    format!("--change-name=1:{}", partition_label(cx)),
                    dev.clone(),
                ]),
                format!("one GPT partition over the blank data disk {}", disk.path),
            )];
            if udev {
                actions.push(Action::run(
                    Cmd::new("udevadm").args(["settle", "--timeout=60"]),
                    "let udev create /dev/disk/by-partlabel/ for the new partition",
                ));
            }
            actions
        };
        match inspect(cx, probe, &disk)? {
            DiskState::Ours => Ok(Vec::new()),
            DiskState::Blank => Ok(create()),
            DiskState::Mounted(what) => {
                Err(Error::step(format!("data disk {} ({dev}) is in use: {what}; refusing to touch it", disk.path)))
            }
            DiskState::Used(found) if !cx.options.wipe_data_disk => Err(Error::step(format!(
                "data disk {} ({dev}) is not blank ({found}); refusing to partition it — pass --wipe-data-disk \
                 to destroy its contents",
                disk.path
            ))),
            DiskState::Used(found) => {
                let mut actions: Vec<Action> = partitions(probe, disk.name())?
                    .iter()
                    .map(|p| {
                        Action::run(Cmd::new("wipefs").args(["--all", &format!("/dev/{p}")]), "--wipe-data-disk: erase")
                    })
                    .collect();
                actions.push(Action::run(
                    Cmd::new("sgdisk").args(["--zap-all", dev]),
                    format!("--wipe-data-disk: destroy {found} on {}", disk.path),
                ));
                actions.push(Action::run(Cmd::new("wipefs").args(["--all", dev]), "--wipe-data-disk: erase"));
                actions.extend(create());
                Ok(actions)
            }
        }
    }
}

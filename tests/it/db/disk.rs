//! `db.disk.partition` on loop devices with the real HostSystem: a blank disk gets one GPT
//! partition labelled hainit-wpcluster with hainit's partition UUID; a disk with a filesystem, a
//! partition table or a mount is refused with nothing written; `--wipe-data-disk=DEV` lets the
//! filesystem go only while DRBD sees the peer UpToDate (a /proc/drbd the test serves), never
//! the mount, never another disk.
//!
//! The kernel here (and in CI) has no partition-table parsers (CONFIG_EFI_PARTITION and
//! CONFIG_MSDOS_PARTITION are off), so sgdisk's re-read finds nothing. [`Rescan`] plays the
//! kernel's part after each sgdisk: `partx` parses the table in userspace and adds the
//! partitions with BLKPG, as an Azure kernel does on sgdisk's BLKRRPART. No udev runs here.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hainit::engine::{self, Options, Outcome, Step};
use hainit::error::{ErrorKind, Result};
use hainit::platform::OsId;
use hainit::roles::db::disk::{planned_partuuid, PartitionStep};
use hainit::system::{Cmd, Executor, FileMeta, FileSpec, HostSystem, Output, Probe, Root};

use super::{assert_root, run, Node};

const MIB: usize = 1 << 20;

/// A 64 MiB loop device with partition scanning on, detached by its own name when dropped.
pub(super) struct Loop {
    pub(super) dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    pub(super) fn new() -> Loop {
        Loop::of(|image| File::create(image).unwrap().set_len(64 * MIB as u64).unwrap())
    }

    /// A loop device over the image `make` writes at the path it is given.
    pub(super) fn of(make: impl FnOnce(&std::path::Path)) -> Loop {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        make(&image);
        let dev = run(Command::new("losetup").args(["--find", "--show", "--partscan"]).arg(&image)).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "{dev}");
        Loop { dev, _dir: dir }
    }

    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }

    /// The first and the last MiB, as the block device reads them.
    pub(super) fn ends(&self) -> (Vec<u8>, Vec<u8>) {
        run(&mut Command::new("sync"));
        let mut f = File::open(&self.dev).unwrap();
        let mut first = vec![0; MIB];
        f.read_exact(&mut first).unwrap();
        f.seek(SeekFrom::End(-(MIB as i64))).unwrap();
        let mut last = vec![0; MIB];
        f.read_exact(&mut last).unwrap();
        (first, last)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let out = Command::new("losetup").args(["--detach", &self.dev]).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("could not detach {}: {out:?}", self.dev);
        }
    }
}

/// A mount made by the test, unmounted by its mount point when dropped.
struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    fn new(dev: &str) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount").arg(dev).arg(dir.path()));
        Mount { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(self.dir.path()).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("could not unmount {}: {out:?}", self.dir.path().display());
        }
    }
}

/// The host, with the kernel's partition re-read after sgdisk done by partx (see module doc),
/// and DRBD's /proc/drbd as the test says (this host has no DRBD module).
struct Rescan(HostSystem, Option<&'static str>);

impl Rescan {
    fn partx(dev: &str) {
        // -d fails when the kernel knows no partitions, -a when the disk has no table: both fine.
        let _ = Command::new("partx").args(["-d", dev]).output();
        let _ = Command::new("partx").args(["-a", dev]).output();
    }
}

impl Probe for Rescan {
    fn read(&self, p: &str) -> Result<Option<Vec<u8>>> {
        if p == "/proc/drbd" {
            return Ok(self.1.map(|t| t.as_bytes().to_vec()));
        }
        self.0.read(p)
    }
    fn meta(&self, p: &str) -> Result<Option<FileMeta>> {
        self.0.meta(p)
    }
    fn list(&self, p: &str) -> Result<Vec<String>> {
        self.0.list(p)
    }
    fn query(&self, c: &Cmd) -> Result<Output> {
        self.0.query(c)
    }
    fn tcp_open(&self, ip: IpAddr, port: u16, t: Duration) -> bool {
        self.0.tcp_open(ip, port, t)
    }
    fn hostname(&self) -> Result<String> {
        self.0.hostname()
    }
}

impl Executor for Rescan {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        self.0.write_file(spec)
    }
    fn ensure_dir(&self, p: &str, m: u32, o: &str, g: &str) -> Result<()> {
        self.0.ensure_dir(p, m, o, g)
    }
    fn run(&self, c: &Cmd) -> Result<Output> {
        let out = self.0.run(c)?;
        if c.program == "sgdisk" {
            Self::partx(c.args_exposed().last().copied().unwrap_or_default());
        }
        Ok(out)
    }
}

fn node(dev: &str) -> Node {
    Node::new(OsId::Debian12, true, &format!("db:\n  data_disk: {dev}\n"))
}

fn steps() -> Vec<Box<dyn Step>> {
    vec![Box::new(PartitionStep)]
}

fn host() -> Rescan {
    Rescan(HostSystem::new(Root::host()), None)
}

/// DRBD up without a disk here, connected to a peer whose disk is current.
const PEER_UP_TO_DATE: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----\n";

fn host_with_current_peer() -> Rescan {
    Rescan(HostSystem::new(Root::host()), Some(PEER_UP_TO_DATE))
}

/// `--wipe-data-disk=DEV` (the flag's value lives as long as the run).
fn wiping(dev: &str) -> Options {
    Options { wipe_data_disk: Some(Box::leak(dev.to_string().into_boxed_str())), ..Options::default() }
}

/// One GPT partition named hainit-wpcluster with hainit's UUID, seen by sgdisk and by blkid.
fn assert_ours(disk: &Loop) {
    let table = run(Command::new("sgdisk").arg("-p").arg(&disk.dev));
    let rows: Vec<&str> = table.lines().skip_while(|l| !l.starts_with("Number")).skip(1).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(rows[0].trim_start().starts_with('1') && rows[0].ends_with("hainit-wpcluster"), "{table}");
    let part = format!("{}p1", disk.dev);
    let sigs = run(Command::new("blkid").args(["-p", "-o", "export", &part]));
    assert!(sigs.contains("PART_ENTRY_SCHEME=gpt") && sigs.contains("PART_ENTRY_NAME=hainit-wpcluster"), "{sigs}");
    let node = node(&disk.dev);
    let uuid = planned_partuuid(&node.cx(Options::default()));
    assert!(sigs.contains(&format!("PART_ENTRY_UUID={uuid}")), "{uuid}: {sigs}");
}

/// Apply partitions, a second apply changes nothing and the plan is empty.
fn apply_converges(disk: &Loop, options: Options, sys: &Rescan) {
    let node = node(&disk.dev);
    let cx = node.cx(options);
    let first = engine::apply(&steps(), &cx, sys).unwrap();
    assert!(matches!(first[0].1, Outcome::Changed { .. }), "{first:?}");
    assert_ours(disk);
    let second = engine::apply(&steps(), &cx, sys).unwrap();
    assert_eq!(second[0].1, Outcome::Converged);
    assert!(engine::plan(&steps(), &cx, sys).unwrap().is_converged());
}

/// Plan and apply both refuse, naming the device and `what`, and nothing on the disk changes;
/// the refusal's text.
fn assert_refused(disk: &Loop, options: Options, sys: &Rescan, what: &str) -> String {
    let node = node(&disk.dev);
    let cx = node.cx(options);
    let before = disk.ends();
    let e = engine::plan(&steps(), &cx, sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    let e = engine::apply(&steps(), &cx, sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&disk.dev) && msg.contains(what), "{msg}");
    assert!(before == disk.ends(), "the refused disk {} was written to", disk.dev);
    msg
}

#[test]
fn a_blank_loop_disk_gets_one_labelled_gpt_partition() {
    assert_root("partitioning loop devices");
    let disk = Loop::new();
    let node = node(&disk.dev);
    let cx = node.cx(Options::default());
    let plan = engine::plan(&steps(), &cx, &host()).unwrap();
    let cmds: Vec<String> = plan.steps[0].actions.iter().map(|a| a.describe()).collect();
    let uuid = planned_partuuid(&cx);
    let sgdisk = format!(
        "sgdisk --new=1:0:0 --typecode=1:8300 --partition-guid=1:{uuid} --change-name=1:hainit-wpcluster {}",
        disk.dev
    );
    assert!(cmds[0].contains(&sgdisk), "{cmds:?}");
    // No udev daemon here: nothing to settle.
    assert!(!cmds.iter().any(|c| c.contains("udevadm")), "{cmds:?}");
    apply_converges(&disk, Options::default(), &host());
    assert!(host().list(&format!("/sys/block/{}", disk.name())).unwrap().contains(&format!("{}p1", disk.name())));
}

/// A filesystem is never wiped while the peer is not known to hold current data, and the
/// refusal does not suggest the flag then; with the peer UpToDate, the flag naming this disk
/// wipes it, the flag naming another device is bad input.
#[test]
fn a_loop_disk_with_a_filesystem_is_wiped_only_for_a_current_peer() {
    assert_root("formatting loop devices");
    let disk = Loop::new();
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&disk.dev));
    let msg = assert_refused(&disk, Options::default(), &host(), "TYPE=ext4");
    assert!(msg.contains("only copy") && !msg.contains("--wipe-data-disk"), "{msg}");
    let msg = assert_refused(&disk, wiping(&disk.dev), &host(), "TYPE=ext4");
    assert!(msg.contains("only copy") && !msg.contains("--wipe-data-disk"), "{msg}");
    let msg = assert_refused(&disk, Options::default(), &host_with_current_peer(), "TYPE=ext4");
    assert!(msg.contains(&format!("pass --wipe-data-disk={}", disk.dev)), "{msg}");
    let other = Loop::new();
    let e = engine::plan(&steps(), &node(&disk.dev).cx(wiping(&other.dev)), &host_with_current_peer()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input, "{e}");
    assert!(e.to_string().contains(&other.dev), "{e}");
    apply_converges(&disk, wiping(&disk.dev), &host_with_current_peer());
    let fs = Command::new("blkid").args(["-p", "-o", "export", &disk.dev]).output().unwrap();
    assert!(!String::from_utf8_lossy(&fs.stdout).contains("ext4"), "the filesystem signature is gone");
}

#[test]
fn a_loop_disk_with_a_partition_table_is_refused() {
    assert_root("partitioning loop devices");
    let disk = Loop::new();
    run(Command::new("sgdisk").args(["--new=1:0:+8M", "--change-name=1:someone-else"]).arg(&disk.dev));
    Rescan::partx(&disk.dev);
    let msg = assert_refused(&disk, Options::default(), &host(), "PTTYPE=gpt");
    assert!(msg.contains(&format!("partitions {}p1", disk.name())) && !msg.contains("--wipe-data-disk"), "{msg}");
}

#[test]
fn a_mounted_loop_disk_is_refused_even_when_wiping() {
    assert_root("mounting loop devices");
    let disk = Loop::new();
    // No lazy init: the kernel must not write to the filesystem behind the test's back.
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]).arg(&disk.dev));
    let mount = Mount::new(&disk.dev);
    let mounted = format!("is mounted at {}", mount.path().display());
    assert_refused(&disk, wiping(&disk.dev), &host_with_current_peer(), &mounted);
    assert_refused(&disk, Options::default(), &host(), "is mounted at");
    assert!(Path::new(&mount.path()).join("lost+found").is_dir());
}

/// The flag names the device it may wipe: bare, or with a value that is not a device path, it
/// is bad input (exit 2) before anything is read.
#[test]
fn the_wipe_flag_must_name_a_device() {
    for args in [&["--wipe-data-disk", "plan"][..], &["--wipe-data-disk=sdc", "plan"], &["--wipe-data-disk="]] {
        let out = Command::new(env!("CARGO_BIN_EXE_hainit")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--wipe-data-disk"), "{args:?}");
    }
}

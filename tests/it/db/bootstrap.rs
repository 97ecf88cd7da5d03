//! Fail closed on the DRBD and disk side, on the fake db VM (fake.rs): the first primary is
//! decided from both nodes, mkfs follows a blkid of the device, a DRBD query that fails is an
//! error that touches nothing, the data disk is Azure's LUN 0 or nothing, DRBD's backing
//! partition is found by its PARTUUID, and the EL path reads DRBD 9's `drbdsetup status --json`.

use hainit::engine::{self, Options};
use hainit::error::ErrorKind;
use hainit::platform::OsId;
use hainit::roles::db::disk::planned_partuuid;
use hainit::system::{FakeSystem, FileKind, Output, Probe};

use super::fake::{arg, converged_leader, fact, fresh_vm, partitioned, set, steps, CIB, PARTUUID};
use super::Node;

/// Commands that change DRBD's roles or generations, the filesystem, the database or the
/// cluster (stopping the distro's MariaDB on its local datadir is not among them).
const TOUCHES: [&str; 10] = [
    "drbdadm primary",
    "drbdadm new-current-uuid",
    "mkfs",
    "mount ",
    "systemctl start mariadb",
    "systemctl stop corosync",
    "systemctl stop pacemaker",
    "pcs cluster stop",
    "umount",
    "drbdadm secondary",
];

fn ran_since(sys: &FakeSystem, from: usize) -> Vec<String> {
    sys.commands()[from..].iter().map(|c| c.join(" ")).collect()
}

fn assert_untouched(ran: &[String], case: &str) {
    for t in TOUCHES {
        assert!(!ran.iter().any(|c| c.starts_with(t) || c.contains(&format!(" {t}"))), "{case}: ran {t}: {ran:#?}");
    }
}

/// A replaced leader (no CIB here, the peer's cluster down or standing by) whose DRBD resynced
/// from its peer: UpToDate/UpToDate, the peer Secondary, the data a filesystem. It joins: no
/// primary, no mkfs, no mount, no MariaDB started; on DRBD 8.4 and on DRBD 9.
#[test]
fn a_replaced_leader_with_an_up_to_date_secondary_peer_never_promotes() {
    for os in [OsId::Debian12, OsId::El9] {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        set(&sys, "peer.corosync");
        // Resynced from the peer: current data, a filesystem on it, a generation of the peer's.
        sys.on(&["drbdadm", "up"], |s, _| {
            set(s, "drbd.up");
            set(s, "drbd.uptodate");
            set(s, "fs");
            super::fake::refresh_drbd(s);
            Output::ok("")
        });
        // What a plan shows once DRBD has resynced: no bootstrap step acts.
        let plan_sys = fresh_vm(&node);
        partitioned(&plan_sys);
        for k in ["peer.corosync", "md", "drbd.up", "drbd.uptodate", "fs"] {
            set(&plan_sys, k);
        }
        super::fake::refresh_drbd(&plan_sys);
        let plan = engine::plan(&steps(&cx), &cx, &plan_sys).unwrap();
        for s in plan.steps.iter().filter(|s| s.name.starts_with("db.bootstrap.") || s.name == "db.mariadb.server") {
            assert!(s.actions.is_empty(), "{os}: {} acts: {:?}", s.name, s.actions);
        }
        let e = engine::apply(&steps(&cx), &cx, &sys);
        let ran = ran_since(&sys, 0);
        assert_untouched(&ran, &format!("{os}"));
        // It went on to join the peer's cluster (the fake's peer has it).
        assert!(ran.iter().any(|c| c.starts_with("systemctl start corosync pacemaker")), "{os}: {e:?} {ran:#?}");
        assert!(ran.iter().any(|c| c.starts_with("blockdev --flushbufs")), "{os}: the data was read fresh");
    }
}

/// The first primary needs the peer's agreement that both sides are new: both Inconsistent and
/// connected, and this disk's generation create-md's. An Inconsistent pair with a history
/// (an interrupted resync) is refused: nothing skipped, promoted or formatted.
#[test]
fn an_inconsistent_pair_with_a_history_is_refused() {
    for os in [OsId::Debian12, OsId::El9] {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = converged_on_a_fresh_pair(&node);
        sys.on(&["drbdadm", "get-gi"], |_, _| {
            Output::ok("8A3F0C2E1B4D5A66:0000000000000000:4C9E1F00AB12CD34:0000000000000000:0:1:0:1:0:0:0\n")
        });
        let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Step, "{os}: {e}");
        assert!(e.to_string().contains("has held a data generation"), "{os}: {e}");
        assert_untouched(&ran_since(&sys, 0), &format!("{os}"));
    }
}

/// A leader VM before its first apply (the model's get-gi says "just created").
fn converged_on_a_fresh_pair(node: &Node) -> FakeSystem {
    let sys = fresh_vm(node);
    set(&sys, "node.leader");
    sys
}

/// mkfs runs only right after blkid found the DRBD device empty, on every platform.
#[test]
fn mkfs_follows_a_blkid_of_the_device() {
    for os in [OsId::Centos7, OsId::El9, OsId::Debian12] {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = converged_leader(&node, &cx);
        let ran = ran_since(&sys, 0);
        let mkfs = ran.iter().position(|c| c.starts_with("mkfs.")).unwrap_or_else(|| panic!("{os}: no mkfs"));
        let before = ran[..mkfs].iter().rposition(|c| c.starts_with("blkid") || c.starts_with("drbdadm"));
        assert_eq!(before.map(|i| ran[i].as_str()), Some("blkid -p -o export /dev/drbd0"), "{os}: {ran:#?}");
    }
}

/// A DRBD query that fails is an error: the run stops (exit 1) and changes nothing. DRBD 9's
/// drbdsetup failing other than "No such resource" (exit 10), 8.4's /proc/drbd that does not
/// parse, and get-gi failing where the first primary is decided.
#[test]
fn a_failed_drbd_query_is_an_error_never_a_state() {
    let cases: [(OsId, &str); 3] = [(OsId::El9, "drbdsetup"), (OsId::Debian12, "proc"), (OsId::El9, "get-gi")];
    for (os, broken) in cases {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = converged_leader(&node, &cx);
        // A re-run after a reboot of a node the cluster owns would not ask: make it the leader
        // before its cluster exists, DRBD up.
        sys.remove(CIB);
        match broken {
            "drbdsetup" => sys.reply(
                &["drbdsetup", "status"],
                Output::fail(20, "Could not connect to 'drbd' generic netlink family\n"),
            ),
            "proc" => sys.add_file("/proc/drbd", "version: 8.4.11\n 0: cs:Connected ro:Secondary ds:\n", 0o444),
            _ => {
                sys.facts_remove("drbd.uptodate");
                sys.facts_remove("drbd.primary");
                sys.reply(&["drbdadm", "get-gi"], Output::fail(1, "Device has no disk\n"));
            }
        }
        let from = sys.commands().len();
        let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Step, "{os} {broken}: {e}");
        let want = match broken {
            "drbdsetup" => "generic netlink",
            "proc" => "/proc/drbd",
            _ => "get-gi",
        };
        assert!(e.to_string().contains(want), "{os} {broken}: {e}");
        assert_untouched(&ran_since(&sys, from), &format!("{os} {broken}"));
        assert!(!ran_since(&sys, from).iter().any(|c| c.starts_with("drbdadm up")), "{os} {broken}");
    }
}

/// drbdsetup's "No such resource" (exit 10) is the resource not configured: `drbdadm up`.
/// The same exit code with other words is an error.
#[test]
fn drbdsetup_no_such_resource_means_down_and_nothing_else_does() {
    let node = Node::new(OsId::El9, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    partitioned(&sys);
    set(&sys, "md");
    super::fake::refresh_drbd(&sys);
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    let up = plan.steps.iter().find(|s| s.name == "db.drbd.up").unwrap();
    assert!(up.actions[0].describe().contains("drbdadm up wpcluster"), "{:?}", up.actions);
    sys.reply(&["drbdsetup", "status"], Output::fail(10, "wpcluster: something else\n"));
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("something else"), "{e}");
}

/// The EL path reads DRBD 9's JSON, and the resource it writes is 9's with auto-promote off.
#[test]
fn the_el9_path_reads_drbd_9_json() {
    let node = Node::new(OsId::El9, true, "\n");
    let cx = node.cx(Options::default());
    let sys = converged_leader(&node, &cx);
    let ran = ran_since(&sys, 0);
    assert!(ran.iter().any(|c| c == "drbdsetup status wpcluster --json"), "{ran:#?}");
    assert!(ran.iter().any(|c| c == "drbdadm get-gi wpcluster"), "{ran:#?}");
    assert!(sys.read_string("/proc/drbd").unwrap().unwrap().starts_with("version: 9."));
    let res = sys.read_string("/etc/drbd.d/wpcluster.res").unwrap().unwrap();
    assert!(res.contains("auto-promote no;"), "{res}");
}

/// The resource file names the partition hainit created by its PARTUUID, holds the replication
/// secret (0600, shown redacted) and, without a fence device, never discards a side's writes.
#[test]
fn the_resource_file_uses_the_partuuid_and_is_secret() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = converged_leader(&node, &cx);
    let uuid = planned_partuuid(&cx);
    assert_eq!(sys.fact("partuuid").as_deref(), Some(uuid.as_str()));
    let res = sys.read_string("/etc/drbd.d/wpcluster.res").unwrap().unwrap();
    assert!(res.contains(&format!("disk /dev/disk/by-partuuid/{uuid};")), "{res}");
    assert!(res.contains("cram-hmac-alg sha256;") && res.contains("shared-secret \""), "{res}");
    assert!(res.contains("after-sb-1pri disconnect;") && !res.contains("discard-secondary"), "{res}");
    assert_eq!(sys.meta("/etc/drbd.d/wpcluster.res").unwrap().unwrap().mode, 0o600);
    let plan = engine::plan(&steps(&cx), &cx, &fresh_vm(&node)).unwrap().to_text();
    assert!(plan.contains("/etc/drbd.d/wpcluster.res") && !plan.contains("shared-secret"), "{plan}");
}

/// A copy of the data disk (a restored snapshot) carries the same PARTUUID; udev may point the
/// link at it. DRBD is then not brought up on it: the run stops naming both.
#[test]
fn a_partuuid_link_to_another_disk_is_refused() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    partitioned(&sys);
    set(&sys, "md");
    super::fake::refresh_drbd(&sys);
    sys.on(&["readlink", "-e"], |_, c| match arg(c, 2).as_str() {
        "/dev/disk/azure/scsi1/lun0" => Output::ok("/dev/sdc\n"),
        p if p.ends_with(PARTUUID) => Output::ok("/dev/sde1\n"),
        _ => Output::fail(1, ""),
    });
    let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("/dev/sde1") && e.to_string().contains("/dev/sdc1"), "{e}");
    assert!(!fact(&sys, "drbd.up"), "DRBD was brought up on the copy");
}

/// Azure's data disk is LUN 0: while it is absent hainit waits (exit 3 after
/// db.peer_timeout_secs) and takes no other disk — not the resource disk, not a blank one.
/// azure-vm-utils' by-lun name counts; db.data_disk naming another disk than LUN 0 is bad input.
#[test]
fn the_data_disk_is_lun_0_or_nothing() {
    let node = Node::new(OsId::Debian12, true, "db:\n  peer_timeout_secs: 2\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    sys.remove("/dev/disk/azure/scsi1/lun0");
    sys.on(&["readlink", "-e"], |_, c| match arg(c, 2).as_str() {
        "/dev/disk/azure/resource" => Output::ok("/dev/sdb\n"),
        _ => Output::fail(1, ""),
    });
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    let disk = plan.steps.iter().find(|s| s.name == "db.disk.partition").unwrap();
    assert!(disk.actions[0].describe().contains("LUN 0"), "{:?}", disk.actions);
    let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("LUN 0"), "{e}");
    assert!(!sys.commands().iter().any(|c| c[0] == "sgdisk"), "{:#?}", sys.commands());

    // NVMe sizes with azure-vm-utils: /dev/disk/azure/data/by-lun/0.
    sys.on(&["readlink", "-e"], |_, c| match arg(c, 2).as_str() {
        "/dev/disk/azure/data/by-lun/0" => Output::ok("/dev/sdc\n"),
        _ => Output::fail(1, ""),
    });
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    let disk = plan.steps.iter().find(|s| s.name == "db.disk.partition").unwrap();
    assert!(
        disk.actions[0].describe().contains("sgdisk") && disk.actions[0].describe().contains("/dev/sdc"),
        "{:?}",
        disk.actions
    );

    let named = Node::new(OsId::Debian12, true, "db:\n  data_disk: /dev/disk/azure/resource\n");
    let cx = named.cx(Options::default());
    let sys = fresh_vm(&named);
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input, "{e}");
    assert!(e.to_string().contains("LUN 0") && e.to_string().contains("/dev/sdb"), "{e}");
    assert_eq!(sys.meta("/dev/disk/azure/scsi1/lun0").unwrap().map(|m| m.kind), Some(FileKind::File));
}

//! `db.sbd.device` with the real sbd on loop devices: the leader writes a header with the
//! configured timeouts on a blank disk and never again; a disk holding a filesystem is refused
//! with nothing written; the follower only waits for the leader's header. `db.sbd.service` never
//! stops the stack on a `systemctl show` that failed.

use std::process::Command;

use hainit::engine::{self, Options, Outcome, Step};
use hainit::error::ErrorKind;
use hainit::platform::OsId;
use hainit::roles::db::sbd::{header_timeout, DeviceStep, ServiceStep};
use hainit::system::{FakeSystem, FileKind, HostSystem, Output, Root};

use super::disk::Loop;
use super::{assert_root, run, Node};

fn node(dev: &str, leader: bool) -> Node {
    let yaml = format!("db:\n  stonith: sbd\n  sbd_device: {dev}\n  sbd_watchdog_timeout_secs: 15\n");
    Node::new(OsId::Debian12, leader, &yaml)
}

fn steps() -> Vec<Box<dyn Step>> {
    vec![Box::new(DeviceStep)]
}

#[test]
fn the_leader_writes_an_sbd_header_once_on_a_blank_disk() {
    assert_root("sbd on loop devices");
    let disk = Loop::new();
    let node = node(&disk.dev, true);
    let cx = node.cx(Options::default());
    let host = HostSystem::new(Root::host());
    let first = engine::apply(&steps(), &cx, &host).unwrap();
    assert!(matches!(first[0].1, Outcome::Changed { .. }), "{first:?}");
    let dump = run(Command::new("sbd").args(["-d", &disk.dev, "dump"]));
    assert_eq!(header_timeout(&dump, "watchdog"), Some(15), "{dump}");
    assert_eq!(header_timeout(&dump, "msgwait"), Some(30), "{dump}");
    // A node's slot (what its sbd daemon allocates) survives every later run.
    run(Command::new("sbd").args(["-d", &disk.dev, "allocate", "db-b"]));
    let second = engine::apply(&steps(), &cx, &host).unwrap();
    assert_eq!(second[0].1, Outcome::Converged);
    let list = run(Command::new("sbd").args(["-d", &disk.dev, "list"]));
    assert!(list.contains("db-b"), "the header was written again: {list}");
}

#[test]
fn a_disk_with_a_filesystem_never_gets_an_sbd_header() {
    assert_root("sbd on loop devices");
    let disk = Loop::new();
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&disk.dev));
    let before = disk.ends();
    let node = node(&disk.dev, true);
    let cx = node.cx(Options::default());
    let e = engine::apply(&steps(), &cx, &HostSystem::new(Root::host())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    assert!(e.to_string().contains(&disk.dev) && e.to_string().contains("TYPE=ext4"), "{e}");
    assert!(before == disk.ends(), "the refused disk {} was written to", disk.dev);
}

#[test]
fn the_follower_waits_for_the_leaders_header() {
    assert_root("sbd on loop devices");
    let disk = Loop::new();
    let follower = node(&disk.dev, false);
    let host = HostSystem::new(Root::host());
    let plan = engine::plan(&steps(), &follower.cx(Options::default()), &host).unwrap();
    let actions = &plan.steps[0].actions;
    assert!(actions.len() == 1 && actions[0].is_wait(), "{actions:?}");
    assert!(actions[0].describe().contains("the leader db-a to write the SBD header"), "{actions:?}");
    // Once the leader has written it, the follower has nothing to do.
    let leader = node(&disk.dev, true);
    engine::apply(&steps(), &leader.cx(Options::default()), &host).unwrap();
    assert!(engine::plan(&steps(), &follower.cx(Options::default()), &host).unwrap().is_converged());
}

/// `db.sbd.service` restarts the stack when sbd is not running but corosync is; a `systemctl
/// show` that fails is no "inactive": the run ends and the running stack is not stopped.
#[test]
fn a_failed_systemctl_show_never_stops_the_cluster_stack() {
    let node = node("/dev/disk/by-id/virtio-hainit-sbd", true);
    let cx = node.cx(Options::default());
    let show = |unit: &str| {
        let mut argv = vec!["systemctl", "show", "-p", "UnitFileState", "-p", "ActiveState", "-p"];
        argv.extend(["ActiveEnterTimestamp", unit]);
        argv.into_iter().map(String::from).collect::<Vec<String>>()
    };
    let state =
        |active: &str| Output::ok(format!("UnitFileState=enabled\nActiveState={active}\nActiveEnterTimestamp=\n"));
    let sys = FakeSystem::new("db-a");
    sys.add_node("/dev/watchdog", FileKind::Other);
    let corosync = show("corosync");
    let sbd = show("sbd");
    sys.reply(&corosync.iter().map(String::as_str).collect::<Vec<_>>(), state("active"));
    sys.reply(&sbd.iter().map(String::as_str).collect::<Vec<_>>(), state("inactive"));
    let stop = "systemctl stop pacemaker corosync";
    let planned: Vec<String> = ServiceStep.check(&cx, &sys).unwrap().iter().map(|a| a.describe()).collect();
    assert!(planned.iter().any(|a| a.contains(stop)), "the control case restarts the stack: {planned:?}");

    // systemd does not answer for sbd while corosync runs: that is not "sbd is not running".
    sys.reply(
        &sbd.iter().map(String::as_str).collect::<Vec<_>>(),
        Output::fail(1, "Failed to get properties: Connection timed out"),
    );
    sys.reply(&["systemctl", "stop"], Output::ok(""));
    sys.reply(&["systemctl", "enable"], Output::ok(""));
    let e = engine::apply(&steps_service(), &cx, &sys).unwrap_err();
    let ran: Vec<String> = sys.commands().into_iter().map(|c| c.join(" ")).collect();
    assert!(!ran.iter().any(|c| c.starts_with("systemctl stop")), "the stack was stopped: {ran:?}");
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    assert!(e.to_string().contains("sbd") && e.to_string().contains("Connection timed out"), "{e}");
}

fn steps_service() -> Vec<Box<dyn Step>> {
    vec![Box::new(ServiceStep)]
}

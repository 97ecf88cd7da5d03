//! The db role on a fake db VM whose commands change its state the way the real tools do:
//! golden plans of brand-new leader and follower VMs per platform, convergence, a second run
//! that changes nothing, a run killed after any action, a replaced node, and the refusals.

use std::net::IpAddr;

use hainit::cib::desired::desired;
use hainit::cib::line::Line;
use hainit::cib::live::Live;
use hainit::cib::render;
use hainit::cib::xml::Element;
use hainit::dialect::DrbdDialect;
use hainit::engine::{self, Context, Options, Outcome, Step};
use hainit::error::ErrorKind;
use hainit::platform::OsId;
use hainit::roles;
use hainit::roles::db::mariadb::{datadir_stage, DATADIR_SEED};
use hainit::roles::db::resources::spec;
use hainit::system::{Cmd, FakeSystem, Output, Probe};

use super::Node;
use crate::common::assert_golden;
use crate::common::dies_after::DiesAfter;

pub(super) const CIB: &str = "/var/lib/pacemaker/cib/cib.xml";
const SBD_DISK: &str = "/dev/disk/by-id/scsi-hainit-sbd";
const SBD_YAML: &str =
    "db:\n  stonith: sbd\n  sbd_device: /dev/disk/by-id/scsi-hainit-sbd\n  sbd_watchdog_timeout_secs: 30\n";

pub(super) fn fact(sys: &FakeSystem, key: &str) -> bool {
    sys.fact(key).is_some()
}

pub(super) fn set(sys: &FakeSystem, key: &str) {
    sys.set_fact(key, "1");
}

/// The loaded DRBD module: 9 where the platform's dialect is (EL), else 8.4 (fact `drbd.v9`).
fn drbd9(sys: &FakeSystem) -> bool {
    fact(sys, "drbd.v9")
}

/// /proc/drbd from the model's facts: 8.4 lists the minor's state, 9 only its version.
fn proc_drbd(sys: &FakeSystem) -> String {
    if drbd9(sys) {
        return "version: 9.2.8 (api:2/proto:86-122)\n\
                GIT-hash: e163b05a76254c0f51f999970e861d72bb16409a build by @buildhost, 2024-02-07 10:06:45\n\
                Transports (api:20): tcp (9.2.8)\n"
            .to_string();
    }
    let mut text = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 211FB288A383ED945B83420\n".to_string();
    if fact(sys, "drbd.up") {
        let role = if fact(sys, "drbd.primary") { "Primary" } else { "Secondary" };
        let [cs, peer_role] = drbd_link(sys);
        let [disk, peer_disk] = drbd_disks(sys);
        text.push_str(&format!(
            " 0: cs:{cs} ro:{role}/{peer_role} ds:{disk}/{peer_disk} C r-----\n    ns:0 nr:0 dw:0 dr:0\n"
        ));
    }
    text
}

/// `drbdsetup status wpcluster --json` of DRBD 9.2 from the same facts, as drbdsetup prints it
/// (drbd-utils user/v9/drbdsetup.c, status_cmd and its *_status_json: the keys, their order and
/// indentation, the stray space after the connection state, "[" and "]" on lines of their own).
fn status_json(sys: &FakeSystem, me: &str, peer: (&str, &str)) -> String {
    let role = if fact(sys, "drbd.primary") { "Primary" } else { "Secondary" };
    let [cs, peer_role] = drbd_link(sys);
    let [disk, peer_disk] = drbd_disks(sys);
    let (conn, repl) = if cs == "StandAlone" { ("StandAlone", "Off") } else { ("Connected", "Established") };
    let (my_id, peer_id) = if me < peer.0 { (0, 1) } else { (1, 0) };
    let my_ip = if peer.1 == "10.0.1.5" { "10.0.1.4" } else { "10.0.1.5" };
    let established = conn == "Connected";
    format!(
        "[\n{{\n  \"name\": \"wpcluster\",\n  \"node-id\": {my_id},\n  \"role\": \"{role}\",\n  \"suspended\": false,\n  \
         \"suspended-user\": false,\n  \"suspended-no-data\": false,\n  \"suspended-fencing\": false,\n  \
         \"suspended-quorum\": false,\n  \"force-io-failures\": false,\n  \"write-ordering\": \"flush\",\n  \
         \"devices\": [\n    {{\n      \"volume\": 0,\n      \"minor\": 0,\n      \"disk-state\": \"{disk}\",\n      \
         \"client\": false,\n      \"open\": false,\n      \"quorum\": true,\n      \"size\": 523260,\n      \
         \"read\": 0,\n      \"written\": 0,\n      \"al-writes\": 0,\n      \"bm-writes\": 0,\n      \
         \"upper-pending\": 0,\n      \"lower-pending\": 0\n    }} ],\n  \"connections\": [\n    {{\n      \
         \"peer-node-id\": {peer_id},\n      \"name\": \"{}\",\n      \"connection-state\": \"{conn}\", \n      \
         \"congested\": false,\n      \"peer-role\": \"{peer_role}\",\n      \"tls\": false,\n      \
         \"ap-in-flight\": 0,\n      \"rs-in-flight\": 0,\n      \"paths\": [\n        {{\n          \
         \"this_host\": {{\n            \"address\": \"{my_ip}\",\n            \"port\": 7789,\n            \
         \"family\": \"ipv4\"\n          }},\n          \"remote_host\": {{\n            \"address\": \"{}\",\n            \
         \"port\": 7789,\n            \"family\": \"ipv4\"\n          }},\n          \"established\": {established}\n        \
         }} ],\n      \"peer_devices\": [\n        {{\n          \"volume\": 0,\n          \
         \"replication-state\": \"{repl}\",\n          \"peer-disk-state\": \"{peer_disk}\",\n          \
         \"peer-client\": false,\n          \"resync-suspended\": \"no\",\n          \"received\": 0,\n          \
         \"sent\": 0,\n          \"out-of-sync\": 0,\n          \"pending\": 0,\n          \"unacked\": 0,\n          \
         \"has-sync-details\": false,\n          \"has-online-verify-details\": false,\n          \
         \"percent-in-sync\": 100.00\n        }} ]\n    }} ]\n}}\n]\n\n",
        peer.0, peer.1
    )
}

/// The connection state and the peer's role as this node sees them (`drbdadm disconnect`: none).
fn drbd_link(sys: &FakeSystem) -> [&'static str; 2] {
    if fact(sys, "drbd.standalone") {
        ["StandAlone", "Unknown"]
    } else {
        ["Connected", "Secondary"]
    }
}

/// This node's disk and what it believes of the peer's: `drbd.stale_peer` is DRBD 8.4 having
/// kept a state packet of the peer's from before the skipped sync's new UUID.
fn drbd_disks(sys: &FakeSystem) -> [&'static str; 2] {
    match (fact(sys, "drbd.uptodate"), fact(sys, "drbd.standalone"), fact(sys, "drbd.stale_peer")) {
        (false, false, _) => ["Inconsistent", "Inconsistent"],
        (false, true, _) => ["Inconsistent", "DUnknown"],
        (true, true, _) => ["UpToDate", "DUnknown"],
        (true, false, true) => ["UpToDate", "Inconsistent"],
        (true, false, false) => ["UpToDate", "UpToDate"],
    }
}

pub(super) fn refresh_drbd(sys: &FakeSystem) {
    sys.add_file("/proc/drbd", proc_drbd(sys), 0o444);
}

/// The partition UUID the model's sgdisk gave when a test partitions the disk itself.
pub(super) const PARTUUID: &str = "5c1c0a4e-7d2b-4f39-9a61-3e8f2b6d0c17";

/// The data disk as db.disk.partition leaves it: one GPT partition, ours, with its UUID.
pub(super) fn partitioned(sys: &FakeSystem) {
    set(sys, "gpt");
    sys.set_fact("partuuid", PARTUUID);
    sys.add_file("/sys/block/sdc/sdc1/dev", "8:33\n", 0o444);
}

fn mountinfo(sys: &FakeSystem) -> String {
    let mut text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n".to_string();
    if fact(sys, "mounted") {
        text.push_str("40 22 147:0 / /var/lib/mysql rw,relatime - ext4 /dev/drbd0 rw\n");
    }
    text
}

fn unit_show(sys: &FakeSystem, unit: &str) -> String {
    let state = |k: &str| fact(sys, &format!("unit.{unit}.{k}"));
    format!(
        "UnitFileState={}\nActiveState={}\nActiveEnterTimestamp=\n",
        if state("enabled") { "enabled" } else { "disabled" },
        if state("active") { "active" } else { "inactive" }
    )
}

/// crm_mon of a running two-node cluster: what the CIB configures runs on db-a (the group, the
/// fence devices); `cib.pushed` is a peer that pushed the whole stack into the cluster this node
/// joined. Exit 102 while Pacemaker is stopped.
fn crm_mon(sys: &FakeSystem) -> Output {
    // Right after its start, pacemakerd answers for daemons that are still starting (exit 0),
    // then once more for running daemons that give no view of the cluster yet (seen in the lab).
    let path = format!("{}/tests/fixtures/crm_mon/debian12-starting.xml", env!("CARGO_MANIFEST_DIR"));
    if sys.fact("pacemaker.starting").is_some() {
        sys.facts_remove("pacemaker.starting");
        sys.set_fact("pacemaker.no_view", "1");
        return Output::ok(std::fs::read_to_string(path).unwrap());
    }
    if sys.fact("pacemaker.no_view").is_some() {
        sys.facts_remove("pacemaker.no_view");
        return Output::ok(std::fs::read_to_string(path).unwrap().replace("starting_daemons", "running"));
    }
    if !pacemaker_runs(sys) {
        return Output {
            code: Some(102),
            stdout: "<pacemaker-result api-version=\"2.25\"><status code=\"102\" message=\"Not connected\"/></pacemaker-result>\n".into(),
            stderr: String::new(),
        };
    }
    let live = sys.read_string(CIB).unwrap().map(|t| Live::parse(&t).unwrap());
    let has = |id: &str| fact(sys, "cib.pushed") || live.as_ref().is_some_and(|l| l.has_primitive(id));
    let started = |id: &str| {
        format!(
            "<resource id=\"{id}\" resource_agent=\"ocf:heartbeat:x\" role=\"Started\" active=\"true\" failed=\"false\">\
             <node name=\"db-a\" id=\"1\"/></resource>"
        )
    };
    let mut running = String::new();
    if has("mysqld") {
        running.push_str(&format!("<group id=\"g_db\">{}</group>", started("mysqld")));
    }
    for device in ["fence_azure", "fence_sbd"] {
        if has(device) && !fact(sys, &format!("{device}.stopped")) {
            running.push_str(&started(device));
        }
    }
    Output::ok(format!(
        "<pacemaker-result api-version=\"2.25\"><summary><current_dc present=\"true\" name=\"db-a\" with_quorum=\"true\"/>\
         <cluster_options stonith-enabled=\"false\"/></summary><nodes>\
         <node name=\"db-a\" id=\"1\" online=\"true\" standby=\"false\" unclean=\"false\"/>\
         <node name=\"db-b\" id=\"2\" online=\"true\" standby=\"false\" unclean=\"false\"/></nodes>\
         <resources>{running}</resources><status code=\"0\" message=\"OK\"/></pacemaker-result>\n"
    ))
}

/// Pacemaker runs, with its CIB.
fn pacemaker_runs(sys: &FakeSystem) -> bool {
    fact(sys, "unit.pacemaker.active") && sys.read(CIB).unwrap().is_some()
}

/// The CIB a new cluster of `os` starts with: both nodes, nothing configured, on the schema its
/// Pacemaker makes it with.
fn new_cluster_cib(os: OsId) -> String {
    let schema = match os.platform().pacemaker.line() {
        Line::V1_1 => "pacemaker-2.10",
        Line::V2_0 => "pacemaker-3.5",
        Line::V2_1 => "pacemaker-3.9",
    };
    format!(
        "<cib validate-with=\"{schema}\" epoch=\"5\" num_updates=\"0\" admin_epoch=\"0\"><configuration><crm_config/>\
         <nodes><node id=\"1\" uname=\"db-a\"/><node id=\"2\" uname=\"db-b\"/></nodes><resources/><constraints/>\
         </configuration><status/></cib>\n"
    )
}

/// The CIB of a cluster whose leader has pushed the whole stack `cx` wants (what a node finds on
/// disk once the cluster owns it).
fn owned_cib(cx: &Context) -> String {
    let stack = render::document(&desired(&spec(cx, cx.platform.pacemaker)));
    stack.replace("<nodes/>", "<nodes><node id=\"1\" uname=\"db-a\"/><node id=\"2\" uname=\"db-b\"/></nodes>")
}

/// What crm-fence-peer leaves when a node lost its peer: promotion only where the data is
/// current (`node`).
fn fence_constraint(node: &str) -> String {
    format!(
        "<rsc_location rsc=\"drbd_wpcluster-clone\" id=\"drbd-fence-by-handler-wpcluster-drbd_wpcluster-clone\">\
         <rule role=\"Master\" score=\"-INFINITY\" id=\"drbd-fence-by-handler-wpcluster-rule-drbd_wpcluster-clone\">\
         <expression attribute=\"#uname\" operation=\"ne\" value=\"{node}\" \
         id=\"drbd-fence-by-handler-wpcluster-expr-drbd_wpcluster-clone\"/></rule></rsc_location>"
    )
}

/// The XPath that matches exactly this element (what an exact `cibadmin --delete` names).
fn exact_xpath(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    Element::from_node(doc.root_element()).xpath_exact().unwrap()
}

/// The constraints section: the handler's constraint while `fence.constraint` names its node.
fn constraints(sys: &FakeSystem) -> String {
    match sys.fact("fence.constraint") {
        Some(node) => format!("<constraints>{}</constraints>", fence_constraint(&node)),
        None => "<constraints/>".into(),
    }
}

/// `cibadmin --patch` as Pacemaker applies it: the real cibadmin on a copy of the fake's CIB.
fn apply_patch(sys: &FakeSystem, patch: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (cib, file) = (dir.path().join("cib.xml"), dir.path().join("patch.xml"));
    std::fs::write(&cib, sys.read(CIB).unwrap().expect("a running cluster has a CIB")).unwrap();
    std::fs::write(&file, patch).unwrap();
    let out = std::process::Command::new("cibadmin")
        .env("CIB_file", &cib)
        .args(["--patch", "--xml-file"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        sys.add_file(CIB, std::fs::read(&cib).unwrap(), 0o600);
    }
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn corosync_conf(name: &str) -> String {
    format!("totem {{\n    version: 2\n    cluster_name: {name}\n    transport: knet\n}}\n")
}

/// A brand-new db VM: blank data disk at LUN 0, packages installed, nothing formed. The peer
/// answers on pcsd; for the follower, the leader has already set the cluster up.
pub(super) fn fresh_vm(node: &Node) -> FakeSystem {
    let me = &node.inv.node.name;
    let peer = node.inv.peer().unwrap().clone();
    let sys = FakeSystem::new(me);
    sys.add_file(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nmysql:x:105:108::/nonexistent:/bin/false\nhacluster:x:106:109::/var/lib/heartbeat:/usr/sbin/nologin\n",
        0o644,
    );
    sys.add_file("/etc/group", "root:x:0:\nmysql:x:108:\nhaclient:x:109:\n", 0o644);
    sys.add_file("/etc/shadow", "root:*:19000:0:99999:7:::\nhacluster:!:19000::::::\n", 0o640);
    sys.add_file("/etc/hosts", "127.0.0.1 localhost\n", 0o644);
    sys.add_file("/etc/corosync/corosync.conf", corosync_conf("debian"), 0o644);
    for dev in ["/sys/block/sda/dev", "/sys/block/sda/sda1/dev", "/sys/block/sdb/dev", "/sys/block/sdc/dev"] {
        sys.add_file(dev, "8:0\n", 0o444);
    }
    sys.add_file("/dev/disk/azure/scsi1/lun0", "", 0o660);
    sys.add_file("/dev/disk/azure/resource", "", 0o660);
    sys.add_file(SBD_DISK, "", 0o660);
    sys.add_file("/proc/self/mountinfo", mountinfo(&sys), 0o444);
    sys.add_file("/proc/sys/net/ipv4/tcp_timestamps", "1\n", 0o644);
    sys.add_file("/run/udev/control", "", 0o600); // udevd runs
    sys.open_port(IpAddr::V4(peer.ip), 2224);
    if !node.inv.is_leader() {
        set(&sys, "peer.corosync");
        set(&sys, "sbd.header"); // the leader wrote it before it set the cluster up
    }
    // Debian's package starts MariaDB on its local datadir at install.
    set(&sys, "unit.mariadb.enabled");
    set(&sys, "unit.mariadb.active");
    script(&sys, node.inv.platform);
    if node.inv.platform.platform().drbd == DrbdDialect::V9 {
        set(&sys, "drbd.v9");
    }
    script_drbd(&sys, node);
    // `start --no-block pcsd` only queues a job (pcsd waits for pcsd-ruby, as in the lab): pcsd
    // stays inactive until systemd has run the job, which the model does once hainit has seen it
    // queued. Then it answers on 2224; hainit waits for the port.
    let me_ip = node.inv.node.ip;
    sys.on(&["systemctl", "start", "--no-block", "pcsd"], |s, _| {
        set(s, "pcsd.queued");
        Output::ok("")
    });
    sys.on(&["systemctl", "list-jobs"], move |s, _| {
        if !fact(s, "pcsd.queued") {
            return Output::ok("");
        }
        s.facts_remove("pcsd.queued");
        set(s, "unit.pcsd.active");
        s.open_port(IpAddr::V4(me_ip), 2224);
        Output::ok("118 pcsd.service      start waiting\n119 pcsd-ruby.service start running\n")
    });
    sys
}

/// A brand-new leader VM after one full apply.
pub(super) fn converged_leader(node: &Node, cx: &Context) -> FakeSystem {
    let sys = fresh_vm(node);
    set(&sys, "node.leader");
    engine::apply(&steps(cx), cx, &sys).unwrap();
    sys
}

pub(super) fn arg(cmd: &Cmd, i: usize) -> String {
    cmd.argv_redacted().get(i).cloned().unwrap_or_default()
}

/// The data disk and DRBD: partitioning, the module, metadata, the resource's state (8.4's
/// /proc/drbd, 9's `drbdsetup status --json`), generations, and the filesystem it carries.
fn script_drbd(sys: &FakeSystem, node: &Node) {
    let ok = |_: &FakeSystem, _: &Cmd| Output::ok("");
    sys.on(&["readlink", "-e"], |s, c| {
        let path = arg(c, 2);
        let partuuid = s.fact("partuuid").map(|u| format!("/dev/disk/by-partuuid/{u}"));
        match path.as_str() {
            "/dev/disk/azure/scsi1/lun0" => Output::ok("/dev/sdc\n"),
            "/dev/disk/azure/resource" => Output::ok("/dev/sdb\n"),
            SBD_DISK => Output::ok("/dev/sdd\n"),
            p if fact(s, "gpt") && Some(p) == partuuid.as_deref() => Output::ok("/dev/sdc1\n"),
            _ => Output::fail(1, ""),
        }
    });
    sys.on(&["blkid", "-p"], |s, c| {
        let dev = arg(c, 4);
        let uuid = s.fact("partuuid").unwrap_or_default();
        let partition = dev == "/dev/sdc1" || dev == format!("/dev/disk/by-partuuid/{uuid}");
        // The backing partition shows the filesystem DRBD carries at its start.
        let carried = if fact(s, "fs") { "TYPE=ext4\nUSAGE=filesystem\n" } else { "" };
        let text = match dev.as_str() {
            "/dev/sdc" if fact(s, "gpt") => "PTTYPE=gpt\n".to_string(),
            _ if partition && fact(s, "gpt") => format!(
                "{carried}PART_ENTRY_SCHEME=gpt\nPART_ENTRY_NAME=hainit-wpcluster\nPART_ENTRY_UUID={uuid}\n\
                 PART_ENTRY_NUMBER=1\n"
            ),
            "/dev/drbd0" => carried.to_string(),
            _ => String::new(),
        };
        if text.is_empty() {
            Output::fail(2, "")
        } else {
            Output::ok(text)
        }
    });
    sys.on(&["sgdisk"], |s, c| {
        let argv = c.argv_redacted();
        if let Some(uuid) = argv.iter().find_map(|a| a.strip_prefix("--partition-guid=1:")) {
            s.set_fact("partuuid", uuid);
        }
        set(s, "gpt");
        s.add_file("/sys/block/sdc/sdc1/dev", "8:33\n", 0o444);
        Output::ok("The operation has completed successfully.\n")
    });
    sys.on(&["udevadm", "settle"], ok);
    sys.on(&["blockdev", "--flushbufs"], ok);
    sys.on(&["modprobe", "drbd"], |s, _| {
        refresh_drbd(s);
        Output::ok("")
    });
    sys.on(&["drbdadm", "dump-md"], |s, _| {
        if fact(s, "md") {
            Output::ok("version \"v08\";\n")
        } else {
            Output::fail(255, "No valid meta data found")
        }
    });
    sys.on(&["drbdadm", "create-md"], |s, _| {
        set(s, "md");
        Output::ok("New drbd meta data block successfully created.\n")
    });
    sys.on(&["drbdadm", "up"], |s, _| {
        set(s, "drbd.up");
        refresh_drbd(s);
        Output::ok("")
    });
    sys.on(&["drbdadm", "new-current-uuid"], |s, _| {
        set(s, "drbd.uptodate");
        refresh_drbd(s);
        Output::ok("")
    });
    sys.on(&["drbdadm", "disconnect"], |s, _| {
        set(s, "drbd.standalone");
        refresh_drbd(s);
        Output::ok("")
    });
    // A fresh handshake: the peer's disk state as it is.
    for reconnect in ["connect", "adjust"] {
        sys.on(&["drbdadm", reconnect], |s, _| {
            s.facts_remove("drbd.standalone");
            s.facts_remove("drbd.stale_peer");
            refresh_drbd(s);
            Output::ok("")
        });
    }
    sys.on(&["drbdadm", "primary"], |s, _| {
        set(s, "drbd.primary");
        refresh_drbd(s);
        Output::ok("")
    });
    sys.on(&["drbdadm", "secondary"], |s, _| {
        s.facts_remove("drbd.primary");
        refresh_drbd(s);
        Output::ok("")
    });
    // DRBD 9 (EL): the same model as drbdsetup prints it; exit 10 while the resource is down.
    let me = node.inv.node.name.clone();
    let peer = node.inv.peer().map(|p| (p.name.clone(), p.ip.to_string())).unwrap_or_default();
    sys.on(&["drbdsetup", "status"], move |s, _| {
        if !fact(s, "drbd.up") {
            return Output {
                code: Some(10),
                stdout: "[\n]\n\n".into(),
                stderr: "wpcluster: No such resource\n".into(),
            };
        }
        Output::ok(status_json(s, &me, (&peer.0, &peer.1)))
    });
    // create-md's generation until the skipped sync gives the pair its first.
    sys.on(&["drbdadm", "get-gi"], |s, _| {
        if !fact(s, "drbd.up") {
            return Output::fail(1, "Device has no disk\n");
        }
        let current = if fact(s, "drbd.uptodate") { "8A3F0C2E1B4D5A66" } else { "0000000000000004" };
        Output::ok(format!("{current}:0000000000000000:0000000000000000:0000000000000000:1:1:0:1:0:0:0\n"))
    });
    for mkfs in ["mkfs.ext4", "mkfs.xfs"] {
        sys.on(&[mkfs], |s, _| {
            set(s, "fs");
            Output::ok("")
        });
    }
}

/// The effects of the commands the db role runs.
fn script(sys: &FakeSystem, os: OsId) {
    let ok = |_: &FakeSystem, _: &Cmd| Output::ok("");
    // Every package asked is installed (the packages step is the web tests' subject).
    let asked = |c: &Cmd| c.argv_redacted().into_iter().skip(3).collect::<Vec<_>>();
    sys.on(&["dpkg-query"], move |_, c| Output::ok(asked(c).iter().map(|p| format!("{p} ii \n")).collect::<String>()));
    sys.on(&["rpm", "-q"], move |_, c| Output::ok(asked(c).iter().map(|p| format!("{p}\n")).collect::<String>()));
    sys.on(&["sysctl"], |s, _| {
        s.add_file("/proc/sys/net/ipv4/tcp_timestamps", "0\n", 0o644);
        Output::ok("")
    });
    // SBD (db.stonith: sbd): a header once `sbd create` ran (on either node: the disk is shared).
    sys.on(&["sbd"], |s, c| {
        let argv = c.argv_redacted();
        match argv.last().map(String::as_str) {
            Some("dump") if fact(s, "sbd.header") => Output::ok(
                "==Dumping header on disk\nTimeout (watchdog) : 30\nTimeout (msgwait)  : 60\n==Header is dumped\n",
            ),
            Some("dump") => Output::fail(1, "== disk unreadable!\nsbd failed; please check the logs.\n"),
            Some("create") => {
                set(s, "sbd.header");
                Output::ok("Device is initialized.\n")
            }
            _ => panic!("unmodelled {argv:?}"),
        }
    });
    // Pacemaker's fencer: pid 1000, or 1001 once pacemakerd has started it again after a kill.
    sys.on(&["pidof"], |s, _| match s.fact("fencer.pid") {
        Some(pid) => Output::ok(format!("{pid}\n")),
        None => Output::fail(1, ""),
    });
    sys.on(&["journalctl"], |s, c| {
        let blind =
            fact(s, "fencer.blind") && arg(c, 4) == format!("_PID={}", s.fact("fencer.pid").unwrap_or_default());
        Output::ok(if blind {
            "Could not connect to the CIB manager: Transport endpoint is not connected (-107)\n"
        } else {
            ""
        })
    });
    sys.on(&["kill"], |s, _| {
        s.facts_remove("fencer.blind");
        s.set_fact("fencer.pid", "1001");
        Output::ok("")
    });
    sys.on(&["modprobe", "softdog"], |s, _| {
        s.add_file("/dev/watchdog", "", 0o600);
        Output::ok("")
    });
    sys.on(&["mount"], |s, _| {
        set(s, "mounted");
        s.add_file("/proc/self/mountinfo", mountinfo(s), 0o444);
        Output::ok("")
    });
    sys.on(&["umount"], |s, _| {
        s.facts_remove("mounted");
        s.add_file("/proc/self/mountinfo", mountinfo(s), 0o444);
        Output::ok("")
    });
    sys.on(&["rmdir"], ok);
    sys.on(&["restorecon"], ok);
    sys.on(&["firewall-cmd"], |s, c| {
        let last = c.argv_redacted().last().cloned().unwrap_or_default();
        if last == "--state" {
            return Output::ok("running\n");
        }
        let scope = if c.argv_redacted().contains(&"--permanent".to_string()) { "p" } else { "r" };
        if let Some(rule) = last.strip_prefix("--query-") {
            return Output::ok(if fact(s, &format!("fw.{scope}.{rule}")) { "yes\n" } else { "no\n" });
        }
        if let Some(rule) = last.strip_prefix("--add-") {
            set(s, &format!("fw.{scope}.{rule}"));
        }
        Output::ok("success\n")
    });
    sys.on(&["chown"], ok);
    let install_db = os.platform().db.mysql_install_db;
    sys.on(&[install_db], |s, c| {
        let argv = c.argv_redacted();
        let datadir = argv.iter().find_map(|a| a.strip_prefix("--datadir=")).expect("install-db --datadir");
        s.add_file(&format!("{datadir}/mysql/db.MAD"), "", 0o660);
        s.add_file(&format!("{datadir}/ibdata1"), "", 0o660);
        Output::ok("")
    });
    // The datadir's way from the seed to the mount point: `cp -a -T SEED STAGE`, then
    // `cp -a -l --remove-destination STAGE/. MP/`; `rm -rf` of either.
    sys.on(&["cp", "-a"], |s, c| {
        let argv = c.argv_redacted();
        let (from, to) = (&argv[argv.len() - 2], &argv[argv.len() - 1]);
        s.copy_tree(from.trim_end_matches("/."), to);
        Output::ok("")
    });
    sys.on(&["rm", "-rf"], |s, c| {
        s.remove_tree(&arg(c, 2));
        Output::ok("")
    });
    sys.on(&["chcon"], ok);
    sys.on(&["sync"], ok);
    sys.on(&["systemctl"], |s, c| {
        let argv = c.argv_redacted();
        let unit = argv.last().cloned().unwrap_or_default();
        let key = |k: &str| format!("unit.{unit}.{k}");
        match argv[1].as_str() {
            "enable" => {
                // Every unit named: `systemctl enable pcsd corosync pacemaker` (db.cluster.boot).
                for unit in argv[2..].iter().filter(|a| !a.starts_with("--")) {
                    set(s, &format!("unit.{unit}.enabled"));
                }
                if argv.contains(&"--now".to_string()) {
                    set(s, &key("active"));
                }
            }
            "disable" => s.facts_remove(&key("enabled")),
            "start" => set(s, &key("active")),
            "stop" => s.facts_remove(&key("active")),
            other => panic!("unmodelled systemctl {other}"),
        }
        Output::ok("")
    });
    sys.on(&["systemctl", "show"], |s, c| Output::ok(unit_show(s, &arg(c, 8))));
    // MariaDB: the root client file works once the secure script ran; a fresh server lets root in
    // over the socket.
    sys.on(&["mysql"], |s, c| {
        let fresh = c.argv_redacted().contains(&"--no-defaults".to_string());
        let input = c.stdin_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        if !fact(s, "unit.mariadb.active") {
            return Output::fail(1, "ERROR 2002 (HY000): Can't connect to local server through socket");
        }
        if input.contains("SET PASSWORD") {
            set(s, "mysql.secured");
            return Output::ok("");
        }
        match (fresh, fact(s, "mysql.secured")) {
            (true, _) => Output::ok("1\n"),
            (false, true) => Output::ok("0\t0\t0\t1\t1\t1\n"),
            (false, false) => Output::fail(1, "ERROR 1045 (28000): Access denied for user 'root'@'localhost'"),
        }
    });
    sys.on(&["chpasswd"], |s, _| {
        set(s, "hacluster.pw");
        Output::ok("")
    });
    let python = os.platform().db.python;
    sys.on(&[python], |s, _| if fact(s, "hacluster.pw") { Output::ok("") } else { Output::fail(1, "") });
    sys.on(&["pcs", "cluster", "corosync"], |s, _| {
        if !fact(s, "pcs.authed") {
            return Output::fail(
                1,
                "Error: Unable to authenticate to db-x - (HTTP error: 401), try running 'pcs host auth db-x'\n",
            );
        }
        Output::ok(corosync_conf(if fact(s, "peer.corosync") { "wpcluster" } else { "debian" }))
    });
    for auth in [&["pcs", "host", "auth"][..], &["pcs", "cluster", "auth"]] {
        sys.on(auth, |s, c| {
            assert!(c.stdin_bytes().is_some(), "pcs auth reads the password from stdin");
            // Like pcs 0.11 on Debian (seen in the lab): with a foreign corosync.conf the tokens go
            // to that "cluster's" nodes and are not saved here, yet pcs says Authorized.
            let conf = s.read_string("/etc/corosync/corosync.conf").unwrap().unwrap_or_default();
            if conf.is_empty() || conf.contains("cluster_name: wpcluster") {
                set(s, "pcs.authed");
                let file = if c.args_exposed()[0] == "host" { "known-hosts" } else { "tokens" };
                s.add_file(&format!("/var/lib/pcsd/{file}"), r#"{"db-a": {}, "db-b": {}}"#, 0o600);
            }
            Output::ok("db-a: Authorized\ndb-b: Authorized\n")
        });
    }
    sys.on(&["mv", "-f", "/etc/corosync/corosync.conf"], |s, c| {
        let to = c.args_exposed().last().unwrap().to_string();
        let text = s.read_string("/etc/corosync/corosync.conf").unwrap().unwrap();
        s.remove("/etc/corosync/corosync.conf");
        s.add_file(&to, text, 0o644);
        Output::ok("")
    });
    sys.on(&["pcs", "cluster", "setup"], |s, c| {
        // Local setup only (`--local` / `--corosync_conf`): a networked one destroys the cluster
        // on the peer over pcsd first. 0.10+ refuses to overwrite a file.
        let argv = c.args_exposed().join(" ");
        assert!(argv.contains("--local") || argv.contains("--corosync_conf"), "setup contacts no node: {argv}");
        if argv.contains("--corosync_conf") && s.read_string("/etc/corosync/corosync.conf").unwrap().is_some() {
            return Output::fail(1, "Error: Corosync configuration file '/etc/corosync/corosync.conf' already exists");
        }
        s.add_file("/etc/corosync/corosync.conf", corosync_conf("wpcluster"), 0o644);
        // The follower then fetches it from here.
        set(s, "peer.corosync");
        Output::ok("")
    });
    sys.on(&["corosync-cmapctl"], |s, _| {
        let name = s.read_string("/etc/corosync/corosync.conf").unwrap().unwrap_or_default();
        let ours = name.contains("cluster_name: wpcluster");
        Output::ok(format!("totem.cluster_name (str) = {}\n", if ours { "wpcluster" } else { "debian" }))
    });
    sys.on(&["systemctl", "start", "corosync", "pacemaker"], move |s, _| {
        if s.read_string("/etc/corosync/authkey").unwrap().is_none() {
            return Output::fail(1, "corosync: Could not open /etc/corosync/authkey: No such file or directory");
        }
        set(s, "unit.corosync.active");
        set(s, "unit.pacemaker.active");
        set(s, "pacemaker.starting");
        if s.read(CIB).unwrap().is_none() {
            s.add_file(CIB, new_cluster_cib(os), 0o600);
        }
        if fact(s, "unit.sbd.enabled") {
            // corosync requires sbd (RequiredBy=corosync.service) and starts it first.
            set(s, "unit.sbd.active");
        }
        if fact(s, "peer.corosync") && s.fact("node.leader").is_none() {
            // The follower joins a cluster whose leader pushes the stack.
            set(s, "cib.pushed");
        }
        Output::ok("")
    });
    sys.on(&["crm_mon"], |s, _| crm_mon(s));
    sys.on(&["pacemakerd", "--version"], move |_, _| Output::ok(format!("Pacemaker {}\n", os.platform().pacemaker)));
    sys.on(&["cibadmin", "--query"], |s, _| {
        if !pacemaker_runs(s) {
            return Output::fail(102, "Could not connect to the CIB: Transport endpoint is not connected\n");
        }
        Output::ok(s.read_string(CIB).unwrap().unwrap())
    });
    // Registered after the whole query: later handlers win.
    sys.on(&["cibadmin", "--query", "--scope", "constraints"], |s, _| Output::ok(constraints(s)));
    // An XPath delete matches the whole element; no match is exit 0 (as with the real cibadmin).
    sys.on(&["cibadmin", "--delete", "--xpath"], |s, c| {
        if let Some(node) = s.fact("fence.constraint") {
            if exact_xpath(&fence_constraint(&node)) == arg(c, 3) {
                s.facts_remove("fence.constraint");
            }
        }
        Output::ok("")
    });
    sys.on(&["cibadmin", "--patch", "--xml-file", "/run/hainit/cib.patch"], |s, _| {
        let patch = s.read_string("/run/hainit/cib.patch").unwrap().expect("the patch is written first");
        apply_patch(s, &patch)
    });
    // The fence agent's list through the fencer: the resource group's VMs (fence_azure_arm), the
    // nodes with a slot on the SBD disk (fence_sbd).
    // A fencer blind to the CIB knows no device.
    sys.on(&["stonith_admin", "--list-targets"], |s, c| match arg(c, 2).as_str() {
        _ if fact(s, "fencer.blind") => Output::fail(105, "Couldn't list targets: No such device\n"),
        "fence_azure" => Output::ok("vm-db-a\nvm-db-b\nvm-web-1\n"),
        "fence_sbd" => Output::ok("db-a\ndb-b\n"),
        other => Output::fail(105, format!("Couldn't list targets: No such device ({other})\n")),
    });
}

pub(super) fn steps(cx: &Context) -> Vec<Box<dyn Step>> {
    roles::steps(cx)
}

const OSES: [OsId; 3] = [OsId::Centos7, OsId::El9, OsId::Debian12];

/// Brand-new VMs as deploy-azure.sh makes them: a managed identity, so fence_azure_arm fences.
#[test]
fn golden_plans_of_brand_new_vms() {
    for os in OSES {
        for leader in [true, false] {
            let node = Node::new(os, leader, "\n");
            let cx = node.cx(Options { managed_identity: true, ..Options::default() });
            let sys = fresh_vm(&node);
            roles::validate(&cx, &sys).unwrap();
            let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
            let name = format!("{}-{}", os, if leader { "leader" } else { "follower" });
            assert_golden(&format!("plan-db/{name}.txt"), &plan.to_text());
            assert_golden(&format!("plan-db/{name}.json"), &format!("{:#}\n", plan.to_json()));
        }
    }
}

/// The fast timing profile (docs/failover.md): its corosync token and cluster configuration in the
/// leader's plan; refused (exit 2) where azure-events-az is not proven.
#[test]
fn golden_plan_of_the_fast_timing_profile() {
    let yaml = "db:\n  timing_profile: fast\n";
    let node = Node::new(OsId::Debian12, true, yaml);
    let cx = node.cx(Options { managed_identity: true, ..Options::default() });
    let sys = fresh_vm(&node);
    roles::validate(&cx, &sys).unwrap();
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    assert_golden("plan-db/debian12-leader-fast.txt", &plan.to_text());
    assert_golden("plan-db/debian12-leader-fast.json", &format!("{:#}\n", plan.to_json()));
    for os in [OsId::Centos7, OsId::El9] {
        let node = Node::new(os, true, yaml);
        let cx = node.cx(Options { managed_identity: true, ..Options::default() });
        let e = roles::validate(&cx, &fresh_vm(&node)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input, "{os}: {e}");
        assert!(e.to_string().contains("db.timing_profile fast needs ocf:heartbeat:azure-events-az"), "{os}: {e}");
    }
    let node = Node::new(OsId::Debian12, true, "db:\n  token_ms: 500\n");
    let e = roles::validate(&node.cx(Options { managed_identity: true, ..Options::default() }), &fresh_vm(&node))
        .unwrap_err();
    assert!(e.to_string().contains("db.token_ms 500 must be between 1000 and 60000"), "{e}");
}

/// Apply on a fresh VM converges; plan is then empty and a second apply changes nothing.
#[test]
fn apply_converges_and_a_second_run_changes_nothing() {
    for os in OSES {
        for leader in [true, false] {
            let node = Node::new(os, leader, "\n");
            let cx = node.cx(Options::default());
            let sys = fresh_vm(&node);
            if leader {
                set(&sys, "node.leader");
            }
            let first = engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os} leader={leader}: {e}"));
            assert!(first.iter().any(|(_, o)| *o != Outcome::Converged));
            // Enabling at boot (a systemd reload each call) waits until the cluster serves MariaDB.
            let first_run: Vec<String> = sys.commands().iter().map(|c| c.join(" ")).collect();
            let enables: Vec<&String> = first_run.iter().filter(|c| c.starts_with("systemctl enable")).collect();
            assert_eq!(enables, ["systemctl enable pcsd corosync pacemaker"], "{os} leader={leader}");
            let last = |prefix: &str| first_run.iter().rposition(|c| c.starts_with(prefix));
            assert!(last("systemctl enable") > last("crm_mon"), "{os} leader={leader}: {first_run:#?}");
            assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{os} leader={leader}");
            let second = engine::apply(&steps(&cx), &cx, &sys).unwrap();
            assert!(second.iter().all(|(_, o)| *o == Outcome::Converged), "{os} leader={leader}: {second:?}");
            let ran = sys.commands();
            let leader_only = ran.iter().any(|c| c.join(" ").contains("new-current-uuid"));
            assert_eq!(leader_only, leader, "only the leader skips the initial sync");
            assert_eq!(ran.iter().any(|c| c.join(" ").contains("cluster setup")), leader, "only the leader sets up");
            assert!(!ran.iter().any(|c| c.join(" ").contains("primary --force")), "nobody forces primary");
            // A node with no pcsd token yet authenticates before asking the peer anything.
            let first_pcs = ran.iter().find(|c| c[0] == "pcs").map(|c| c.join(" ")).unwrap_or_default();
            assert!(first_pcs.contains(" auth "), "{os} leader={leader}: first pcs run is {first_pcs}");
        }
    }
}

/// Design rule 5: a run killed after any action is converged by the next run.
#[test]
fn a_run_killed_after_any_action_is_converged_by_the_next_run() {
    for os in [OsId::Debian12, OsId::El9] {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let total = {
            let sys = fresh_vm(&node);
            set(&sys, "node.leader");
            let before = sys.commands().len();
            engine::apply(&steps(&cx), &cx, &sys).unwrap();
            sys.commands().len() - before
        };
        for n in 0..total {
            let sys = fresh_vm(&node);
            set(&sys, "node.leader");
            if engine::apply(&steps(&cx), &cx, &DiesAfter::new(&sys, n)).is_ok() {
                continue; // fewer actions than queries: the run finished before the kill
            }
            engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os} killed after {n}: {e}"));
            assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{os} killed after {n}");
        }
    }
}

/// `drbdadm up` killed between its attach and its connect (the lab's crash scenario landed there):
/// the disk is attached, StandAlone, and the peer would never connect. The next run applies the
/// resource's network settings (`drbdadm adjust`) and converges; it never runs `up` again.
#[test]
fn drbd_up_killed_between_attach_and_connect_is_completed() {
    for leader in [true, false] {
        // A peer that never connects is exit 3 after 2 s, not 900.
        let node = Node::new(OsId::Debian12, leader, "db:\n  peer_timeout_secs: 2\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        if leader {
            set(&sys, "node.leader");
        }
        sys.on(&["drbdadm", "up"], |s, _| {
            s.add_file(
                "/proc/drbd",
                "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:StandAlone ro:Secondary/Unknown ds:Inconsistent/DUnknown   r----s\n",
                0o444,
            );
            Output::fail(137, "Killed\n")
        });
        sys.on(&["drbdadm", "adjust"], |s, _| {
            set(s, "drbd.up");
            refresh_drbd(s);
            Output::ok("")
        });
        engine::apply(&steps(&cx), &cx, &sys).expect_err("the killed up fails the run");
        engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("leader={leader}: {e}"));
        let ups = sys.commands().iter().filter(|c| c.starts_with(&["drbdadm".to_string(), "up".to_string()])).count();
        let adjusts =
            sys.commands().iter().filter(|c| c.starts_with(&["drbdadm".to_string(), "adjust".to_string()])).count();
        assert_eq!((ups, adjusts), (1, 1), "leader={leader}");
        assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "leader={leader}");
    }
}

/// The lab's …-047b: the new UUID raced with a state packet of the peer's, and the leader kept
/// seeing its peer Inconsistent (connected, no resync) while the peer was UpToDate. The packet
/// may land after any check, so the leader connects again after the new UUID whatever it sees,
/// before it promotes, on every OS.
#[test]
fn the_leader_connects_again_after_skipping_the_initial_sync() {
    for os in OSES {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        set(&sys, "node.leader");
        // The view is right at first; the stale packet lands when the leader promotes, unless
        // the connection it travelled on was dropped.
        sys.on(&["drbdadm", "new-current-uuid"], |s, _| {
            set(s, "drbd.uptodate");
            set(s, "drbd.packet_in_flight");
            refresh_drbd(s);
            Output::ok("")
        });
        sys.on(&["drbdadm", "disconnect"], |s, _| {
            s.facts_remove("drbd.packet_in_flight");
            set(s, "drbd.standalone");
            refresh_drbd(s);
            Output::ok("")
        });
        sys.on(&["drbdadm", "primary"], |s, _| {
            if fact(s, "drbd.packet_in_flight") {
                set(s, "drbd.stale_peer");
            }
            set(s, "drbd.primary");
            refresh_drbd(s);
            Output::ok("")
        });
        engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os}: {e}"));
        let ran: Vec<String> = sys.commands().iter().map(|c| c.join(" ")).collect();
        let at = |prefix: &str| {
            ran.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("{os}: no {prefix}"))
        };
        let (uuid, primary) = (at("drbdadm new-current-uuid"), at("drbdadm primary"));
        assert!(uuid < at("drbdadm disconnect") && at("drbdadm disconnect") < at("drbdadm connect"), "{os}: {ran:#?}");
        assert!(at("drbdadm connect") < primary, "{os}: {ran:#?}");
        assert!(!fact(&sys, "drbd.stale_peer"), "{os}");
    }
}

/// A run killed between the new UUID and the re-handshake, with the stale view: the next run does
/// not skip the sync again (the bitmap is clear, the disk UpToDate) but connects again before it
/// promotes. Without that, the pair would stay UpToDate/Inconsistent with nothing to resync.
#[test]
fn a_stale_view_of_the_peer_left_by_a_killed_run_is_renewed_before_promoting() {
    for os in [OsId::Debian12, OsId::El9] {
        let node = Node::new(os, true, "db:\n  peer_timeout_secs: 2\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        set(&sys, "node.leader");
        sys.on(&["drbdadm", "new-current-uuid"], |s, _| {
            set(s, "drbd.uptodate");
            set(s, "drbd.stale_peer");
            refresh_drbd(s);
            Output::fail(137, "Killed\n")
        });
        engine::apply(&steps(&cx), &cx, &sys).expect_err("the killed run fails");
        assert!(fact(&sys, "drbd.stale_peer"));
        let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
        let agree = plan.steps.iter().find(|s| s.name == "db.drbd.agree").unwrap();
        assert_eq!(agree.actions.len(), 3, "{os}: {}", plan.to_text());
        let before = sys.commands().len();
        engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os}: {e}"));
        let ran: Vec<String> = sys.commands()[before..].iter().map(|c| c.join(" ")).collect();
        assert!(!ran.iter().any(|c| c.contains("new-current-uuid")), "{os}: skipped twice: {ran:#?}");
        let at = |prefix: &str| {
            ran.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("{os}: no {prefix}"))
        };
        assert!(at("drbdadm connect") < at("drbdadm primary"), "{os}: {ran:#?}");
        assert!(!fact(&sys, "drbd.stale_peer"), "{os}");
        assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{os}");
    }
}

/// mariadb-install-db killed halfway (hainit killed, power cut) has written part of `mysql/`:
/// the next run starts the datadir over. Taken for initialised, it would be a MariaDB without
/// its system tables on the DRBD filesystem.
#[test]
fn a_half_written_datadir_is_started_over() {
    for os in OSES {
        let node = Node::new(os, true, "\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        set(&sys, "node.leader");
        // The first install is killed after its first table; the next one completes.
        sys.on(&[os.platform().db.mysql_install_db], |s, c| {
            let argv = c.argv_redacted();
            let datadir = argv.iter().find_map(|a| a.strip_prefix("--datadir=")).expect("install-db --datadir");
            s.add_file(&format!("{datadir}/mysql/db.MAD"), "", 0o660);
            if !fact(s, "install.killed") {
                set(s, "install.killed");
                return Output::fail(137, "Killed\n");
            }
            s.add_file(&format!("{datadir}/mysql/user.MAD"), "", 0o660);
            Output::ok("")
        });
        engine::apply(&steps(&cx), &cx, &sys).expect_err("the killed install fails the run");
        engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os}: {e}"));
        let mp = &cx.config.db.mount_point;
        assert!(
            sys.meta(&format!("{mp}/mysql/user.MAD")).unwrap().is_some(),
            "{os}: the datadir was left half-written"
        );
        assert!(sys.meta(&datadir_stage(&cx)).unwrap().is_none(), "{os}: the stage stayed");
        assert!(sys.meta(DATADIR_SEED).unwrap().is_none(), "{os}: the seed stayed");
        assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{os}");
    }
}

/// Once the CIB holds the stack, a re-run (e.g. at boot while the peer is down) touches nothing
/// of DRBD, the mount or MariaDB and waits for nothing of the peer's.
#[test]
fn a_node_the_cluster_owns_is_left_alone() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = converged_leader(&node, &cx);
    // Reboot: DRBD down, pacemaker not yet running, the peer gone.
    for k in ["drbd.up", "drbd.primary", "unit.pacemaker.active", "unit.corosync.active", "mounted"] {
        sys.facts_remove(k);
    }
    refresh_drbd(&sys);
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    for s in &plan.steps {
        let touches = s.actions.iter().any(|a| {
            let d = a.describe();
            d.contains("drbdadm") || d.contains("mount") || d.contains("mkfs") || d.contains("DRBD peer")
        });
        assert!(!touches, "{} acts on a node the cluster owns: {:?}", s.name, s.actions);
    }
}

/// The converged leader rebooted (fenced, a power cut) before DRBD is attached: `/proc/drbd`
/// as given, `drbdadm dump-md` answering `dump_md`, and the partition showing the ext4 that DRBD
/// carries.
pub(super) fn rebooted_over_ext4(node: &Node, cx: &Context, proc_drbd: &str, dump_md: Output) -> FakeSystem {
    let sys = converged_leader(node, cx);
    for k in ["drbd.up", "drbd.primary", "mounted"] {
        sys.facts_remove(k);
    }
    sys.add_file("/proc/drbd", proc_drbd, 0o444);
    sys.reply(&["drbdadm", "dump-md"], dump_md);
    sys
}

/// What `db.drbd.metadata` plans on `sys`, or the refusal.
pub(super) fn metadata_actions(cx: &Context, sys: &FakeSystem) -> hainit::error::Result<Vec<hainit::plan::Action>> {
    let plan = engine::plan(&steps(cx), cx, sys)?;
    Ok(plan.steps.into_iter().find(|s| s.name == "db.drbd.metadata").unwrap().actions)
}

/// Rebooted (here after being fenced) while Pacemaker brings DRBD up: the minor is configured
/// but not attached yet, dump-md refuses a configured minor and the partition shows the
/// filesystem DRBD carries. Nothing is refused or created: the cluster owns DRBD.
#[test]
fn a_node_whose_drbd_pacemaker_is_attaching_is_not_refused() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = rebooted_over_ext4(
        &node,
        &cx,
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Secondary/Unknown ds:Diskless/DUnknown C r-----\n",
        Output::fail(20, "Device '0' is configured!\n"),
    );
    let actions = metadata_actions(&cx, &sys).unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(actions.is_empty(), "{actions:?}");
    // The judge can fail: on a node the cluster does not own, dump-md's failure to read a
    // configured minor is an error that says so, not "foreign data" nor an invitation to wipe.
    sys.remove(CIB);
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("dump-md") && msg.contains("is configured") && !msg.contains("wipe"), "{msg}");
}

/// Rebooted after a fence or a power cut, before Pacemaker configures DRBD: dump-md calls the
/// metadata "unclean" (its activity log was not applied; the lab's words, judged against the real
/// drbdmeta in drbd.rs) and the partition shows the filesystem DRBD carries. That is metadata, on
/// a node the cluster owns or not: nothing is refused or created.
#[test]
fn unclean_metadata_after_a_reset_is_metadata() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = rebooted_over_ext4(
        &node,
        &cx,
        "version: 8.4.11 (api:1/proto:86-101)\n",
        Output::fail(1, "Found meta data is \"unclean\", please apply-al first\n"),
    );
    for owned in [true, false] {
        if !owned {
            sys.remove(CIB);
        }
        let actions = metadata_actions(&cx, &sys).unwrap_or_else(|e| panic!("owned {owned}: refused: {e}"));
        assert!(actions.is_empty(), "owned {owned}: {actions:?}");
    }
    // The judge can fail: any other dump-md failure over a filesystem is still refused.
    sys.on(&["drbdadm", "dump-md"], |_, _| Output::fail(255, "No valid meta data found\n"));
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("TYPE=ext4"), "{e}");
}

/// A replaced leader (blank disk, peer holding the data and the cluster) joins as secondary:
/// no skipped sync, no primary, no mkfs, no setup; corosync.conf comes from the peer.
#[test]
fn a_replaced_leader_rejoins_without_forcing_anything() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "peer.corosync");
    // The peer is Primary and UpToDate: after `up` this node is the sync target.
    sys.on(&["drbdadm", "up"], |s, _| {
        set(s, "drbd.up");
        s.add_file(
            "/proc/drbd",
            "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n",
            0o444,
        );
        Output::ok("")
    });
    let stack = owned_cib(&cx);
    sys.on(&["systemctl", "start", "corosync", "pacemaker"], move |s, _| {
        if s.read_string("/etc/corosync/authkey").unwrap().is_none() {
            return Output::fail(1, "corosync: Could not open /etc/corosync/authkey: No such file or directory");
        }
        set(s, "unit.corosync.active");
        set(s, "unit.pacemaker.active");
        set(s, "cib.pushed");
        s.add_file(CIB, stack.clone(), 0o600);
        Output::ok("")
    });
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    let ran: Vec<String> = sys.commands().iter().map(|c| c.join(" ")).collect();
    for forbidden in
        ["new-current-uuid", "drbdadm primary", "mkfs", "cluster setup", "mariadb-install-db", "cibadmin --patch"]
    {
        assert!(!ran.iter().any(|c| c.contains(forbidden)), "replaced leader ran {forbidden}: {ran:#?}");
    }
    let conf = sys.read_string("/etc/corosync/corosync.conf").unwrap().unwrap();
    assert!(conf.contains("cluster_name: wpcluster"));
}

/// A token the peer no longer accepts (the peer was replaced since): the node asks, is refused,
/// authenticates again and joins; a node without a token authenticates without asking first.
#[test]
fn a_stale_pcsd_token_is_refused_then_renewed() {
    let node = Node::new(OsId::Debian12, false, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "peer.corosync");
    sys.add_file("/var/lib/pcsd/known-hosts", r#"{"known_hosts": {"db-a": {}, "db-b": {}}}"#, 0o600);
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    let pcs: Vec<String> = sys.commands().iter().filter(|c| c[0] == "pcs").map(|c| c[..3].join(" ")).collect();
    assert_eq!(pcs[..3], ["pcs cluster corosync", "pcs host auth", "pcs cluster corosync"], "{pcs:#?}");
    let conf = sys.read_string("/etc/corosync/corosync.conf").unwrap().unwrap();
    assert!(conf.contains("cluster_name: wpcluster"), "{conf}");
}

/// A replaced node's DRBD fence constraint, which its unfence handler could not remove (the resync
/// ended before Pacemaker ran here, or the controller did not answer in time: both seen in the
/// lab's repair scenario), would keep it from ever being promoted. hainit removes it once both
/// disks are UpToDate: at once when the resync has ended, else after waiting for its end (here
/// it ends after the third look); a resync that outlasts `db.cluster_timeout_secs` is exit 3
/// with the constraint left for the handler or the next run.
#[test]
fn a_replaced_node_drops_the_fence_constraint_its_handler_could_not() {
    for (synced, ends) in [(true, true), (false, true), (false, false)] {
        let node = Node::new(OsId::Debian12, true, "db:\n  cluster_timeout_secs: 3\n");
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        set(&sys, "peer.corosync");
        sys.set_fact("fence.constraint", "db-b");
        const IN_SYNC: &str = " 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n";
        let proc =
            if synced { IN_SYNC } else { " 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n" };
        sys.on(&["drbdadm", "up"], move |s, _| {
            set(s, "drbd.up");
            s.add_file("/proc/drbd", format!("version: 8.4.11 (api:1/proto:86-101)\n{proc}"), 0o444);
            Output::ok("")
        });
        let stack = owned_cib(&cx);
        sys.on(&["systemctl", "start", "corosync", "pacemaker"], move |s, _| {
            set(s, "unit.corosync.active");
            set(s, "unit.pacemaker.active");
            set(s, "cib.pushed");
            s.add_file(CIB, stack.clone(), 0o600);
            Output::ok("")
        });
        // Each look at the constraints counts; the resync ends after the third (if it ends).
        sys.on(&["cibadmin", "--query", "--scope", "constraints"], move |s, _| {
            let looks = s.fact("looks").map_or(0, |n| n.parse::<u32>().unwrap()) + 1;
            s.set_fact("looks", &looks.to_string());
            if ends && looks >= 3 {
                s.add_file("/proc/drbd", format!("version: 8.4.11 (api:1/proto:86-101)\n{IN_SYNC}"), 0o444);
            }
            Output::ok(constraints(s))
        });
        let result = engine::apply(&steps(&cx), &cx, &sys);
        let case = format!("synced={synced} ends={ends}");
        if ends {
            result.unwrap_or_else(|e| panic!("{case}: {e}"));
        } else {
            let e = result.expect_err(&case);
            assert_eq!(e.kind, ErrorKind::Timeout, "{case}: {e}");
            assert!(e.to_string().contains("resync"), "{case}: {e}");
        }
        assert_eq!(fact(&sys, "fence.constraint"), !ends, "{case}");
        let deletes = sys.commands().iter().filter(|c| c.join(" ").contains("cibadmin --delete")).count();
        assert_eq!(deletes, usize::from(ends), "{case}");
        let looks: u32 = sys.fact("looks").unwrap().parse().unwrap();
        assert!(synced || looks >= 3, "{case}: the resync was not waited for ({looks} looks)");
    }
}

/// The handler put its constraint back for the other node between hainit's read and its delete
/// (the peer was lost again): the delete, which matches the constraint as read, leaves it, and
/// the next look — DRBD no longer in sync — removes nothing.
#[test]
fn unfence_leaves_a_constraint_the_handler_renewed_meanwhile() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = converged_leader(&node, &cx);
    sys.set_fact("fence.constraint", "db-b");
    sys.on(&["cibadmin", "--delete", "--xpath"], |s, c| {
        // First the race: db-b is lost, db-a's handler fences it; then the delete as read.
        s.set_fact("fence.constraint", "db-a");
        set(s, "drbd.standalone");
        refresh_drbd(s);
        if exact_xpath(&fence_constraint("db-a")) == arg(c, 3) {
            s.facts_remove("fence.constraint");
        }
        Output::ok("")
    });
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    let unfence = plan.steps.iter().find(|s| s.name == "db.cluster.unfence").unwrap();
    assert_eq!(unfence.actions.len(), 1, "{:?}", unfence.actions);
    let hainit::plan::Action::Run { cmd, .. } = &unfence.actions[0] else { panic!("{:?}", unfence.actions) };
    assert_eq!(cmd.argv_redacted()[3], exact_xpath(&fence_constraint("db-b")));
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    assert_eq!(sys.fact("fence.constraint").as_deref(), Some("db-a"), "the renewed constraint was removed");
}

/// The resources step on a converged leader: a changed setting is one patch that says what it
/// changes, applied (by the real cibadmin) it converges; the run after plans nothing.
#[test]
fn a_changed_setting_on_a_converged_leader_is_one_patch() {
    for (yaml, change) in [
        ("db:\n  op_timeout_scale: 3\n", "drbd_wpcluster op monitor 29s: timeout 20s → 60s"),
        ("db:\n  probe_port: 62501\n", "lb_probe port: 62500 → 62501"),
    ] {
        let node = Node::new(OsId::Debian12, true, "\n");
        let sys = converged_leader(&node, &node.cx(Options::default()));
        let changed = Node::new(OsId::Debian12, true, yaml);
        let cx = changed.cx(Options::default());
        let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
        let changing: Vec<&str> = plan.steps.iter().filter(|s| !s.actions.is_empty()).map(|s| s.name).collect();
        assert_eq!(changing, ["db.cluster.resources"], "{}", plan.to_text());
        let text = plan.to_text();
        let patch = text.lines().find(|l| l.contains("cibadmin --patch")).unwrap();
        assert!(patch.contains(change) && patch.contains("against CIB 0."), "{patch}");
        if yaml.contains("probe_port") {
            assert!(patch.contains("1 change(s)"), "{patch}");
        }
        engine::apply(&steps(&cx), &cx, &sys).unwrap();
        assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{yaml}");
        let cib = sys.read_string(CIB).unwrap().unwrap();
        let new = change.rsplit(' ').next().unwrap();
        assert!(cib.contains(&format!("\"{new}\"")), "{yaml}: {cib}");
    }
}

/// With fence_azure_arm a node is ready only once the device is started and the agent lists
/// both VMs: a host map that names a VM the resource group does not have (the peer's VM name
/// assumed equal to its host name) is exit 3 naming it; the right map converges.
#[test]
fn a_node_is_ready_only_once_its_fence_device_reaches_both_vms() {
    for (yaml, ok) in [
        ("db:\n  cluster_timeout_secs: 2\n", false),
        ("db:\n  cluster_timeout_secs: 2\n  vm_names:\n    db-b: vm-db-b\n", true),
    ] {
        let node = Node::new(OsId::Debian12, true, yaml);
        let cx = node.cx(Options { managed_identity: true, ..Options::default() });
        let sys = fresh_vm(&node);
        set(&sys, "node.leader");
        let result = engine::apply(&steps(&cx), &cx, &sys);
        if ok {
            result.unwrap();
            let lists = sys.commands().iter().filter(|c| c[0] == "stonith_admin").count();
            assert!(lists >= 1, "{:#?}", sys.commands());
            assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged());
            // A fence device that stops (its monitor failed) makes the node not ready again.
            set(&sys, "fence_azure.stopped");
            let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
            assert!(e.to_string().contains("fence device fence_azure to start"), "{e}");
        } else {
            let e = result.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
            assert!(e.to_string().contains("fence_azure to list db-b"), "{e}");
        }
    }
}

/// A partition table of someone else's: refused; the flag wipes it only while DRBD sees the
/// peer UpToDate, and only when it names this disk.
#[test]
fn a_used_data_disk_is_refused_unless_wiping_is_allowed() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let sys = fresh_vm(&node);
    sys.on(
        &["blkid", "-p"],
        |_, c| {
            if arg(c, 4) == "/dev/sdc" {
                Output::ok("PTTYPE=dos\n")
            } else {
                Output::fail(2, "")
            }
        },
    );
    sys.add_file("/sys/block/sdc/sdc1/dev", "8:33\n", 0o444);
    let cx = node.cx(Options::default());
    let wipe = node.cx(Options { wipe_data_disk: Some("/dev/disk/azure/scsi1/lun0"), ..Options::default() });
    for cx in [&cx, &wipe] {
        let e = engine::plan(&steps(cx), cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Step);
        let msg = e.to_string();
        assert!(
            msg.contains("/dev/disk/azure/scsi1/lun0") && msg.contains("PTTYPE=dos") && msg.contains("sdc1"),
            "{msg}"
        );
        assert!(msg.contains("only copy") && !msg.contains("--wipe-data-disk"), "{msg}");
    }
    sys.add_file(
        "/proc/drbd",
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----\n",
        0o444,
    );
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("pass --wipe-data-disk=/dev/sdc"), "{e}");
    let plan = engine::plan(&steps(&wipe), &wipe, &sys).unwrap();
    let disk = plan.steps.iter().find(|s| s.name == "db.disk.partition").unwrap();
    assert!(disk.actions.iter().any(|a| a.describe().contains("sgdisk --zap-all /dev/sdc")), "{:?}", disk.actions);
    let other = node.cx(Options { wipe_data_disk: Some(SBD_DISK), ..Options::default() });
    let e = engine::plan(&steps(&other), &other, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input, "{e}");
    assert!(e.to_string().contains("/dev/sdd") && e.to_string().contains("not the data disk"), "{e}");
}

#[test]
fn a_mounted_data_disk_is_refused_even_when_wiping() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let sys = fresh_vm(&node);
    sys.add_file("/sys/block/sdc/sdc1/dev", "8:33\n", 0o444);
    sys.add_file(
        "/proc/self/mountinfo",
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 8:33 / /srv rw - ext4 /dev/sdc1 rw\n",
        0o444,
    );
    let cx = node.cx(Options { wipe_data_disk: Some("/dev/disk/azure/scsi1/lun0"), ..Options::default() });
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("/dev/sdc1 is mounted at /srv"), "{e}");
}

#[test]
fn existing_drbd_metadata_is_never_recreated_and_foreign_data_is_refused() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    partitioned(&sys);
    set(&sys, "md");
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    let md = plan.steps.iter().find(|s| s.name == "db.drbd.metadata").unwrap();
    assert!(md.actions.is_empty(), "valid metadata is kept: {:?}", md.actions);

    // Foreign data and no peer known UpToDate: refused, and wiping is not suggested, not even
    // to a run that passes the flag (the lab's false positive was such a node).
    let sys = fresh_vm(&node);
    partitioned(&sys);
    sys.on(&["blkid", "-p"], |_, c| match arg(c, 4).as_str() {
        "/dev/sdc" => Output::ok("PTTYPE=gpt\n"),
        "/dev/sdc1" => Output::ok(format!("PART_ENTRY_NAME=hainit-wpcluster\nPART_ENTRY_UUID={PARTUUID}\n")),
        _ => Output::ok("TYPE=xfs\nUSAGE=filesystem\nPART_ENTRY_NAME=hainit-wpcluster\n"),
    });
    let wipe = node.cx(Options { wipe_data_disk: Some("/dev/disk/azure/scsi1/lun0"), ..Options::default() });
    for cx in [&cx, &wipe] {
        let e = engine::plan(&steps(cx), cx, &sys).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("TYPE=xfs") && msg.contains("refusing to create metadata"), "{msg}");
        assert!(msg.contains("only copy") && !msg.contains("--wipe-data-disk"), "{msg}");
    }
    // DRBD runs here without a disk and sees the peer UpToDate: the flag may wipe the partition.
    sys.add_file(
        "/proc/drbd",
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Secondary/Primary ds:Diskless/UpToDate C r-----\n",
        0o444,
    );
    let e = engine::plan(&steps(&cx), &cx, &sys).unwrap_err();
    assert!(e.to_string().contains("pass --wipe-data-disk=/dev/sdc"), "{e}");
    let md = metadata_actions(&wipe, &sys).unwrap();
    let described: Vec<String> = md.iter().map(|a| a.describe()).collect();
    assert!(described[0].contains(&format!("wipefs --all /dev/disk/by-partuuid/{PARTUUID}")), "{described:?}");
    assert!(described[1].contains("drbdadm create-md --force wpcluster"), "{described:?}");
}

/// `db.stonith: sbd` on brand-new VMs: golden plans (Debian with priority-fencing-delay; CentOS 7
/// with pcs 0.9 and pcmk_delay_max), and apply converges on every platform with the header
/// written by the leader only, sbd enabled before corosync starts, DRBD freezing I/O until the
/// peer is fenced.
#[test]
fn sbd_fencing_is_set_up_before_corosync_starts() {
    for (os, leader) in [(OsId::Debian12, true), (OsId::Centos7, true), (OsId::Debian12, false)] {
        let node = Node::new(os, leader, SBD_YAML);
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        roles::validate(&cx, &sys).unwrap();
        let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
        let name = format!("{}-{}-sbd", os, if leader { "leader" } else { "follower" });
        assert_golden(&format!("plan-db/{name}.txt"), &plan.to_text());
    }
    for os in OSES {
        for leader in [true, false] {
            let node = Node::new(os, leader, SBD_YAML);
            let cx = node.cx(Options::default());
            let sys = fresh_vm(&node);
            if leader {
                set(&sys, "node.leader");
            }
            engine::apply(&steps(&cx), &cx, &sys).unwrap_or_else(|e| panic!("{os} leader={leader}: {e}"));
            assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged(), "{os} leader={leader}");
            let ran: Vec<String> = sys.commands().iter().map(|c| c.join(" ")).collect();
            let at = |what: &str| ran.iter().position(|c| c.contains(what));
            let create = at("sbd -d /dev/disk/by-id/scsi-hainit-sbd -1 30 -4 60 create");
            assert_eq!(create.is_some(), leader, "{os}: only the leader writes the header: {ran:#?}");
            let (enable, start) = (at("systemctl enable sbd").unwrap(), at("systemctl start corosync").unwrap());
            assert!(enable < start, "{os}: sbd is enabled before corosync starts: {ran:#?}");
            let wanted = (roles::packages::PackagesStep::db().list)(&cx);
            assert!(os.platform().db.sbd_packages.iter().all(|p| wanted.contains(p)), "{os}: {wanted:?}");
            let conf = sys.read_string(os.platform().db.sbd_config).unwrap().unwrap();
            assert!(conf.contains(&format!("SBD_DEVICE=\"{SBD_DISK}\"")), "{conf}");
            assert!(sys.exists("/dev/watchdog").unwrap(), "softdog loaded");
            let res = sys.read_string("/etc/drbd.d/wpcluster.res").unwrap().unwrap();
            assert!(res.contains("fencing resource-and-stonith;") && res.contains("--timeout 600"), "{res}");
        }
    }
}

/// A disk that holds anything is never given an SBD header; the follower never writes one.
#[test]
fn an_sbd_disk_with_data_is_refused_and_nothing_is_written() {
    let node = Node::new(OsId::Debian12, true, SBD_YAML);
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    sys.on(&["blkid", "-p", "-o", "export", SBD_DISK], |_, _| Output::ok("TYPE=xfs\nUSAGE=filesystem\n"));
    let e = engine::apply(&steps(&cx), &cx, &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    assert!(e.to_string().contains(SBD_DISK) && e.to_string().contains("TYPE=xfs"), "{e}");
    let wrote = sys.commands().iter().any(|c| c[0] == "sbd" && c.last().is_some_and(|a| a == "create"));
    assert!(!wrote, "{:#?}", sys.commands());
}

/// Bad SBD inputs are refused before anything is touched (exit 2), naming the key and value.
#[test]
fn sbd_inputs_are_checked_before_anything_is_touched() {
    for (yaml, want) in [
        ("db:\n  stonith: sbd\n", "db.sbd_device is not set"),
        ("db:\n  sbd_device: /dev/sdd\n", "db.stonith is auto"),
        ("db:\n  stonith: sbd\n  sbd_device: sdd\n", "\"sdd\" must be a device path"),
        ("db:\n  stonith: sbd\n  sbd_device: /dev/sdd\n  sbd_watchdog_timeout_secs: 1\n", "1 must be between 5"),
        ("db:\n  stonith: sbd\n  sbd_device: /dev/disk/azure/scsi1/lun0\n", "is the data disk (/dev/sdc)"),
    ] {
        let node = Node::new(OsId::Debian12, true, yaml);
        let cx = node.cx(Options::default());
        let sys = fresh_vm(&node);
        let e = roles::validate(&cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input, "{yaml}: {e}");
        assert!(e.to_string().contains(want), "{yaml}: {e}");
    }
}

/// Debian enables sbd on install; without a device corosync (which requires it) would not start.
#[test]
fn an_sbd_unit_without_a_device_is_disabled_when_sbd_does_not_fence() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    set(&sys, "unit.sbd.enabled");
    sys.add_file("/etc/default/sbd", "#SBD_DEVICE=\"\"\nSBD_PACEMAKER=yes\n", 0o644);
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    assert!(!fact(&sys, "unit.sbd.enabled"), "{:#?}", sys.commands());
    // One that names a device was set up by someone: left alone.
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    set(&sys, "unit.sbd.enabled");
    sys.add_file("/etc/default/sbd", "SBD_DEVICE=\"/dev/sdx\"\n", 0o644);
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    assert!(fact(&sys, "unit.sbd.enabled"));
}

/// A fencer that could not reach the CIB at its start knows no fence device: the run kills it so
/// that pacemakerd starts one that reads the CIB; a seeing fencer is left alone.
#[test]
fn a_fencer_blind_to_the_cib_is_restarted_when_the_cluster_fences() {
    let node = Node::new(OsId::Debian12, true, SBD_YAML);
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    sys.set_fact("fencer.pid", "1000");
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    assert!(!sys.commands().iter().any(|c| c[0] == "kill"), "a seeing fencer was killed");
    set(&sys, "fencer.blind");
    let plan = engine::plan(&steps(&cx), &cx, &sys).unwrap();
    assert!(plan.to_text().contains("kill 1000"), "{}", plan.to_text());
    let outcomes = engine::apply(&steps(&cx), &cx, &sys).unwrap();
    // The ready step restarts it: a blind fencer could not list the fence device's targets.
    let ready = outcomes.iter().find(|(id, _)| *id == "db.cluster.ready").unwrap();
    assert!(matches!(ready.1, Outcome::Changed { .. }), "{outcomes:?}");
    assert_eq!(sys.commands().iter().filter(|c| c[0] == "kill").count(), 1, "{:#?}", sys.commands());
    assert_eq!(sys.fact("fencer.pid").as_deref(), Some("1001"));
    assert!(engine::plan(&steps(&cx), &cx, &sys).unwrap().is_converged());
    // Without STONITH there is nothing for the fencer to use: left alone.
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    let sys = fresh_vm(&node);
    set(&sys, "node.leader");
    sys.set_fact("fencer.pid", "1000");
    set(&sys, "fencer.blind");
    engine::apply(&steps(&cx), &cx, &sys).unwrap();
    assert!(!sys.commands().iter().any(|c| c[0] == "kill"), "{:#?}", sys.commands());
}

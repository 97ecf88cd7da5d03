//! `status` of a db node: DRBD from /proc/drbd (8.4), the cluster from real crm_mon XML
//! (tests/fixtures/crm_mon, captured from Pacemaker 2.1.5), DRBD's fencing constraints.

use hainit::platform::OsId;
use hainit::roles::health;
use hainit::status::{Health, Level};
use hainit::system::{FakeSystem, Output};

use super::Node;

const FENCE_ID: &str = "drbd-fence-by-handler-wpcluster-drbd_wpcluster-clone";

/// A captured crm_mon document, renamed to this test's cluster (the capture's is `wp`).
fn crm_mon(fixture: &str) -> Output {
    let path = format!("{}/tests/fixtures/crm_mon/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let xml = std::fs::read_to_string(&path).unwrap().replace("drbd_wp", "drbd_wpcluster");
    if fixture.contains("down") {
        Output { code: Some(102), stdout: xml, stderr: String::new() }
    } else {
        Output::ok(xml)
    }
}

fn db_node(proc_line: Option<&str>, crm: &str, constraints: &str) -> FakeSystem {
    let sys = FakeSystem::new("db-a");
    sys.add_file("/proc/sys/net/ipv4/tcp_timestamps", "0\n", 0o644);
    if let Some(line) = proc_line {
        sys.add_file("/proc/drbd", format!("version: 8.4.11 (api:1/proto:86-101)\n{line}"), 0o444);
    }
    sys.reply(&["crm_mon"], crm_mon(crm));
    sys.reply(&["cibadmin", "--query", "--scope", "constraints"], Output::ok(constraints.to_string()));
    sys
}

fn status(sys: &FakeSystem) -> Vec<Health> {
    let n = Node::new(OsId::Debian12, true, "\n");
    health(&n.inv, n.inv.platform.platform(), &n.config, sys)
}

fn item(items: &[Health], name: &str) -> (Level, String) {
    items
        .iter()
        .find(|h| h.name == name)
        .map(|h| (h.level, h.detail.clone()))
        .unwrap_or_else(|| panic!("no {name} item in {items:?}"))
}

const HEALTHY: &str = " 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n";

#[test]
fn a_healthy_primary_with_stonith_off_and_a_failed_monitor() {
    let items = status(&db_node(Some(HEALTHY), "debian12-live.xml", "<constraints/>"));
    let names: Vec<&str> = items.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tcp-timestamps",
            "drbd-role",
            "drbd-connection",
            "drbd-disk",
            "drbd-sync",
            "cluster",
            "quorum",
            "nodes",
            "mariadb",
            "stonith",
            "failed-actions"
        ]
    );
    for name in ["drbd-role", "drbd-connection", "drbd-disk", "drbd-sync", "cluster", "quorum", "nodes", "mariadb"] {
        assert_eq!(item(&items, name).0, Level::Ok, "{name}: {items:?}");
    }
    assert_eq!(item(&items, "drbd-role").1, "Primary here, peer Secondary");
    assert!(item(&items, "mariadb").1.starts_with("running on db-a (this node)"), "{items:?}");
    assert_eq!(item(&items, "stonith").0, Level::Fail, "STONITH off is a failure, not a warning");
    assert!(item(&items, "stonith").1.starts_with("disabled"), "{items:?}");
    assert_ne!(item(&items, "failed-actions").0, Level::Ok, "the live capture has a failed monitor: {items:?}");
}

#[test]
fn split_brain_standalone_and_stale_data_are_named() {
    let both = " 0: cs:StandAlone ro:Primary/Primary ds:UpToDate/DUnknown r-----\n";
    let items = status(&db_node(Some(both), "debian12-live.xml", "<constraints/>"));
    assert_eq!(item(&items, "drbd-role").0, Level::Fail);
    assert!(item(&items, "drbd-role").1.contains("split brain"), "{items:?}");
    assert_eq!(item(&items, "drbd-connection").0, Level::Fail);
    let (_, detail) = item(&items, "drbd-connection");
    assert!(detail.starts_with("StandAlone: not trying") && detail.contains("journalctl -k"), "{detail}");
    assert_eq!(
        item(&items, "drbd-disk"),
        (Level::Warn, "UpToDate here, peer DUnknown: only this node has current data".into())
    );

    let syncing = " 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n    \
                   [=====>..............] sync'ed: 31.5% (352/512)M\n";
    let items = status(&db_node(Some(syncing), "debian12-live.xml", "<constraints/>"));
    assert_eq!(item(&items, "drbd-disk").0, Level::Warn);
    assert!(item(&items, "drbd-disk").1.contains("not current"), "{items:?}");
    assert_eq!(item(&items, "drbd-sync").0, Level::Warn);
    assert!(item(&items, "drbd-sync").1.contains("31.5% done"), "{items:?}");
}

/// DRBD's kernel log names an unresolved split brain (8.4 by device, 9 by resource/volume and
/// device): `status` says so, that both sides kept their data, and how to resolve it.
#[test]
fn an_unresolved_split_brain_is_named_with_its_resolution() {
    let alone = " 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----\n";
    for line in [
        "block drbd0: Split-Brain detected but unresolved, dropping connection!",
        "drbd wpcluster/0 drbd0 db-b: Split-Brain detected but unresolved, dropping connection!",
    ] {
        let sys = db_node(Some(alone), "debian12-live.xml", "<constraints/>");
        sys.reply(
            &["journalctl", "-k"],
            Output::ok(format!("drbd wpcluster: conn( Unconnected -> Connected )\n{line}\n")),
        );
        let (level, detail) = item(&status(&sys), "drbd-connection");
        assert_eq!(level, Level::Fail, "{detail}");
        assert!(
            detail.starts_with("StandAlone after a split brain") && detail.contains("both sides' data"),
            "{detail}"
        );
        assert!(detail.contains("drbdadm connect --discard-my-data wpcluster"), "{detail}");
        assert!(detail.contains("docs/operations.md"), "{detail}");
    }
    // Another minor's split brain is not this one's.
    let sys = db_node(Some(alone), "debian12-live.xml", "<constraints/>");
    sys.reply(
        &["journalctl", "-k"],
        Output::ok("block drbd10: Split-Brain detected but unresolved, dropping connection!\n"),
    );
    assert!(item(&status(&sys), "drbd-connection").1.starts_with("StandAlone: not trying"));
}

/// On DRBD 9 the state comes from drbdsetup; drbdsetup failing is a FAIL naming its error, not
/// "not up".
#[test]
fn a_failing_drbdsetup_is_reported_not_read_as_down() {
    let n = Node::new(OsId::El9, true, "\n");
    let sys = db_node(None, "debian12-live.xml", "<constraints/>");
    sys.add_file("/proc/drbd", "version: 9.2.8 (api:2/proto:86-122)\n", 0o444);
    sys.reply(&["drbdsetup", "status"], Output::fail(20, "Could not connect to 'drbd' generic netlink family\n"));
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    let (level, detail) = item(&items, "drbd");
    assert_eq!(level, Level::Fail);
    assert!(detail.contains("generic netlink") && !detail.contains("not up"), "{detail}");
    sys.reply(
        &["drbdsetup", "status"],
        Output { code: Some(10), stdout: "[\n]\n".into(), stderr: "wpcluster: No such resource\n".into() },
    );
    let items = health(&n.inv, n.inv.platform.platform(), &n.config, &sys);
    assert!(item(&items, "drbd").1.contains("is not up"), "{items:?}");
}

#[test]
fn nothing_running_yet_reads_as_not_formed_not_as_a_crash() {
    let items = status(&db_node(None, "debian12-down.xml", "<constraints/>"));
    assert_eq!(item(&items, "drbd"), (Level::Fail, "the DRBD kernel module is not loaded (no /proc/drbd)".into()));
    let (level, detail) = item(&items, "cluster");
    assert_eq!(level, Level::Warn, "{detail}");
    assert!(detail.starts_with("not formed yet"), "{detail}");
    assert!(items.iter().all(|h| h.name != "drbd-fencing"), "no CIB, no fencing item: {items:?}");
}

#[test]
fn a_fence_constraint_is_expected_while_resyncing_and_stale_once_both_are_up_to_date() {
    let constraints = format!(
        "<constraints><rsc_location rsc=\"drbd_wpcluster-clone\" id=\"{FENCE_ID}\"/>\
         <rsc_location id=\"cli-ban-g_db-on-db-b\" rsc=\"g_db\" node=\"db-b\" score=\"-INFINITY\"/></constraints>"
    );
    let syncing = " 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----\n";
    let items = status(&db_node(Some(syncing), "debian12-live.xml", &constraints));
    let (level, detail) = item(&items, "drbd-fencing");
    assert_eq!(level, Level::Warn);
    assert!(detail.starts_with(FENCE_ID) && detail.contains("until the peer has resynced"), "{detail}");

    let items = status(&db_node(Some(HEALTHY), "debian12-live.xml", &constraints));
    let (level, detail) = item(&items, "drbd-fencing");
    assert_eq!(level, Level::Warn);
    assert!(detail.contains("is stale") && detail.contains("re-run hainit"), "{detail}");
    assert!(!detail.contains("cli-ban"), "only DRBD's handler constraints: {detail}");

    let items = status(&db_node(Some(HEALTHY), "debian12-live.xml", "<constraints/>"));
    assert!(items.iter().all(|h| h.name != "drbd-fencing"), "{items:?}");
}

/// With the cluster running, a constraints query that fails is reported, not read as "none".
#[test]
fn a_failing_constraints_query_is_reported() {
    let sys = db_node(Some(HEALTHY), "debian12-live.xml", "<constraints/>");
    sys.reply(&["cibadmin", "--query", "--scope", "constraints"], Output::fail(105, "Call cib_query failed (-6)\n"));
    let (level, detail) = item(&status(&sys), "drbd-fencing");
    assert_eq!(level, Level::Warn);
    assert!(detail.contains("cib_query failed"), "{detail}");
}

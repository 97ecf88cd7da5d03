//! `db.cluster.hacluster` with the real python3 `crypt` check against hashes real tools make:
//! chpasswd (yescrypt as Debian 12's PAM writes, SHA-512 as EL's) run on a test root with the
//! very stdin the step's action carries, and `openssl passwd -6`. The host's accounts are never
//! touched: the step reads the test root's /etc/shadow. And `db.cluster.start` on the fake
//! system: a failed `corosync-cmapctl` or `systemctl show` ends the run and stops nothing.

use std::path::Path;
use std::process::Command;

use hainit::engine::{self, Options, Outcome, Step};
use hainit::error::ErrorKind;
use hainit::plan::Action;
use hainit::platform::OsId;
use hainit::roles::db::cluster::{HaclusterStep, StartStep};
use hainit::secrets::Purpose;
use hainit::system::{Cmd, FakeSystem, HostSystem, Output, Root};

use super::{assert_root, run, Node};
use crate::common::output_with_stdin;

fn write_root(root: &Path, hacluster_hash: &str) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nhacluster:x:106:109::/var/lib/heartbeat:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nhaclient:x:109:\n").unwrap();
    std::fs::write(
        root.join("etc/shadow"),
        format!("root:*:19000:0:99999:7:::\nhacluster:{hacluster_hash}:19000::::::\n"),
    )
    .unwrap();
}

/// The step's actions on a machine whose files live under `root`.
fn check(root: &Path) -> Vec<Action> {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    HaclusterStep.check(&cx, &HostSystem::new(Root::new(root))).unwrap()
}

/// The chpasswd action, checked to keep the password out of argv.
fn chpasswd(actions: &[Action], password: &str) -> Cmd {
    let [Action::Run { cmd, .. }] = actions else { panic!("one chpasswd action expected: {actions:?}") };
    assert_eq!(cmd.program, "chpasswd");
    assert!(!cmd.args_exposed().iter().any(|a| a.contains(password)), "password in argv: {cmd}");
    cmd.clone()
}

/// Run the action's stdin through the real chpasswd on the test root (`-c`: no PAM in a chroot).
fn apply_chpasswd(root: &Path, cmd: &Cmd, method: &str) {
    let out = output_with_stdin(
        Command::new("chpasswd").arg("-R").arg(root).args(["-c", method]),
        cmd.stdin_bytes().unwrap(),
    );
    assert!(
        out.status.success(),
        "chpasswd -R {} -c {method}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hash_of(root: &Path) -> String {
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    shadow.lines().find_map(|l| l.strip_prefix("hacluster:")).unwrap().split(':').next().unwrap().to_string()
}

#[test]
fn the_crypt_check_accepts_the_derived_password_and_nothing_else() {
    assert_root("chpasswd -R");
    let node = Node::new(OsId::Debian12, true, "\n");
    let password = node.cx(Options::default()).derive(Purpose::HaclusterPassword);
    let pw = password.expose();
    for (method, prefix) in [("YESCRYPT", "$y$"), ("SHA512", "$6$")] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write_root(root, "!"); // as the package creates it: locked
        let cmd = chpasswd(&check(root), pw);
        apply_chpasswd(root, &cmd, method);
        let hash = hash_of(root);
        assert!(hash.starts_with(prefix), "{method}: {hash}");
        assert!(check(root).is_empty(), "{method}: the derived password matches {hash}");

        // Another password (a node set up by hand, or another secret) is replaced.
        let other = format!("hacluster:not-{pw}\n");
        let out =
            output_with_stdin(Command::new("chpasswd").arg("-R").arg(root).args(["-c", method]), other.as_bytes());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_ne!(hash_of(root), hash);
        chpasswd(&check(root), pw);
    }
}

#[test]
fn openssl_sha512_hashes_are_judged_too() {
    let node = Node::new(OsId::Debian12, true, "\n");
    let password = node.cx(Options::default()).derive(Purpose::HaclusterPassword);
    let hash_for = |pw: &str| {
        let out =
            output_with_stdin(Command::new("openssl").args(["passwd", "-6", "-stdin"]), format!("{pw}\n").as_bytes());
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    let good = hash_for(password.expose());
    assert!(good.starts_with("$6$"), "{good}");
    write_root(tmp.path(), &good);
    assert!(check(tmp.path()).is_empty(), "matching hash {good}");
    write_root(tmp.path(), &hash_for("something else"));
    chpasswd(&check(tmp.path()), password.expose());
    write_root(tmp.path(), "");
    chpasswd(&check(tmp.path()), password.expose());
    // The python the platform names really has crypt (3.11 on Debian 12, removed in 3.13).
    let py = OsId::Debian12.platform().db.python;
    run(Command::new(py).args(["-W", "ignore", "-c", "import crypt"]));
}

/// A db VM whose corosync and pacemaker run (per `systemctl show`), answering `corosync-cmapctl`
/// with `cmap`; every command that would change something is recorded, never refused.
fn running_stack(cmap: Output) -> FakeSystem {
    let sys = FakeSystem::new("db-a");
    sys.reply(&["systemctl", "show"], Output::ok("UnitFileState=enabled\nActiveState=active\nActiveEnterTimestamp=\n"));
    sys.reply(&["corosync-cmapctl"], cmap);
    sys.reply(&["pcs"], Output::ok(""));
    sys.reply(&["systemctl", "start"], Output::ok(""));
    sys.reply(&["systemctl", "stop"], Output::ok(""));
    sys
}

/// What `db.cluster.start` ran beyond its queries.
fn changes(sys: &FakeSystem) -> Vec<String> {
    let queries = ["systemctl show", "corosync-cmapctl -g"];
    sys.commands().into_iter().map(|c| c.join(" ")).filter(|c| !queries.iter().any(|q| c.starts_with(q))).collect()
}

fn start(sys: &FakeSystem) -> hainit::error::Result<Vec<(&'static str, Outcome)>> {
    let node = Node::new(OsId::Debian12, true, "\n");
    let cx = node.cx(Options::default());
    engine::apply(&[Box::new(StartStep) as Box<dyn Step>], &cx, sys)
}

/// corosync-cmapctl failing is no "stale configuration": the run ends (CS_ERR_TRY_AGAIN as a
/// timeout, exit 3; any other failure exit 1) and the running node is not stopped.
#[test]
fn a_failed_cmapctl_never_stops_a_running_node() {
    let failed = |code: i32, stderr: &str| Output { code: Some(code), stdout: String::new(), stderr: stderr.into() };
    for (cmap, kind) in [
        (failed(0, "Can't get key totem.cluster_name. Error CS_ERR_TRY_AGAIN\n"), ErrorKind::Timeout),
        (failed(1, "Failed to initialize the cmap API. Error CS_ERR_TRY_AGAIN\n"), ErrorKind::Timeout),
        (failed(1, "Failed to initialize the cmap API. Error CS_ERR_LIBRARY\n"), ErrorKind::Step),
        (failed(0, ""), ErrorKind::Step),
    ] {
        let sys = running_stack(cmap.clone());
        let e = start(&sys).unwrap_err();
        assert_eq!(changes(&sys), Vec::<String>::new(), "{cmap:?}");
        assert_eq!(e.kind, kind, "{cmap:?}: {e}");
        assert!(e.to_string().contains("corosync-cmapctl -g totem.cluster_name"), "{e}");
    }
    // The decision does rest on the answer: a name really read decides.
    let sys = running_stack(Output::ok("totem.cluster_name (str) = wpcluster\n"));
    assert_eq!(start(&sys).unwrap()[0].1, Outcome::Converged);
    // The distro's own corosync (named debian) until our stack restarts with our corosync.conf.
    let sys = running_stack(Output::ok(""));
    sys.on(&["corosync-cmapctl"], |s, _| {
        let name = if s.fact("restarted").is_some() { "wpcluster" } else { "debian" };
        Output::ok(format!("totem.cluster_name (str) = {name}\n"))
    });
    sys.on(&["systemctl", "start"], |s, _| {
        s.set_fact("restarted", "1");
        Output::ok("")
    });
    start(&sys).unwrap();
    assert_eq!(changes(&sys), ["pcs cluster stop --force", "systemctl start corosync pacemaker"]);
}

/// `systemctl show` failing is no "inactive": nothing is started or stopped.
#[test]
fn a_failed_systemctl_show_never_reads_as_inactive() {
    let sys = running_stack(Output::ok("totem.cluster_name (str) = wpcluster\n"));
    sys.reply(&["systemctl", "show"], Output::fail(1, "Failed to connect to bus: Connection refused"));
    let e = start(&sys).unwrap_err();
    assert_eq!(changes(&sys), Vec::<String>::new());
    assert_eq!(e.kind, ErrorKind::Step, "{e}");
    assert!(e.to_string().contains("corosync") && e.to_string().contains("Failed to connect to bus"), "{e}");
}

//! `db.cluster.hacluster` with the real python3 `crypt` check against hashes real tools make:
//! chpasswd (yescrypt as Debian 12's PAM writes, SHA-512 as EL's) run on a test root with the
//! very stdin the step's action carries, and `openssl passwd -6`. The host's accounts are never
//! touched: the step reads the test root's /etc/shadow.

use std::path::Path;
use std::process::Command;

use hainit::engine::{Options, Step};
use hainit::plan::Action;
use hainit::platform::OsId;
use hainit::roles::db::cluster::HaclusterStep;
use hainit::secrets::Purpose;
use hainit::system::{Cmd, HostSystem, Root};

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

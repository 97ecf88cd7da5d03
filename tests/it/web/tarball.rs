//! WordPress tarballs on the real file system: hostile archives refused with nothing written
//! outside staging, sha256 pinned (tarball and download), upgrades keep wp-content, killed swaps
//! recover.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use hainit::engine::{self, Step};
use hainit::error::ErrorKind;
use hainit::platform::OsId;
use hainit::roles::web::wordpress::{self, TreeStep};
use hainit::system::{DownloadSpec, Executor, HostSystem, Probe, Root, UnpackSpec};

use super::{mini_wordpress, sha256, targz, web_yaml, Node, Raw};

const TARBALL: &str = "/srv/wordpress.tar.gz";
const DOCROOT: &str = "/var/www/wordpress";

/// Every path below `dir` with its kind and content (or link target).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                pending.push(path.clone());
                "dir".to_string()
            } else {
                format!("file {}", sha256(&std::fs::read(&path).unwrap()))
            };
            out.insert(rel, what);
        }
    }
    out
}

fn spec(sha: &str) -> UnpackSpec {
    UnpackSpec {
        archive: TARBALL.into(),
        sha256: sha.into(),
        top: "wordpress".into(),
        dest: DOCROOT.into(),
        keep: wordpress::KEEP.iter().map(|k| k.to_string()).collect(),
    }
}

fn put(root: &Path, path: &str, bytes: &[u8]) {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn hostile_tarballs_are_refused_with_nothing_written_outside_staging() {
    let outside = tempfile::tempdir().unwrap();
    let abs = format!("{}/pwned.php", outside.path().display());
    let good = Raw::File("wordpress/index.php", b"<?php\n");
    let cases: Vec<(&str, Vec<Raw>, &str)> = vec![
        ("traversal", vec![Raw::Dir("wordpress/"), Raw::File("wordpress/../../pwned.php", b"x")], "path traversal"),
        ("absolute", vec![Raw::Dir("wordpress/"), Raw::File(&abs, b"x")], "absolute path"),
        ("outside the top", vec![Raw::Dir("wordpress/"), Raw::File("other/pwned.php", b"x")], "outside the top"),
        (
            "escaping symlink",
            vec![
                Raw::Dir("wordpress/"),
                Raw::Symlink("wordpress/up", "../../.."),
                Raw::File("wordpress/up/pwned.php", b"x"),
            ],
            "points outside the tree",
        ),
        (
            "absolute symlink",
            vec![Raw::Dir("wordpress/"), Raw::Symlink("wordpress/passwd", "/etc/passwd")],
            "outside the tree",
        ),
        (
            "symlink chain",
            vec![
                Raw::Dir("wordpress/"),
                Raw::Dir("wordpress/d/"),
                Raw::Symlink("wordpress/d/b", ".."),
                Raw::Symlink("wordpress/e", "d/b/.."),
            ],
            "goes through the symlink d/b",
        ),
        (
            "through a symlink",
            vec![Raw::Symlink("wordpress/in", "."), Raw::File("wordpress/in/x.php", b"x")],
            "goes through",
        ),
        ("hard link outside", vec![good, Raw::HardLink("wordpress/h", "/etc/passwd")], "hard link"),
        ("device file", vec![Raw::Dir("wordpress/"), Raw::Device("wordpress/null")], "device file"),
        ("fifo", vec![Raw::Dir("wordpress/"), Raw::Fifo("wordpress/pipe")], "fifo"),
        (
            "refused late",
            vec![
                Raw::Dir("wordpress/"),
                Raw::File("wordpress/index.php", b"<?php\n"),
                Raw::Dir("wordpress/wp-admin/"),
                Raw::File("wordpress/wp-admin/a.php", b"<?php\n"),
                Raw::File("wordpress/../pwned.php", b"x"),
            ],
            "path traversal",
        ),
    ];
    for (name, entries, reason) in cases {
        let root = tempfile::tempdir().unwrap();
        let bytes = targz(&entries);
        put(root.path(), TARBALL, &bytes);
        put(root.path(), &format!("{DOCROOT}/wp-content/uploads/photo.jpg"), b"the site's data");
        let before = snapshot(root.path());
        let sys = HostSystem::without_chown(Root::new(root.path()));

        let e = sys.unpack(&spec(&sha256(&bytes))).unwrap_err();
        assert!(e.to_string().contains(reason), "{name}: {e}");
        assert_eq!(snapshot(root.path()), before, "{name}: the root changed (staging left behind or files written)");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none(), "{name}: wrote outside the root");

        // The step's check refuses it too, so `plan` already reports the bad tarball.
        let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &sha256(&bytes), ""));
        let e = engine::plan(&[Box::new(TreeStep) as Box<dyn Step>], &node.cx(), &sys).unwrap_err();
        assert!(e.to_string().contains(reason) && e.to_string().contains("web.wordpress.tree"), "{name}: {e}");
    }
}

#[test]
fn a_tarball_that_does_not_match_the_pinned_sha256_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let bytes = mini_wordpress("6.1.9");
    put(root.path(), TARBALL, &bytes);
    let sys = HostSystem::without_chown(Root::new(root.path()));
    let pinned = sha256(b"another tarball");
    let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &pinned, ""));
    let e = TreeStep.check(&node.cx(), &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input, "{e}");
    assert!(e.to_string().contains(&pinned) && e.to_string().contains(&sha256(&bytes)), "{e}");
    // Even when asked directly, the system layer verifies before it writes.
    let before = snapshot(root.path());
    let e = sys.unpack(&spec(&pinned)).unwrap_err();
    assert!(e.to_string().contains("sha256"), "{e}");
    assert_eq!(snapshot(root.path()), before);
    // No pin at all: exit 2.
    let node = Node::standard(OsId::Debian12, &format!("web:\n  wordpress_tarball: {TARBALL}\n"));
    let e = TreeStep.check(&node.cx(), &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input);
    assert!(e.to_string().contains("web.wordpress_sha256 is not set"), "{e}");
}

/// Serve `body` to every connection on 127.0.0.1 (stopped when the listener is dropped).
fn serve(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/wordpress.tar.gz", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        // One request is all each test makes.
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    (url, handle)
}

#[test]
fn downloads_are_written_only_when_the_sha256_matches() {
    let bytes = mini_wordpress("6.1.9");
    let root = tempfile::tempdir().unwrap();
    let sys = HostSystem::without_chown(Root::new(root.path()));

    let (url, server) = serve(bytes.clone());
    let e =
        sys.download(&DownloadSpec { url: url.clone(), sha256: sha256(b"other"), path: TARBALL.into() }).unwrap_err();
    server.join().unwrap();
    assert!(e.to_string().contains("nothing was written") && e.to_string().contains(&sha256(&bytes)), "{e}");
    assert!(snapshot(root.path()).is_empty(), "a refused download left files");

    let (url, server) = serve(bytes.clone());
    sys.download(&DownloadSpec { url, sha256: sha256(&bytes), path: TARBALL.into() }).unwrap();
    server.join().unwrap();
    assert_eq!(sys.read(TARBALL).unwrap().unwrap(), bytes);
}

#[test]
fn unpack_converges_and_an_upgrade_keeps_wp_content_and_wp_config() {
    let root = tempfile::tempdir().unwrap();
    let sys = HostSystem::without_chown(Root::new(root.path()));
    let v1 = targz(&[
        Raw::Dir("wordpress/"),
        Raw::File("wordpress/index.php", b"<?php // 1\n"),
        Raw::File("wordpress/only-in-v1.php", b"<?php\n"),
        Raw::Dir("wordpress/wp-content/"),
        Raw::File("wordpress/wp-content/index.php", b"<?php\n"),
        Raw::Symlink("wordpress/latest.php", "index.php"),
        Raw::HardLink("wordpress/same.php", "wordpress/index.php"),
    ]);
    put(root.path(), TARBALL, &v1);
    let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &sha256(&v1), &format!("  docroot: {DOCROOT}\n")));
    let steps: Vec<Box<dyn Step>> = vec![Box::new(TreeStep)];
    let out = engine::apply(&steps, &node.cx(), &sys).unwrap();
    assert_eq!(out[0].1, engine::Outcome::Changed { actions: 1 });
    assert!(engine::plan(&steps, &node.cx(), &sys).unwrap().is_converged(), "a re-run changes nothing");
    let wp = root.path().join(DOCROOT.trim_start_matches('/'));
    assert_eq!(std::fs::read_link(wp.join("latest.php")).unwrap(), Path::new("index.php"));
    assert_eq!(std::fs::read(wp.join("same.php")).unwrap(), b"<?php // 1\n");

    // The site's own data, then an upgrade.
    std::fs::create_dir_all(wp.join("wp-content/uploads")).unwrap();
    std::fs::write(wp.join("wp-content/uploads/photo.jpg"), b"jpeg").unwrap();
    std::fs::write(wp.join("wp-config.php"), b"<?php // config\n").unwrap();
    let v2 = targz(&[
        Raw::Dir("wordpress/"),
        Raw::File("wordpress/index.php", b"<?php // 2\n"),
        Raw::Dir("wordpress/wp-content/"),
        Raw::File("wordpress/wp-content/index.php", b"<?php // new default\n"),
    ]);
    put(root.path(), TARBALL, &v2);
    let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &sha256(&v2), ""));
    let plan = engine::plan(&steps, &node.cx(), &sys).unwrap();
    assert_eq!(plan.steps[0].actions.len(), 1, "the tree no longer matches the new tarball");
    engine::apply(&steps, &node.cx(), &sys).unwrap();
    assert_eq!(std::fs::read(wp.join("index.php")).unwrap(), b"<?php // 2\n");
    assert!(!wp.join("only-in-v1.php").exists(), "files of the old release are gone");
    assert_eq!(std::fs::read(wp.join("wp-content/uploads/photo.jpg")).unwrap(), b"jpeg");
    assert_eq!(std::fs::read(wp.join("wp-content/index.php")).unwrap(), b"<?php\n", "wp-content is the site's");
    assert_eq!(std::fs::read(wp.join("wp-config.php")).unwrap(), b"<?php // config\n");
    assert_eq!(beside(wp.parent().unwrap()), [".wordpress.hainit-previous", "wordpress"], "no staging left");
    let previous = wp.parent().unwrap().join(".wordpress.hainit-previous");
    assert!(previous.join("only-in-v1.php").exists(), "the replaced tree is kept until the next upgrade");
    assert!(!previous.join("wp-content").exists(), "wp-content lives only in the live tree");
}

#[test]
fn a_swap_killed_half_way_is_finished_without_losing_wp_content() {
    let v2 = mini_wordpress("6.2");
    // Killed after `docroot -> old` and before `staging -> docroot`: the site's wp-content had
    // already moved into staging; the live tree is missing.
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("var/www");
    put(root.path(), TARBALL, &v2);
    put(root.path(), "/var/www/.wordpress.hainit-old/index.php", b"<?php // 1\n");
    put(root.path(), "/var/www/.wordpress.hainit-new/index.php", b"<?php // 2, half written");
    put(root.path(), "/var/www/.wordpress.hainit-new/wp-content/uploads/photo.jpg", b"jpeg");
    let sys = HostSystem::without_chown(Root::new(root.path()));
    sys.unpack(&spec(&sha256(&v2))).unwrap();
    assert_eq!(std::fs::read(base.join("wordpress/wp-content/uploads/photo.jpg")).unwrap(), b"jpeg");
    assert!(std::fs::read_to_string(base.join("wordpress/wp-includes/version.php")).unwrap().contains("6.2"));
    let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &sha256(&v2), ""));
    assert!(TreeStep.check(&node.cx(), &sys).unwrap().is_empty());
    assert_eq!(beside(&base), [".wordpress.hainit-previous", "wordpress"]);
}

/// Names in a directory, sorted.
fn beside(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_symlinked_docroot_is_refused_rather_than_swapped_away() {
    let root = tempfile::tempdir().unwrap();
    let bytes = mini_wordpress("6.1.9");
    put(root.path(), TARBALL, &bytes);
    std::fs::create_dir_all(root.path().join("srv/site")).unwrap();
    std::fs::create_dir_all(root.path().join("var/www")).unwrap();
    std::os::unix::fs::symlink("/srv/site", root.path().join("var/www/wordpress")).unwrap();
    let sys = HostSystem::without_chown(Root::new(root.path()));
    let node = Node::standard(OsId::Debian12, &web_yaml(TARBALL, &sha256(&bytes), ""));
    let e = TreeStep.check(&node.cx(), &sys).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Input);
    assert!(e.to_string().contains("web.docroot /var/www/wordpress is a symlink"), "{e}");
}

//! drbdadm judges the DRBD files `db.drbd.config` renders on every platform: `drbdadm -c FILE
//! dump all` parses them as the platform's kernel would (DRBD_DRIVER_VERSION_OVERRIDE picks the
//! 8.4 or 9 grammar, reference §3.1–3.3), and rejects a file of the other dialect.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output};

use hainit::dialect::DrbdDialect;
use hainit::engine::{Options, Step};
use hainit::platform::OsId;
use hainit::roles::db::disk::planned_partuuid;
use hainit::roles::db::drbd::{ConfigStep, NO_METADATA, UNCLEAN_METADATA};
use hainit::secrets::Purpose;

use super::disk::Loop;
use super::{assert_root, run, Node};

fn kernel_version(dialect: DrbdDialect) -> &'static str {
    match dialect {
        DrbdDialect::V84 => "8.4.11",
        DrbdDialect::V9 => "9.2.8",
    }
}

/// The files of `os` under `dir`, and a drbd.conf including them the way /etc/drbd.conf does.
fn rendered(os: OsId, dir: &Path) -> std::path::PathBuf {
    rendered_with(os, "\n", dir)
}

fn rendered_with(os: OsId, yaml: &str, dir: &Path) -> std::path::PathBuf {
    let node = Node::new(os, true, yaml);
    let cx = node.cx(Options::default());
    let files = ConfigStep.files(&cx).unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut main = String::new();
    for f in &files {
        let name = Path::new(&f.path).file_name().unwrap();
        let local = dir.join(name);
        std::fs::write(&local, f.content.bytes()).unwrap();
        main.push_str(&format!("include \"{}\";\n", local.display()));
    }
    assert!(files.iter().any(|f| f.path == "/etc/drbd.d/wpcluster.res"), "{files:?}");
    let conf = dir.join("drbd.conf");
    std::fs::write(&conf, main).unwrap();
    conf
}

fn dump(conf: &Path, version: &str) -> Output {
    Command::new("drbdadm")
        .env("DRBD_DRIVER_VERSION_OVERRIDE", version)
        .arg("-c")
        .arg(conf)
        .args(["dump", "all"])
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_platform_renders_a_resource_its_drbd_accepts() {
    for os in OsId::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let conf = rendered(os, tmp.path());
        let dialect = os.platform().drbd;
        let out = dump(&conf, kernel_version(dialect));
        let said = text(&out);
        assert!(out.status.success(), "{os} ({dialect:?}): drbdadm dump failed:\n{said}");
        // The dump is drbdadm's own reading of the file: the resource, both hosts, protocol C.
        for needle in ["resource wpcluster", "on db-a", "on db-b", "10.0.1.4:7789", "10.0.1.5:7789", "protocol"] {
            assert!(said.contains(needle), "{os}: {needle:?} missing from the dump:\n{said}");
        }
        let uuid = planned_partuuid(&Node::new(os, true, "\n").cx(Options::default()));
        assert!(said.contains(&format!("/dev/disk/by-partuuid/{uuid}")), "{os}:\n{said}");
        assert!(said.contains("usage-count no"), "{os}:\n{said}");
        // Replication authentication drbdadm accepts (a secret of 64 characters it would not).
        assert!(said.contains("cram-hmac-alg") && said.contains("sha256") && said.contains("shared-secret"), "{os}");
        // Without a fence device a split brain is never resolved by discarding a side's writes.
        assert!(!said.contains("discard-secondary"), "{os}:\n{said}");
        assert!(said.contains("after-sb-1pri") && said.contains("disconnect"), "{os}:\n{said}");
        // Only Pacemaker promotes: DRBD 9 does not promote a Secondary opened for writing.
        if dialect == DrbdDialect::V9 {
            assert!(said.contains("auto-promote") && said.contains(" no;"), "{os}:\n{said}");
        }
    }
}

/// With a fence device (here SBD) each platform's drbdadm reads `resource-and-stonith` and the
/// fence-peer handler with its timeouts.
#[test]
fn with_stonith_every_platform_freezes_io_until_the_peer_is_fenced() {
    let yaml = "db:\n  stonith: sbd\n  sbd_device: /dev/disk/by-id/scsi-sbd\n";
    for os in OsId::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let conf = rendered_with(os, yaml, tmp.path());
        let out = dump(&conf, kernel_version(os.platform().drbd));
        let said = text(&out);
        assert!(out.status.success(), "{os}: drbdadm dump failed:\n{said}");
        assert!(said.contains("fencing") && said.contains("resource-and-stonith"), "{os}:\n{said}");
        assert!(said.contains("--timeout 600 --dc-timeout 660"), "{os}:\n{said}");
        // STONITH makes sure the demoted side served no writes: its changes may be discarded.
        assert!(said.contains("discard-secondary"), "{os}:\n{said}");
    }
}

/// The resource file holds the replication secret: root-only and redacted in plans.
#[test]
fn the_resource_file_is_a_secret() {
    for os in OsId::ALL {
        let node = Node::new(os, true, "\n");
        let files = ConfigStep.files(&node.cx(Options::default())).unwrap();
        let res = files.iter().find(|f| f.path == "/etc/drbd.d/wpcluster.res").unwrap();
        assert_eq!(res.mode, 0o600, "{os}");
        assert!(res.content.is_secret(), "{os}");
        let secret = node.secrets.derive(Purpose::DrbdSharedSecret);
        let text = String::from_utf8_lossy(res.content.bytes()).into_owned();
        assert!(text.contains(&format!("shared-secret \"{}\";", &secret.expose()[..48])), "{os}");
    }
}

/// The judge can fail: each dialect's file is a parse error for the other kernel.
#[test]
fn a_file_of_the_other_dialect_is_refused() {
    for (os, wrong) in [(OsId::Debian12, DrbdDialect::V9), (OsId::El9, DrbdDialect::V84)] {
        assert_ne!(os.platform().drbd, wrong);
        let tmp = tempfile::tempdir().unwrap();
        let conf = rendered(os, tmp.path());
        let out = dump(&conf, kernel_version(wrong));
        let said = text(&out);
        assert!(!out.status.success(), "{os} file accepted by a {wrong:?} kernel:\n{said}");
        assert!(said.contains("Parse error"), "{os}:\n{said}");
    }
}

/// The lab's db-b partition after its VM was killed (its last 128 KiB: DRBD 8.4 internal metadata
/// whose activity log was never applied), as a loop device of the partition's size.
fn unclean_partition() -> Loop {
    const SIZE: u64 = 535_805_440;
    Loop::of(|image| {
        let gz = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drbd/unclean-v08-tail.gz"))
            .unwrap();
        let mut tail = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tail).unwrap();
        let mut f = std::fs::File::create(image).unwrap();
        f.set_len(SIZE - tail.len() as u64).unwrap();
        f.seek(SeekFrom::End(0)).unwrap();
        f.write_all(&tail).unwrap();
    })
}

/// `drbdadm dump-md RES` as db.drbd.metadata runs it, for a resource on `disk`, with the 8.4 kernel.
fn dump_md(dir: &Path, disk: &str) -> Output {
    let conf = dir.join("drbd.conf");
    std::fs::write(
        &conf,
        format!(
            "resource wpcluster {{\n  protocol C;\n  on db-a {{ device /dev/drbd9; disk {disk}; address 10.0.1.4:7789; meta-disk internal; }}\n  on db-b {{ device /dev/drbd9; disk /dev/null; address 10.0.1.5:7789; meta-disk internal; }}\n}}\n"
        ),
    )
    .unwrap();
    Command::new("drbdadm")
        .env("DRBD_DRIVER_VERSION_OVERRIDE", kernel_version(DrbdDialect::V84))
        .env("__DRBD_NODE__", "db-a")
        .arg("-c")
        .arg(&conf)
        .args(["dump-md", "wpcluster"])
        .output()
        .unwrap()
}

/// What db.drbd.metadata takes for existing metadata after a reset is what the real drbdmeta
/// says: dump-md fails and names the metadata unclean. An ext4 partition is not called so.
#[test]
fn drbdmeta_calls_the_metadata_of_a_reset_node_unclean() {
    assert_root("loop devices");
    let tmp = tempfile::tempdir().unwrap();
    let disk = unclean_partition();
    let out = dump_md(tmp.path(), &disk.dev);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(UNCLEAN_METADATA), "{}", text(&out));

    let ext4 = Loop::new();
    run(Command::new("mkfs.ext4").args(["-q", &ext4.dev]));
    let out = dump_md(tmp.path(), &ext4.dev);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(UNCLEAN_METADATA), "{}", text(&out));
    // The words db.drbd.metadata takes for "read the disk, no metadata there".
    assert!(String::from_utf8_lossy(&out.stderr).contains(NO_METADATA), "{}", text(&out));
}

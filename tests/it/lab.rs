//! The lab's inputs judged by hainit itself: the image has every package the roles install, and the
//! IMDS documents and config the lab gives its VMs resolve to the stack it means to build.

use std::path::Path;
use std::process::Command;

use hainit::platform::OsId;
use serde_json::Value;

use crate::common::fake_imds::{Document, FakeImds};
use crate::common::{hainit, stderr, stdout, TestRoot};

/// sha256 of the empty file: the placeholder tarball below.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_lab_image_has_every_package_of_both_roles() {
    let text = std::fs::read_to_string(repo().join("images/debian/packages.txt")).unwrap();
    let baked: Vec<&str> =
        text.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    let platform = OsId::Debian12.platform();
    let missing: Vec<&str> =
        platform.db.packages.iter().chain(platform.web.packages).copied().filter(|p| !baked.contains(p)).collect();
    assert!(missing.is_empty(), "images/debian/packages.txt lacks {missing:?} (the lab VMs cannot download them)");
}

const LAB_SECRET: &str = "lab-test-secret-0123456789abcdefghijklmnopqrstuv";

/// `scripts/lab/lab.py inputs DIR`: each VM's IMDS document and each tier's config (db.yaml,
/// web.yaml; the web tier's secrets derived by this build's hainit).
fn lab_inputs(dir: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .arg(repo().join("scripts/lab/lab.py"))
        .args(["inputs"])
        .arg(dir)
        .env("LAB_SECRET", LAB_SECRET)
        .env("LAB_HAINIT", env!("CARGO_BIN_EXE_hainit"))
        .output()
        .unwrap();
    assert!(out.status.success(), "lab.py inputs: {}", stderr(&out));
    stdout(&out).split_whitespace().map(String::from).collect()
}

#[test]
fn every_lab_vm_discovers_its_place_in_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let names = lab_inputs(dir.path());
    assert_eq!(names, ["db-a", "db-b", "web-1", "web-2"]);
    let mut seen = Vec::new();
    for name in &names {
        let root = TestRoot::new();
        let server = FakeImds::start(Document::File(dir.path().join(format!("{name}.imds.json"))));
        let tier = if name.starts_with("web") { "web" } else { "db" };
        let config_flag = format!("--config={}", dir.path().join(format!("{tier}.yaml")).display());
        let out = hainit(&server.url(), root.path(), "debian12", &[&config_flag, "discover", "--json"]);
        assert!(out.status.success(), "{name}: exit {:?}\n{}", out.status.code(), stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["node"]["name"], name.as_str(), "{v}");
        assert_eq!(v["cluster"], "wpcluster");
        assert_eq!(v["vip"], "10.0.1.10", "the web tier's DB_HOST is the ILB VIP");
        seen.push((v["role"].as_str().unwrap().to_string(), v["node"]["ip"].as_str().unwrap().to_string()));
        if v["role"] == "db" {
            assert_eq!(v["leader"], "db-a");
            let peers: Vec<&str> = v["peers"].as_array().unwrap().iter().map(|p| p["ip"].as_str().unwrap()).collect();
            assert_eq!(peers, ["10.0.1.4", "10.0.1.5"]);
        }
        if v["role"] == "web" {
            // The lab's NFS server (scripts/lab/labkit/nfs.py) is the web tier's share.
            assert_eq!(v["share"], "10.0.2.200:/hainit/wpcontent", "{v}");
            // The web tier's config is valid for hainit: an unknown key, a bad value or a missing
            // secret would be exit 2. (A db plan needs this host to be db-a with a data disk.)
            root.write("/usr/share/hainit/defaults.yaml", &format!("web:\n  wordpress_sha256: \"{EMPTY_SHA256}\"\n"));
            root.write("/usr/share/hainit/wordpress.tar.gz", "");
            let plan = hainit(&server.url(), root.path(), "debian12", &[&config_flag, "plan", "--json"]);
            assert_ne!(plan.status.code(), Some(2), "{name}: the lab config is bad input:\n{}", stderr(&plan));
        }
    }
    let expected = [("db", "10.0.1.4"), ("db", "10.0.1.5"), ("web", "10.0.2.4"), ("web", "10.0.2.5")];
    assert_eq!(seen, expected.map(|(r, ip)| (r.to_string(), ip.to_string())));
}

/// The lab hands its web VMs what deploy-azure.sh hands Azure's: the web tier's secrets, never
/// the shared secret nor a value only the db tier may hold.
#[test]
fn the_lab_web_vms_get_only_the_web_tier_secrets() {
    let dir = tempfile::tempdir().unwrap();
    lab_inputs(dir.path());
    let web = std::fs::read_to_string(dir.path().join("web.yaml")).unwrap();
    let db = std::fs::read_to_string(dir.path().join("db.yaml")).unwrap();
    assert!(db.contains(LAB_SECRET), "the db VMs hold the shared secret");
    for forbidden in crate::azure::cloud_init::db_tier_secrets(LAB_SECRET) {
        assert!(!web.contains(&forbidden), "the lab's web config holds a db-tier secret");
    }
    let config = hainit::config::Config::from_yaml(&web, "web.yaml").unwrap();
    let secrets = config.secrets(hainit::inventory::Role::Web, |_| Ok(None)).unwrap();
    let shared = hainit::secrets::SharedSecret::try_new(LAB_SECRET, "test").unwrap();
    for p in hainit::roles::tier_purposes(hainit::inventory::Role::Web) {
        assert_eq!(secrets.derive(p), shared.derive(p), "{p:?}");
    }
}

/// The lab waits and reports with its own copy of the timing profiles (it needs them before any
/// cluster exists): they are hainit's.
#[test]
fn the_labs_timing_profiles_are_hainits() {
    use hainit::roles::db::timing::{AZURE, FAST};
    let out = Command::new("python3")
        .args(["-c", "import json, sys; sys.path.insert(0, sys.argv[1]); from labkit import lab; print(json.dumps(lab.TIMING_PROFILES))"])
        .arg(repo().join("scripts/lab"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lab: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for (name, t) in [("azure", AZURE), ("fast", FAST)] {
        let p = &lab[name];
        assert_eq!(p["token_ms"], t.token_ms, "{name}");
        assert_eq!(p["consensus_ms"], t.consensus_ms, "{name}");
        assert_eq!(p["fence_delay_s"], t.fence_delay_secs, "{name}");
    }
    assert_eq!(lab.as_object().unwrap().len(), 2, "{lab}");
}

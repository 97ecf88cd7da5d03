//! Shared helpers for the integration tests.

#![allow(dead_code)]

pub mod daemon;
pub mod dies_after;
pub mod fake_imds;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

pub const SECRET: &str = "lab-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

pub const DB_PEERS: &str = "db-a=10.0.1.4,db-b=10.0.1.5";
pub const VIP: &str = "10.0.1.10";
/// A pinned WordPress sha256 and a URL for the web role's config (plan only shows the download).
pub const WP_SHA256: &str = "8f88b0ca608ec0d530890bdbd3ea9027b3e0e828639579f1cb5425a65ba2f634";
pub const WP_URL: &str = "http://127.0.0.1:9/wordpress.tar.gz";

/// Run `cmd` with `input` on its stdin; its exit status, stdout and stderr.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// An IMDS instance document shaped like the real one (reference §1.7).
pub fn instance_doc(host: &str, ip: &str, tags: &[(&str, &str)]) -> String {
    let tags_list: Vec<Value> = tags.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
    let flat: Vec<String> = tags.iter().map(|(n, v)| format!("{n}:{v}")).collect();
    json!({
        "compute": {
            "azEnvironment": "AzurePublicCloud",
            "location": "westeurope",
            "name": format!("vm-{host}"),
            "osProfile": {"adminUsername": "azops", "computerName": host, "disablePasswordAuthentication": "true"},
            "resourceGroupName": "rg-wp",
            "resourceId": format!("/subscriptions/7d1f0c3e-52b4-4a2e-9d0b-3c8f1e6a9b21/resourceGroups/rg-wp/providers/Microsoft.Compute/virtualMachines/vm-{host}"),
            "storageProfile": {"dataDisks": [{"lun": "0", "name": format!("vm-{host}-data0"), "diskSizeGB": "32", "createOption": "Empty"}]},
            "subscriptionId": "7d1f0c3e-52b4-4a2e-9d0b-3c8f1e6a9b21",
            "tags": flat.join(";"),
            "tagsList": tags_list,
            "userData": "",
            "vmId": "6c1b9f2e-0d47-4b8a-a3e5-91f2c7d04a18",
            "vmSize": "Standard_D2s_v5",
            "zone": ""
        },
        "network": {"interface": [{
            "ipv4": {"ipAddress": [{"privateIpAddress": ip, "publicIpAddress": ""}],
                     "subnet": [{"address": ip.rsplit_once('.').map(|(n, _)| format!("{n}.0")).unwrap_or_default(), "prefix": "24"}]},
            "ipv6": {"ipAddress": []},
            "macAddress": "6045BDF2A1C7"
        }]}
    })
    .to_string()
}

/// The IMDS document that makes this machine the db leader (plan and render check `uname -n`);
/// its peer sits on loopback, where nothing answers (plan probes its pcsd port).
pub fn this_host_as_db_leader_doc() -> String {
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    let peers = format!("{host}=10.0.1.4,zz-peer=127.0.0.2");
    instance_doc(
        &host,
        "10.0.1.4",
        &[
            ("hainit-role", "db"),
            ("hainit-cluster", "wpcluster"),
            ("hainit-peers", &peers),
            ("hainit-vip", "10.0.1.10"),
        ],
    )
}

pub fn db_doc(host: &str, ip: &str) -> String {
    instance_doc(
        host,
        ip,
        &[("hainit-role", "db"), ("hainit-cluster", "wpcluster"), ("hainit-peers", DB_PEERS), ("hainit-vip", VIP)],
    )
}

/// A web node's shared uploads, as scripts/deploy-azure.sh tags it (an Azure Files NFS export).
pub const SHARE: &str = "hainitst0123.file.core.windows.net:/hainitst0123/wpcontent";

pub fn web_doc(host: &str, ip: &str) -> String {
    instance_doc(
        host,
        ip,
        &[("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", VIP), ("hainit-share", SHARE)],
    )
}

/// A throw-away `--root` with a config file holding the shared secret.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = TestRoot { dir };
        root.write(
            "/etc/hainit/hainit.yaml",
            &format!("secret: {SECRET}\nweb:\n  wordpress_url: {WP_URL}\n  wordpress_sha256: {WP_SHA256}\n"),
        );
        root.write("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        root.write("/etc/group", "root:x:0:\n");
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.host_path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn host_path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }
}

/// Run the hainit binary with `--imds-url URL --root ROOT [--os OS]` and more arguments, with
/// the test systemctl (tests/fixtures/systemd: every unit not installed) and rpm (tests/fixtures/rpm:
/// no package installed, for EL plans on this host) first on PATH.
pub fn hainit(url: &str, root: &Path, os: &str, args: &[&str]) -> Output {
    let os_flag: &[&str] = if os.is_empty() { &[] } else { &["--os", os] };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let path = format!(
        "{}:{}:{}",
        fixtures.join("systemd").display(),
        fixtures.join("rpm").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_hainit"))
        .args(["--imds-url", url, "--root"])
        .arg(root)
        .args(os_flag)
        .args(args)
        .env_remove("HAINIT_IMDS_URL")
        .env("PATH", path)
        .output()
        .expect("run hainit")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Compare with a golden file; `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}; run `make golden`", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the output ({} vs {} lines); run `make golden` and review the diff\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Inventory, config and secret for a node described by an IMDS document (for library tests).
pub fn parts(
    doc_json: &str,
    os: hainit::platform::OsId,
) -> (hainit::inventory::Inventory, hainit::config::Config, hainit::secrets::SharedSecret) {
    let doc = hainit::imds::InstanceDoc::from_json(doc_json).unwrap();
    let config = hainit::config::Config::default();
    let inv = hainit::inventory::Inventory::resolve(&doc, &config, &Default::default(), os).unwrap();
    (inv, config, hainit::secrets::SharedSecret::try_new(SECRET, "test").unwrap())
}

/// Capture everything `tracing` logs while `f` runs (debug level, text and JSON).
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .json()
        .with_writer(move || writer.clone())
        .finish();
    // Another test thread may register a callsite (with no subscriber of its own) while this one
    // installs its scoped subscriber; rebuilding the cache inside the scope keeps that race from
    // disabling the callsite here.
    let result = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (result, text)
}

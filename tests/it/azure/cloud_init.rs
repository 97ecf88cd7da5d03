//! cloud-init/db.yaml and web.yaml (judged by `cloud-init schema` and hainit's config parser) and
//! cloud-init/hainit-fetch (run against a local HTTP server: the sha256 gate, the retry policy).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use hainit::config::{Config, DbConfig};
use hainit::inventory::Role;
use hainit::secrets::{Purpose, Secrets, SharedSecret};

use super::fake::{repo, text};

/// The content of the write_files entry for `path` in a cloud-config.
pub fn file_of(cloud_config: &str, path: &str) -> String {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(cloud_config).unwrap();
    let files = doc["write_files"].as_sequence().unwrap();
    let entry = files.iter().find(|f| f["path"].as_str() == Some(path)).unwrap_or_else(|| panic!("no {path}"));
    entry["content"].as_str().unwrap().to_string()
}

/// /etc/hainit/hainit.yaml of a rendered cloud-config, parsed by hainit.
pub fn hainit_config_of(cloud_config: &str) -> Config {
    Config::from_yaml(&file_of(cloud_config, "/etc/hainit/hainit.yaml"), "custom-data").unwrap()
}

pub fn assert_schema_valid(cloud_config: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("user-data.yaml");
    std::fs::write(&file, cloud_config).unwrap();
    let out = Command::new("cloud-init").args(["schema", "--config-file"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "cloud-init schema: {}{}", text(&out.stdout), text(&out.stderr));
}

fn template(role: &str) -> String {
    std::fs::read_to_string(repo(&format!("cloud-init/{role}.yaml"))).unwrap()
}

/// What `hainit secrets --tier web` prints for `secret`.
pub fn web_secrets_of(secret: &str) -> String {
    let master = SharedSecret::try_new(secret, "test").unwrap();
    hainit::secrets::tier_json(&master, &hainit::roles::tier_purposes(Role::Web))
}

/// Every value `secret` derives that only the db tier may hold, and the secret itself.
pub fn db_tier_secrets(secret: &str) -> Vec<String> {
    let master = SharedSecret::try_new(secret, "test").unwrap();
    let mut out: Vec<String> = [Purpose::HaclusterPassword, Purpose::MariadbRoot]
        .into_iter()
        .map(|p| master.derive(p).expose().to_string())
        .collect();
    out.push(hainit::secrets::hex(&master.derive_bytes(Purpose::CorosyncAuthkey, 32)));
    out.push(secret.to_string());
    out
}

/// What deploy-azure.sh does to a template, with hainit's defaults.
fn fill(t: &str, secret: &str) -> String {
    t.replace("@@SECRET@@", secret)
        .replace("@@WEB_SECRETS@@", &web_secrets_of(secret))
        .replace("@@DB_PORT@@", "3306")
        .replace("@@PROBE_PORT@@", &DbConfig::default().probe_port.to_string())
        .replace("@@WEB_SUBNET@@", &DbConfig::default().web_subnet)
        .replace("@@SITE_URL@@", "http://203.0.113.10")
        .replace("@@HAINIT_URL@@", "")
        .replace("@@HAINIT_SHA256@@", "")
        .replace("@@STONITH@@", "auto")
        .replace("@@SBD_DEVICE@@", "null")
}

#[test]
fn templates_pass_cloud_init_schema_before_and_after_filling_in() {
    for role in ["db", "web"] {
        assert_schema_valid(&template(role));
        assert_schema_valid(&fill(&template(role), "0123456789abcdef0123456789abcdef"));
    }
    // The judge can fail: a cloud-config with a wrong type is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, template("db").replace("permissions: \"0600\"", "permissions: 0600")).unwrap();
    let out = Command::new("cloud-init").args(["schema", "--config-file"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn filled_templates_give_hainit_a_valid_config_with_the_secrets_in_a_0600_file() {
    let secret = "0123456789abcdef0123456789abcdef-xyz";
    let master = SharedSecret::try_new(secret, "test").unwrap();
    for (role, want) in [("db", Role::Db), ("web", Role::Web)] {
        let t = template(role);
        let filled = fill(&t, secret);
        let config = hainit_config_of(&filled);
        assert_eq!(config.role, Some(want));
        let secrets = config.secrets(want, |_| Ok(None)).unwrap();
        match want {
            Role::Db => {
                assert_eq!(filled.matches(secret).count(), 1, "db: the secret only in hainit.yaml");
                assert!(matches!(secrets, Secrets::Master(_)));
            }
            Role::Web => {
                assert_web_custom_data_holds_no_master_secret(&filled, secret);
                assert!(matches!(secrets, Secrets::Scoped(_)));
                for p in hainit::roles::tier_purposes(Role::Web) {
                    assert_eq!(secrets.derive(p), master.derive(p), "{p:?}");
                }
            }
        }
        assert_eq!(config.tier_warning(want), None, "{role}");
        assert_eq!(config.database.port, 3306);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&filled).unwrap();
        let entry = doc["write_files"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str() == Some("/etc/hainit/hainit.yaml"))
            .unwrap();
        assert_eq!(entry["permissions"].as_str(), Some("0600"));
        assert_eq!(entry["owner"].as_str(), Some("root:root"));
        assert_eq!(doc["runcmd"][0][0].as_str(), Some("/usr/local/libexec/hainit-fetch"));
        // Unfilled, hainit refuses it (a forgotten placeholder is bad input, not a weak secret).
        assert!(Config::from_yaml(&file_of(&t, "/etc/hainit/hainit.yaml"), "x")
            .map_or(true, |c| c.secrets(want, |_| Ok(None)).is_err()));
    }
}

/// Web custom-data carries the web tier's values only: not the shared secret, nor anything only
/// the db tier may hold (hacluster, MariaDB root, the corosync authkey).
pub fn assert_web_custom_data_holds_no_master_secret(custom_data: &str, secret: &str) {
    for forbidden in db_tier_secrets(secret) {
        assert!(!custom_data.contains(&forbidden), "web custom-data holds a db-tier secret");
    }
    let config = hainit_config_of(custom_data);
    assert_eq!((config.secret.as_deref(), config.secret_file.as_deref()), (None, None));
    let given: Vec<String> = config.web_secrets.unwrap().into_keys().collect();
    let mut tier: Vec<String> = hainit::roles::tier_purposes(Role::Web).iter().map(|p| p.label()).collect();
    tier.sort();
    assert_eq!(given, tier, "exactly the web tier's purposes");
}

#[test]
fn web_custom_data_holds_no_master_secret() {
    let secret = "another-secret-0123456789abcdef0123456789";
    let filled = fill(&template("web"), secret);
    assert_web_custom_data_holds_no_master_secret(&filled, secret);
    assert!(!template("web").contains("@@SECRET@@"), "web.yaml has no place for the shared secret");
}

#[test]
fn the_embedded_scripts_are_hainit_fetch_and_hainit_boot() {
    let fetch = std::fs::read_to_string(repo("cloud-init/hainit-fetch")).unwrap();
    let boot = std::fs::read_to_string(repo("images/systemd/hainit-boot")).unwrap();
    for role in ["db", "web"] {
        assert_eq!(file_of(&template(role), "/usr/local/libexec/hainit-fetch"), fetch, "{role}.yaml");
        assert_eq!(file_of(&template(role), "/usr/local/libexec/hainit-boot"), boot, "{role}.yaml");
    }
}

/// A one-file HTTP server on 127.0.0.1 that counts requests; stopped when dropped.
pub struct Serve {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    pub fn new(body: Vec<u8>) -> Serve {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                h.fetch_add(1, Ordering::SeqCst);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        Serve { port, hits, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hainit", self.port)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hainit::secrets::hex(&Sha256::digest(b))
}

/// A stand-in for the hainit binary: records its arguments, exits with the codes listed in `codes`
/// one per call (the last one repeats).
fn fake_hainit(calls: &Path, codes: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\necho \"$*\" >> {c}\nn=$(wc -l < {c})\nset -- {codes}\nshift $((n - 1 < $# - 1 ? n - 1 : $# - 1))\nexit $1\n",
        c = calls.display()
    )
    .into_bytes()
}

struct FetchRun {
    dir: tempfile::TempDir,
}

impl FetchRun {
    fn new(conf: &str) -> FetchRun {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fetch.env"), conf).unwrap();
        FetchRun { dir }
    }
    fn bin(&self) -> std::path::PathBuf {
        self.dir.path().join("sbin/hainit")
    }
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default().lines().map(String::from).collect()
    }
    fn run(&self) -> Output {
        let mut cmd = Command::new("sh");
        cmd.arg(repo("cloud-init/hainit-fetch"))
            .env("HAINIT_FETCH_CONF", self.dir.path().join("fetch.env"))
            .env("HAINIT", self.bin())
            .env("HAINIT_UNIT", self.dir.path().join("hainit.service"))
            .env("HAINIT_BOOT", repo("images/systemd/hainit-boot"))
            .env("HAINIT_BOOT_DELAY", "0")
            .env("HAINIT_BOOT_ATTEMPTS", "4");
        for k in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            cmd.env_remove(k);
        }
        cmd.output().unwrap()
    }
}

#[test]
fn stock_image_fetches_verifies_installs_and_runs_hainit() {
    let run = FetchRun::new("");
    // exit 3 twice (the peer is not there yet), then converged.
    let body = fake_hainit(&run.dir.path().join("calls"), "3 3 0");
    let server = Serve::new(body.clone());
    std::fs::write(run.dir.path().join("fetch.env"), format!("url={}\nsha256={}\n", server.url(), sha256_hex(&body)))
        .unwrap();

    let out = run.run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(run.bin()).unwrap(), body);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(run.bin()).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(run.calls(), ["apply", "apply", "apply"], "exit 3 is retried until hainit converges");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // A re-run with the right binary in place downloads nothing.
    std::fs::remove_file(run.dir.path().join("calls")).unwrap();
    let out = run.run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(run.calls().len(), 3);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // A peer that never comes: give up after HAINIT_BOOT_ATTEMPTS with exit 3.
    let stuck = FetchRun::new("");
    let body = fake_hainit(&stuck.dir.path().join("calls"), "3");
    let server = Serve::new(body.clone());
    std::fs::write(stuck.dir.path().join("fetch.env"), format!("url={}\nsha256={}\n", server.url(), sha256_hex(&body)))
        .unwrap();
    let out = stuck.run();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(stuck.calls().len(), 4);
}

#[test]
fn a_binary_with_the_wrong_sha256_is_never_installed_or_run() {
    let run = FetchRun::new("");
    let body = fake_hainit(&run.dir.path().join("calls"), "0");
    let server = Serve::new(body.clone());
    let wrong = sha256_hex(b"something else");
    std::fs::write(run.dir.path().join("fetch.env"), format!("url={}\nsha256={wrong}\n", server.url())).unwrap();
    let out = run.run();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("sha256 mismatch"), "{}", text(&out.stderr));
    assert!(!run.bin().exists());
    assert!(std::fs::read_dir(run.bin().parent().unwrap()).unwrap().next().is_none(), "no partial download left");
    assert!(run.calls().is_empty());

    // A malformed pin: refused before any download.
    std::fs::write(run.dir.path().join("fetch.env"), format!("url={}\nsha256=ABC\n", server.url())).unwrap();
    let out = run.run();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "only the first run downloaded");
}

#[test]
fn baked_images_leave_hainit_to_its_unit_and_step_failures_are_not_retried() {
    // Baked: the unit runs hainit; hainit-fetch does nothing, even with a url.
    let run = FetchRun::new("url=http://127.0.0.1:9/never\nsha256=\n");
    std::fs::create_dir_all(run.bin().parent().unwrap()).unwrap();
    std::fs::write(run.bin(), fake_hainit(&run.dir.path().join("calls"), "0")).unwrap();
    Command::new("chmod").arg("+x").arg(run.bin()).status().unwrap();
    std::fs::write(run.dir.path().join("hainit.service"), "[Unit]\n").unwrap();
    let out = run.run();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(run.calls().is_empty());

    // A binary but no unit and no url (installed by hand): run it; exit 1 is not retried.
    std::fs::remove_file(run.dir.path().join("hainit.service")).unwrap();
    std::fs::write(run.dir.path().join("fetch.env"), "url=\nsha256=\n").unwrap();
    std::fs::write(run.bin(), fake_hainit(&run.dir.path().join("calls"), "1")).unwrap();
    let out = run.run();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(run.calls(), ["apply"]);

    // Nothing to run at all: bad input.
    let empty = FetchRun::new("url=\nsha256=\n");
    let out = empty.run();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no "), "{}", text(&out.stderr));
}

//! The binary end to end: flags, exit codes, JSON shapes, golden output, secrets kept out.

use std::time::{Duration, Instant};

use hainit::secrets::{Purpose, SharedSecret};
use serde_json::Value;

use crate::common::fake_imds::{Document, FakeImds, Fault};
use crate::common::{
    assert_golden, db_doc, hainit, instance_doc, stderr, stdout, this_host_as_db_leader_doc, web_doc, TestRoot, SECRET,
    WP_SHA256, WP_URL,
};

fn imds(doc: String) -> FakeImds {
    FakeImds::start(Document::Text(doc))
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "exit {:?}\n{}", out.status.code(), stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[test]
fn discover_json_has_the_contract_shape() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-b", "10.0.1.5"));
    let v = json(&hainit(&s.url(), root.path(), "debian12", &["discover", "--json"]));
    assert_eq!(v["role"], "db");
    assert_eq!(v["node"], serde_json::json!({"name": "db-b", "ip": "10.0.1.5"}));
    assert_eq!(v["cluster"], "wpcluster");
    assert_eq!(v["peers"], serde_json::json!([{"name": "db-a", "ip": "10.0.1.4"}, {"name": "db-b", "ip": "10.0.1.5"}]));
    assert_eq!(v["vip"], "10.0.1.10");
    assert_eq!(v["leader"], "db-a");
    assert_eq!(v["platform"], "debian12");

    let s = imds(web_doc("web-1", "10.0.2.4"));
    let v = json(&hainit(&s.url(), root.path(), "el9", &["discover", "--json"]));
    assert_eq!((v["role"].as_str(), v["leader"].is_null(), v["platform"].as_str()), (Some("web"), true, Some("el9")));
}

#[test]
fn discover_golden() {
    let root = TestRoot::new();
    for (name, doc) in [("db-a", db_doc("db-a", "10.0.1.4")), ("web-1", web_doc("web-1", "10.0.2.4"))] {
        let s = imds(doc);
        let out = hainit(&s.url(), root.path(), "debian12", &["discover", "--json"]);
        assert_golden(&format!("discover/{name}.json"), &stdout(&out));
        let out = hainit(&s.url(), root.path(), "debian12", &["discover"]);
        assert_golden(&format!("discover/{name}.txt"), &stdout(&out));
    }
}

#[test]
fn plan_json_has_the_contract_shape() {
    let root = TestRoot::new();
    let s = imds(web_doc("web-1", "10.0.2.4"));
    let v = json(&hainit(&s.url(), root.path(), "debian12", &["plan", "--json"]));
    let steps = v["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for step in steps {
        assert!(step["name"].is_string());
        assert!(matches!(step["state"].as_str(), Some("ok" | "change")), "{step}");
        for a in step["actions"].as_array().unwrap() {
            if a["type"] == "command" {
                assert!(a["argv"].as_array().unwrap().iter().all(Value::is_string), "{a}");
            }
            if a["type"] == "file" {
                assert!(a["path"].as_str().unwrap().starts_with('/'));
                assert_eq!(a["mode"].as_str().unwrap().len(), 4, "octal string: {a}");
                assert!(a["owner"].is_string());
                // A file holding secrets shows no hash of them (a guessing oracle).
                let sha = a["sha256"].as_str().unwrap();
                let secret = a["path"].as_str().unwrap().ends_with("/wp-config.php");
                assert!(if secret { sha == "<redacted>" } else { sha.len() == 64 }, "{a}");
            }
        }
    }
    assert_eq!(steps[0]["name"], "common.sysctl");
    assert_eq!(steps[0]["actions"][0]["path"], "/etc/sysctl.d/90-hainit.conf");
}

#[test]
fn render_writes_files_under_out_and_plan_sees_them_under_root() {
    let root = TestRoot::new();
    let s = imds(web_doc("web-1", "10.0.2.4"));
    let out = hainit(&s.url(), root.path(), "debian12", &["render", "--out", root.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(root.host_path("/etc/sysctl.d/90-hainit.conf")).unwrap();
    assert!(text.contains("net.ipv4.tcp_timestamps = 0"));
    // With the file in place under --root, plan only wants the live setting applied.
    root.write("/proc/sys/net/ipv4/tcp_timestamps", "0\n");
    let v = json(&hainit(&s.url(), root.path(), "debian12", &["plan", "--json"]));
    assert_eq!(v["steps"][0]["state"], "ok", "{v}");
}

#[test]
fn bad_input_exits_2_with_a_message_naming_it() {
    let root = TestRoot::new();
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (instance_doc("db-a", "10.0.1.4", &[("hainit-role", "cache")]), vec!["discover"], "\"cache\""),
        (
            instance_doc(
                "db-a",
                "10.0.1.4",
                &[("hainit-role", "db"), ("hainit-cluster", "c"), ("hainit-peers", "db-a=10.0.1.4")],
            ),
            vec!["discover"],
            "exactly two peers",
        ),
        (
            db_doc("db-a", "10.0.1.4"),
            vec!["--config", "/nonexistent/hainit.yaml", "discover"],
            "/nonexistent/hainit.yaml",
        ),
        (db_doc("db-a", "10.0.1.4"), vec!["--os", "sles15", "discover"], "sles15"),
        (db_doc("db-a", "10.0.1.4"), vec!["--role", "cache", "discover"], "cache"),
        (db_doc("db-a", "10.0.1.4"), vec!["frobnicate"], "frobnicate"),
    ];
    for (doc, args, want) in cases {
        let s = imds(doc);
        let os = if args.contains(&"--os") { "" } else { "debian12" };
        let out = hainit(&s.url(), root.path(), os, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: stderr lacks {want}: {}", stderr(&out));
    }
}

#[test]
fn config_errors_name_the_key_and_line() {
    let root = TestRoot::new();
    root.write("/etc/hainit/hainit.yaml", &format!("secret: {SECRET}\ndb:\n  drbd_prot: 7789\n"));
    let s = imds(db_doc("db-a", "10.0.1.4"));
    let out = hainit(&s.url(), root.path(), "debian12", &["discover"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("drbd_prot") && stderr(&out).contains("line 3"), "{}", stderr(&out));

    root.write("/etc/hainit/hainit.yaml", "secret: short\n");
    let out = hainit(&s.url(), root.path(), "debian12", &["plan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at least 32"), "{}", stderr(&out));
}

#[test]
fn unsupported_os_release_exits_2_listing_the_supported() {
    let root = TestRoot::new();
    root.write("/etc/os-release", "ID=ubuntu\nVERSION_ID=\"24.04\"\n");
    let s = imds(db_doc("db-a", "10.0.1.4"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hainit"))
        .args(["--imds-url", &s.url(), "--root", root.path().to_str().unwrap(), "discover"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("centos7, el8, el9, debian12") && stderr(&out).contains("ubuntu"),
        "{}",
        stderr(&out)
    );
    root.write("/etc/os-release", "ID=rocky\nVERSION_ID=\"9.4\"\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hainit"))
        .args(["--imds-url", &s.url(), "--root", root.path().to_str().unwrap(), "discover", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["platform"], "el9");
}

#[test]
fn a_hanging_imds_exits_3_shortly_after_the_deadline() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-a", "10.0.1.4"));
    s.always(Some(Fault::Hang(Duration::from_secs(60))));
    let started = Instant::now();
    let out = hainit(&s.url(), root.path(), "debian12", &["--imds-deadline", "2", "discover"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn proxy_settings_in_the_environment_are_ignored() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-a", "10.0.1.4"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hainit"))
        .args(["--imds-url", &s.url(), "--root", root.path().to_str().unwrap(), "--os", "debian12", "discover"])
        .env("http_proxy", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn imds_url_comes_from_the_environment_too() {
    let root = TestRoot::new();
    let s = imds(web_doc("web-1", "10.0.2.4"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hainit"))
        .args(["--root", root.path().to_str().unwrap(), "--os", "debian12", "discover", "--json"])
        .env("HAINIT_IMDS_URL", s.url())
        .output()
        .unwrap();
    assert_eq!(json(&out)["node"]["name"], "web-1");
}

/// No output or log of any command shows the shared secret or anything derived from it.
#[test]
fn secrets_never_appear_in_output_or_logs() {
    let shared = SharedSecret::try_new(SECRET, "test").unwrap();
    let mut forbidden: Vec<String> =
        [Purpose::HaclusterPassword, Purpose::MariadbRoot, Purpose::WordpressDb, Purpose::WordpressAdmin]
            .into_iter()
            .map(|p| shared.derive(p).expose().to_string())
            .collect();
    forbidden.push(SECRET.to_string());
    // The db node is this machine, with /dev/null standing in for a blank data disk, so plan and
    // render run the whole db role.
    let db = this_host_as_db_leader_doc();
    for (os, doc) in [("debian12", db), ("centos7", web_doc("web-1", "10.0.2.4"))] {
        let root = TestRoot::new();
        let config = std::fs::read_to_string(root.host_path("/etc/hainit/hainit.yaml")).unwrap();
        root.write("/etc/hainit/hainit.yaml", &format!("{config}db:\n  data_disk: /dev/null\n"));
        let out_dir = tempfile::tempdir().unwrap();
        let s = imds(doc);
        s.set_identity(true); // the db node fences with fence_azure_arm
        for args in [
            vec!["-v", "discover"],
            vec!["-v", "discover", "--json"],
            vec!["-v", "plan"],
            vec!["-v", "plan", "--json"],
            vec!["-v", "--log-format", "json", "plan", "--json"],
            vec!["-v", "render", "--out", out_dir.path().to_str().unwrap()],
            vec!["-v", "status", "--json"],
        ] {
            let out = hainit(&s.url(), root.path(), os, &args);
            // `status` exits 1 here: nothing runs on this test root (FAIL items).
            let ok = if args.contains(&"status") { Some(1) } else { Some(0) };
            assert_eq!(out.status.code(), ok, "{os} {args:?}: {}", stderr(&out));
            let all = format!("{}{}", stdout(&out), stderr(&out));
            for f in &forbidden {
                assert!(!all.contains(f.as_str()), "{os} {args:?} printed a secret");
            }
        }
    }
}

/// A db node needs its data disk and its host name to match the tags before anything runs: on an
/// empty root `plan` is bad input that says so (db plans are golden-tested on the fake system).
#[test]
fn db_plan_on_a_machine_without_data_disk_is_bad_input() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-a", "10.0.1.4"));
    s.set_identity(true);
    let out = hainit(&s.url(), root.path(), "debian12", &["plan", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("uname -n") || err.contains("data disk"), "{err}");
}

/// Every file under `dir` with its content, relative to `dir`.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A db VM with `db.stonith: auto` (the default) and no managed identity (the IMDS identity
/// endpoint answers 400 "Identity not found") is refused before anything is touched: no guess
/// that STONITH may be off. The message names the identity and both ways out.
#[test]
fn a_db_node_without_a_managed_identity_is_refused_and_nothing_is_touched() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-a", "10.0.1.4"));
    let before = tree(root.path());
    for args in [vec!["plan"], vec!["apply"], vec![]] {
        let out = hainit(&s.url(), root.path(), "debian12", &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("no managed identity") && err.contains("VM vm-db-a"), "{err}");
        assert!(err.contains("fence role") && err.contains("`db.stonith: off`"), "both ways out: {err}");
        let mut after = tree(root.path());
        after.remove("run/hainit.lock"); // apply takes the node's lock first
        assert_eq!(after, before, "{args:?} changed the root");
    }
    // The identity endpoint was asked; nothing else but the instance document.
    assert!(s.requests().iter().any(|r| r.target.starts_with("/metadata/identity/oauth2/token")));

    // An IMDS that fails on the identity endpoint is no answer: retried, then exit 3.
    s.set_identity(true);
    s.always(Some(Fault::Status(500)));
    let out = hainit(&s.url(), root.path(), "debian12", &["--imds-deadline", "2", "plan"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // `db.stonith: off` written down is a choice: past the fencing check (to the host name check).
    s.always(None);
    s.set_identity(false);
    let config = std::fs::read_to_string(root.host_path("/etc/hainit/hainit.yaml")).unwrap();
    root.write("/etc/hainit/hainit.yaml", &format!("{config}db:\n  stonith: \"off\"\n"));
    let out = hainit(&s.url(), root.path(), "debian12", &["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("uname -n") && !stderr(&out).contains("managed identity"), "{}", stderr(&out));
}

#[test]
fn empty_azure_ids_are_refused_where_fencing_needs_them() {
    let root = TestRoot::new();
    for field in ["subscriptionId", "resourceGroupName"] {
        let mut doc: Value = serde_json::from_str(&db_doc("db-a", "10.0.1.4")).unwrap();
        doc["compute"][field] = "".into();
        let s = imds(doc.to_string());
        s.set_identity(true);
        let out = hainit(&s.url(), root.path(), "debian12", &["plan"]);
        assert_eq!(out.status.code(), Some(2), "{field}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("compute.{field} is empty")), "{}", stderr(&out));
    }
    // The VM name map names nodes of the pair: a typo would fence by a guessed name.
    let s = imds(db_doc("db-a", "10.0.1.4"));
    s.set_identity(true);
    let config = std::fs::read_to_string(root.host_path("/etc/hainit/hainit.yaml")).unwrap();
    root.write("/etc/hainit/hainit.yaml", &format!("{config}db:\n  vm_names: {{db-x: vm-db-b}}\n"));
    let out = hainit(&s.url(), root.path(), "debian12", &["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("db.vm_names has an entry for \"db-x\""), "{}", stderr(&out));
}

/// `status` exits 1 when an item is FAIL (here: a db node with no DRBD at all), after printing
/// the report; the error line names the failed items.
#[test]
fn status_with_a_fail_item_exits_1() {
    let root = TestRoot::new();
    let s = imds(db_doc("db-a", "10.0.1.4"));
    let out = hainit(&s.url(), root.path(), "debian12", &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["level"], "fail");
    assert!(stderr(&out).contains("FAIL: ") && stderr(&out).contains("drbd"), "{}", stderr(&out));
}

/// `hainit secrets --tier web` needs no IMDS; it prints the web tier's values, which a web node
/// then holds instead of the shared secret (and plans exactly as one with the shared secret).
#[test]
fn web_nodes_run_on_the_web_tier_secrets_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let run = |args: &[&str], stdin: &str| {
        crate::common::output_with_stdin(
            std::process::Command::new(env!("CARGO_BIN_EXE_hainit"))
                .args(args)
                .env("HAINIT_IMDS_URL", "http://127.0.0.1:9"),
            stdin.as_bytes(),
        )
    };
    let out = run(&["secrets", "--tier", "web", "--secret-file", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert_eq!(printed.lines().count(), 1);
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&printed).unwrap();
    assert_eq!(map.len(), 10, "DB and admin passwords and eight keys and salts: {:?}", map.keys());
    let shared = SharedSecret::try_new(SECRET, "test").unwrap();
    assert_eq!(map["wordpress-db"], shared.derive(Purpose::WordpressDb).expose());
    assert_eq!(map["wordpress-salt/NONCE_SALT"], shared.derive(Purpose::WordpressSalt("NONCE_SALT")).expose());
    let from_stdin = run(&["secrets", "--tier", "web", "--secret-file", "-"], &format!("{SECRET}\n"));
    assert_eq!(stdout(&from_stdin), printed);
    let short = run(&["secrets", "--tier", "web", "--secret-file", "-"], "short\n");
    assert_eq!(short.status.code(), Some(2));
    assert!(stderr(&short).contains("at least 32"), "{}", stderr(&short));

    let s = imds(web_doc("web-1", "10.0.2.4"));
    let plan = |config: &str| {
        let root = TestRoot::new();
        root.write("/etc/hainit/hainit.yaml", config);
        hainit(&s.url(), root.path(), "debian12", &["plan", "--json"])
    };
    let web = format!("web:\n  wordpress_url: {WP_URL}\n  wordpress_sha256: {WP_SHA256}\n");
    let scoped = plan(&format!("web_secrets: {printed}{web}"));
    let master = plan(&format!("secret: {SECRET}\n{web}"));
    assert!(scoped.status.success() && master.status.success(), "{}{}", stderr(&scoped), stderr(&master));
    assert_eq!(stdout(&scoped), stdout(&master), "the same plan from the tier's values as from the shared secret");
    assert!(!stderr(&scoped).contains("master secret"), "{}", stderr(&scoped));
    assert!(stderr(&master).contains("this web node holds the master secret"), "{}", stderr(&master));
    // Both at once, or a value missing: bad input naming it.
    let both = plan(&format!("secret: {SECRET}\nweb_secrets: {printed}{web}"));
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("not both"), "{}", stderr(&both));
    let partial = printed.replacen("\"wordpress-admin\"", "\"wordpress-adm\"", 1);
    let out = plan(&format!("web_secrets: {partial}{web}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"wordpress-adm\" is not a secret of this tier"), "{}", stderr(&out));
}

/// `plan --json` holds no sha256 of a file with secrets: the hash of a derived password is a
/// test for guesses of the shared secret.
#[test]
fn plan_json_holds_no_sha256_of_a_secret_file() {
    use sha2::{Digest, Sha256};
    let root = TestRoot::new();
    let s = imds(web_doc("web-1", "10.0.2.4"));
    let out_dir = tempfile::tempdir().unwrap();
    let rendered = hainit(&s.url(), root.path(), "debian12", &["render", "--out", out_dir.path().to_str().unwrap()]);
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let wp_config = std::fs::read(out_dir.path().join("var/www/wordpress/wp-config.php")).unwrap();
    let sha = hainit::secrets::hex(&Sha256::digest(&wp_config));
    let plan = hainit(&s.url(), root.path(), "debian12", &["plan", "--json"]);
    let text = stdout(&plan);
    assert!(text.contains("/var/www/wordpress/wp-config.php"), "{text}");
    assert!(!text.contains(&sha) && !text.contains(&sha[..12]), "plan --json shows the sha256 of wp-config.php");
    let plan = hainit(&s.url(), root.path(), "debian12", &["plan"]);
    assert!(!stdout(&plan).contains(&sha[..12]), "the text plan too");
}

//! The binary end to end: flags, exit codes, JSON shapes, golden output, secrets kept out.

use std::time::{Duration, Instant};

use hainit::secrets::{Purpose, SharedSecret};
use serde_json::Value;

use crate::common::fake_imds::{Document, FakeImds, Fault};
use crate::common::{assert_golden, db_doc, hainit, instance_doc, stderr, stdout, web_doc, TestRoot, SECRET};

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
                assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
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
    // The db node is this machine (plan checks `uname -n`), with /dev/null standing in for a blank
    // data disk, so plan and render run the whole db role.
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    // The peer sits on loopback, where nothing answers: plan probes its pcsd port.
    let peers = format!("{host}=10.0.1.4,zz-peer=127.0.0.2");
    let db = instance_doc(
        &host,
        "10.0.1.4",
        &[
            ("hainit-role", "db"),
            ("hainit-cluster", "wpcluster"),
            ("hainit-peers", &peers),
            ("hainit-vip", "10.0.1.10"),
        ],
    );
    for (os, doc) in [("debian12", db), ("centos7", web_doc("web-1", "10.0.2.4"))] {
        let root = TestRoot::new();
        let config = std::fs::read_to_string(root.host_path("/etc/hainit/hainit.yaml")).unwrap();
        root.write("/etc/hainit/hainit.yaml", &format!("{config}db:\n  data_disk: /dev/null\n"));
        let out_dir = tempfile::tempdir().unwrap();
        let s = imds(doc);
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
            assert!(out.status.success(), "{os} {args:?}: {}", stderr(&out));
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
    let out = hainit(&s.url(), root.path(), "debian12", &["plan", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("uname -n") || err.contains("data disk"), "{err}");
}

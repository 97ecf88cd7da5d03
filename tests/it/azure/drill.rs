//! scripts/failover-drill.sh against the fake `az` (VM power states, DRBD roles through
//! run-command) and a fake WordPress on 127.0.0.1 that checks the admin password hainit derives
//! and refuses posts while the cluster fails over.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hainit::secrets::{Purpose, SharedSecret};
use serde_json::{json, Value};

use super::fake::{repo, text, FakeAz};

const SECRET: &str = "drill-test-secret-0123456789abcdefghijklmn";

/// The fake WordPress, killed by its own pid when dropped.
struct FakeWordPress {
    child: Child,
    port: u16,
}

impl FakeWordPress {
    fn start(az: &FakeAz, password: &str) -> FakeWordPress {
        let file = az.dir.path().join("wp-password");
        std::fs::write(&file, password).unwrap();
        let mut child = Command::new("python3")
            .arg(repo("tests/fixtures/azure/fake-wordpress"))
            .arg("wpadmin")
            .arg(&file)
            .env("FAKE_AZ_DIR", az.dir.path())
            .env("FAKE_WP_FAILOVER_S", "1.5")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        FakeWordPress { port: line.trim().parse().unwrap(), child }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeWordPress {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deployed stack as the fake az knows it: two db VMs (db-a primary), two web VMs, all running.
fn deployed(az: &FakeAz) {
    let mut resources = serde_json::Map::new();
    for (name, role) in [("db-a", "db"), ("db-b", "db"), ("web-1", "web"), ("web-2", "web")] {
        resources.insert(
            format!("vm|g=hainit-wp,n={name}"),
            json!({"name": name, "role": role, "power": "running", "args": {}}),
        );
    }
    az.set_state(
        &json!({"rg": "hainit-wp", "resources": resources, "roles": {}, "assignments": [], "role_failures": 0}),
    );
}

fn admin_password() -> String {
    SharedSecret::try_new(SECRET, "test").unwrap().derive(Purpose::WordpressAdmin).expose().to_string()
}

/// A `curl` first on PATH that records its argv (NUL-separated) and runs the real one.
fn spy_on_curl(az: &FakeAz) {
    let real = Command::new("sh").args(["-c", "command -v curl"]).output().unwrap();
    let real = text(&real.stdout).trim().to_string();
    let spy = az.dir.path().join("bin/curl");
    let log = az.dir.path().join("curl-argv");
    std::fs::write(&spy, format!("#!/bin/sh\nprintf '%s\\0' \"$@\" >> {}\nexec {real} \"$@\"\n", log.display()))
        .unwrap();
    Command::new("chmod").arg("+x").arg(&spy).status().unwrap();
}

fn drill(az: &FakeAz, wp: &FakeWordPress, out: &std::path::Path, timeout: &str) -> std::process::Output {
    spy_on_curl(az);
    let secret_file = az.dir.path().join("stack.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let args = ["--url", &wp.url(), "--secret-file", secret_file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--timeout", timeout, "--poll", "0", "--lb-settle", "0"]);
    az.run("scripts/failover-drill.sh", &all, &[])
}

/// Position of the first log entry matching `pred`, for ordering assertions.
fn at(log: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    log.iter().position(pred).unwrap_or_else(|| panic!("never happened: {what}"))
}

fn az_call(log: &[Value], words: &[&str]) -> usize {
    at(log, &words.join(" "), |e| {
        e["kind"] == "az" && words.iter().all(|w| e["argv"].as_array().unwrap().iter().any(|a| a == w))
    })
}

fn post_ok(log: &[Value], n: u32) -> usize {
    let title = format!(" post {n}");
    at(log, &format!("post {n}"), |e| {
        e["kind"] == "wp" && e["ok"] == true && e["title"].as_str().unwrap().ends_with(&title)
    })
}

#[test]
fn the_drill_fails_over_and_reports_in_the_labs_format() {
    let az = FakeAz::new();
    deployed(&az);
    let wp = FakeWordPress::start(&az, &admin_password());
    let out_dir = az.dir.path().join("report");
    let out = drill(&az, &wp, &out_dir, "60");
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stderr), text(&out.stdout));
    assert!(text(&out.stdout).starts_with("# hainit Azure drill report"), "the report is printed");

    // The events, in order: standby down, post; primary killed (no shutdown), post after the
    // failover; every web node down in turn with a post each; then the reads.
    let log = az.log();
    let standby_down = az_call(&log, &["deallocate", "db-b"]);
    assert!(standby_down < post_ok(&log, 2) && post_ok(&log, 2) < az_call(&log, &["start", "db-b"]));
    let kill = az_call(&log, &["stop", "db-a", "--skip-shutdown"]);
    assert!(az_call(&log, &["start", "db-b"]) < kill && kill < post_ok(&log, 3));
    assert!(post_ok(&log, 3) < az_call(&log, &["start", "db-a"]));
    let web1 = az_call(&log, &["deallocate", "web-1"]);
    assert!(az_call(&log, &["start", "db-a"]) < web1 && web1 < post_ok(&log, 4));
    assert!(post_ok(&log, 4) < az_call(&log, &["start", "web-1"]));
    let web2 = az_call(&log, &["deallocate", "web-2"]);
    assert!(az_call(&log, &["start", "web-1"]) < web2 && web2 < post_ok(&log, 5));
    let refused: Vec<&Value> = log.iter().filter(|e| e["kind"] == "wp" && e["ok"] == false).collect();
    assert!(!refused.is_empty(), "posts during the failover were refused and retried");
    assert!(refused.iter().all(|e| e["password_ok"] == true), "the derived admin password is right");
    assert_eq!(log.iter().filter(|e| e["kind"] == "wp" && e["method"] == "get").count(), 20, "4 reads of 5 posts");

    // Neither the secret nor the derived password went into az's or curl's argv.
    for e in log.iter().filter(|e| e["kind"] == "az") {
        let argv = e["argv"].to_string();
        assert!(!argv.contains(SECRET) && !argv.contains(&admin_password()), "{argv}");
    }
    let curl_argv = std::fs::read_to_string(az.dir.path().join("curl-argv")).unwrap();
    assert!(curl_argv.contains("xmlrpc.php"), "the spy saw the posts");
    assert!(!curl_argv.contains(SECRET) && !curl_argv.contains(&admin_password()));

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], true);
    let sc = &report["scenarios"][0];
    assert_eq!((sc["name"].as_str(), sc["status"].as_str()), (Some("drill"), Some("pass")));
    let posts = sc["posts"].as_array().unwrap();
    assert_eq!(posts.iter().map(|p| p["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(posts[2]["attempts"].as_u64().unwrap() > 1);
    let failover = sc["timings"]["failover_kill_to_post_s"].as_f64().unwrap();
    assert!(failover >= 1.5, "kill -> post {failover} s includes the fake's 1.5 s failover");
    assert_eq!(report["figures"]["failover_kill_to_post_s"].as_f64(), Some(failover));
    for key in [
        "standby_restart_to_uptodate_s",
        "killed_primary_restart_to_uptodate_s",
        "web1_stop_to_post_s",
        "web2_stop_to_post_s",
    ] {
        assert!(sc["timings"][key].is_number(), "timing {key}");
    }
    assert!(sc["notes"].as_array().unwrap().iter().any(|n| n == "initial primary db-a, standby db-b"));
    assert!(sc["steps"].as_array().unwrap().iter().all(|s| s["ok"] == true));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("**PASS**") && md.contains("primary powered off -> post through the public LB"), "{md}");
}

#[test]
fn a_drill_that_cannot_post_fails_with_a_report_saying_why() {
    let az = FakeAz::new();
    deployed(&az);
    let wp = FakeWordPress::start(&az, "not-the-derived-password");
    let out_dir = az.dir.path().join("report");
    let out = drill(&az, &wp, &out_dir, "2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], false);
    let sc = &report["scenarios"][0];
    assert_eq!(sc["status"], "fail");
    let failed = sc["failed"][0].as_str().unwrap();
    assert!(failed.starts_with("post 1:") && failed.contains("Incorrect username or password"), "{failed}");
    assert!(std::fs::read_to_string(out_dir.join("report.md")).unwrap().contains("**FAIL**"));
    assert!(
        !az.log().iter().any(|e| e["kind"] == "az" && e["argv"].to_string().contains("deallocate")),
        "stopped at once"
    );
}

#[test]
fn the_drill_needs_the_stacks_secret() {
    let az = FakeAz::new();
    let out =
        az.run("scripts/failover-drill.sh", &["--url", "http://127.0.0.1:9", "--secret-file", "/nonexistent"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent"), "{}", text(&out.stderr));
}

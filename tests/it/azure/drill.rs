//! scripts/azure/drill.py — the lab's drill (scripts/lab/labkit/drill.py) through its Azure
//! backend — against the fake `az` (VM power states, DRBD and the cluster through run-command) and
//! a fake WordPress on 127.0.0.1 that checks the admin password hainit derives and refuses posts
//! while the cluster fails over.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hainit::secrets::{Purpose, SharedSecret};
use serde_json::{json, Value};

use super::fake::{repo, text, FakeAz};

const SCRIPT: &str = "scripts/azure/drill.py";
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

fn drill(az: &FakeAz, wp: &FakeWordPress, out: &std::path::Path, timeout: &str) -> std::process::Output {
    let secret_file = az.dir.path().join("stack.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let args = ["--url", &wp.url(), "--secret-file", secret_file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--timeout", timeout, "--poll", "0", "--lb-settle", "0"]);
    az.run(SCRIPT, &all, &[])
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
        e["kind"] == "wp" && e["method"] == "post" && e["ok"] == true && e["title"].as_str().unwrap().ends_with(&title)
    })
}

/// The keys of the report's figures as the lab's report module computes them (scripts/lab/labkit/report.py).
fn lab_figure_keys() -> BTreeSet<String> {
    let out = Command::new("python3")
        .current_dir(repo("scripts/lab"))
        .args(["-c", "import json; from labkit import report; print(json.dumps(sorted(report.figures({}))))"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_str(&text(&out.stdout)).unwrap()
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

    // The events, in order: standby down (deallocated), post; primary powered off (no shutdown),
    // post after the failover; every web node down in turn with a post each; then the reads.
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
    // A web node is back in the LB when it answers /healthz itself (curl on the node, run command).
    let healthz = at(&log, "web-1's /healthz", |e| {
        e["kind"] == "az" && e["argv"].to_string().contains("web-1") && e["argv"].to_string().contains("/healthz")
    });
    assert!(az_call(&log, &["start", "web-1"]) < healthz && healthz < web2);
    let refused: Vec<&Value> =
        log.iter().filter(|e| e["kind"] == "wp" && e["method"] == "post" && e["ok"] == false).collect();
    assert!(!refused.is_empty(), "posts during the failover were refused and retried");
    let logins: Vec<&Value> = log.iter().filter(|e| e["kind"] == "wp" && e["method"] == "login").collect();
    assert!(logins.iter().all(|e| e["password_ok"] == true), "the derived admin password is right");
    assert_eq!(log.iter().filter(|e| e["kind"] == "wp" && e["method"] == "get").count(), 20, "4 reads of 5 posts");

    // Neither the secret nor the derived password went into any az argv (run-command scripts included).
    for e in log.iter().filter(|e| e["kind"] == "az") {
        let argv = e["argv"].to_string();
        assert!(!argv.contains(SECRET) && !argv.contains(&admin_password()), "{argv}");
    }

    // The lab's report: the same scenario record and the same figures.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!((report["kind"].as_str(), report["ok"].as_bool()), (Some("azure"), Some(true)));
    let figures: BTreeSet<String> = report["figures"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(figures, lab_figure_keys(), "the Azure report's figures are the lab's");
    let sc = &report["scenarios"][0];
    assert_eq!((sc["name"].as_str(), sc["status"].as_str()), (Some("drill"), Some("pass")));
    for key in ["steps", "notes", "posts", "timings", "seconds"] {
        assert!(!sc[key].is_null(), "scenario record has {key}");
    }
    let posts = sc["posts"].as_array().unwrap();
    assert_eq!(posts.iter().map(|p| p["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(posts[2]["attempts"].as_u64().unwrap() > 1);
    let failover = sc["timings"]["failover_kill_to_post_s"].as_f64().unwrap();
    assert!(failover >= 1.5, "kill -> post {failover} s includes the fake's 1.5 s failover");
    assert_eq!(report["figures"]["failover_kill_to_post_s"].as_f64(), Some(failover));
    for key in [
        "standby_stop_to_post_s",
        "standby_restart_to_uptodate_s",
        "killed_primary_restart_to_uptodate_s",
        "web1_stop_to_post_s",
        "web2_stop_to_post_s",
        "web1_start_to_lb_up_s",
    ] {
        assert!(sc["timings"][key].is_number(), "timing {key}");
    }
    let notes: Vec<&str> = sc["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(notes.contains(&"initial primary db-a, standby db-b"), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("end: db-a: Connected Secondary/Primary")), "{notes:?}");
    let steps = sc["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["ok"] == true));
    assert!(steps.iter().any(|s| s["step"] == "db-b is the primary"), "the failover check ran");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("**PASS**") && md.contains("primary powered off -> post through the public LB"), "{md}");
    assert!(out_dir.join("report.html").exists(), "report.html beside report.md, as in the lab");
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
    let error = sc["error"].as_str().unwrap();
    assert!(error.contains("post 1") && error.contains("login as wpadmin refused"), "{error}");
    assert!(std::fs::read_to_string(out_dir.join("report.md")).unwrap().contains("**FAIL**"));
    assert!(text(&out.stderr).contains("drill: FAILED"), "{}", text(&out.stderr));
    assert!(
        !az.log().iter().any(|e| e["kind"] == "az" && e["argv"].to_string().contains("deallocate")),
        "stopped at once"
    );
}

#[test]
fn a_failover_slower_than_the_timeout_fails_the_drill() {
    // The fake's failover takes 1.5 s, the drill waits at most 1 s: the post after the kill is not
    // written, and the drill says so instead of passing.
    let az = FakeAz::new();
    deployed(&az);
    let wp = FakeWordPress::start(&az, &admin_password());
    let out_dir = az.dir.path().join("report");
    let secret_file = az.dir.path().join("stack.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let url = wp.url();
    let args = ["--url", &url, "--secret-file", secret_file.to_str().unwrap(), "--out", out_dir.to_str().unwrap()];
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--timeout", "1", "--poll", "0", "--lb-settle", "0"]);
    let out = az.run(SCRIPT, &all, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    let error = report["scenarios"][0]["error"].as_str().unwrap();
    assert!(error.contains("post 3"), "{error}");
}

#[test]
fn the_drill_needs_the_stacks_secret_and_valid_names() {
    let az = FakeAz::new();
    let out = az.run(SCRIPT, &["--url", "http://127.0.0.1:9", "--secret-file", "/nonexistent"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent"), "{}", text(&out.stderr));
    let out = az.run(SCRIPT, &["--url", "http://127.0.0.1:9", "--db-names", "db-a"], &[("HAINIT_SECRET", SECRET)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--db-names 'db-a'"), "{}", text(&out.stderr));
    assert!(az.log().is_empty(), "bad input touches nothing");
}

//! The step engine over the fake system: convergence, waits, failures, crash points, redaction.

use std::cell::Cell;
use std::time::Duration;

use hainit::engine::{self, check_files, Context, Options, Outcome, Step};
use hainit::error::{ErrorKind, Result};
use hainit::plan::Action;
use hainit::platform::OsId;
use hainit::secrets::{Purpose, Secret};
use hainit::system::{Cmd, FakeSystem, FileSpec, Output, Probe};

use crate::common::dies_after::DiesAfter;
use crate::common::{capture_logs, db_doc, parts};

/// Writes a secret-bearing file, then runs `touch-marker` until the fake says it ran.
struct DemoStep;

impl Step for DemoStep {
    fn id(&self) -> &'static str {
        "test.demo"
    }
    fn files(&self, cx: &Context) -> Result<Vec<FileSpec>> {
        let pw = cx.derive(Purpose::MariadbRoot);
        Ok(vec![FileSpec::new("/etc/demo.cnf", format!("password={}\n", pw.expose()), 0o600).secret()])
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let mut actions = check_files(probe, self.files(cx)?)?;
        if probe.query(&Cmd::new("marker").arg("status"))?.stdout != "done" {
            let pw = cx.derive(Purpose::HaclusterPassword);
            let cmd = Cmd::new("set-password").arg("--user").arg("hacluster").secret_arg(pw.clone()).stdin_secret(pw);
            actions.push(Action::run(cmd, "set the password"));
        }
        Ok(actions)
    }
}

/// Waits until the fake's "peer" fact is "up".
struct WaitStep;

impl Step for WaitStep {
    fn id(&self) -> &'static str {
        "test.wait"
    }
    fn check(&self, _cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let up = probe.query(&Cmd::new("peer-state"))?.stdout == "up";
        Ok(if up { vec![] } else { vec![Action::wait("peer db-b", Duration::from_secs(2))] })
    }
}

/// pcs's shape: wait for pcsd, then authenticate (a command) and wait for the peer's config.
struct AuthThenWaitStep;

impl Step for AuthThenWaitStep {
    fn id(&self) -> &'static str {
        "test.auth"
    }
    fn check(&self, _cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let wait = |what: &str| Action::wait(what, Duration::from_secs(3));
        if probe.query(&Cmd::new("peer-state"))?.stdout != "up" {
            return Ok(vec![wait("pcsd")]);
        }
        Ok(match probe.query(&Cmd::new("marker").arg("status"))?.stdout.as_str() {
            "done" => vec![],
            _ => vec![Action::run(Cmd::new("set-password"), "authenticate"), wait("the peer's config")],
        })
    }
}

fn fake() -> FakeSystem {
    let f = FakeSystem::new("db-a");
    f.on(&["marker", "status"], |f, _| Output::ok(f.fact("marker").unwrap_or_default()));
    f.on(&["set-password"], |f, _| {
        f.set_fact("marker", "done");
        Output::ok("")
    });
    f
}

/// The fake's "peer-state" answers "down" until its `n`th poll.
fn peer_up_at_poll(sys: &FakeSystem, n: u32) {
    let polls = Cell::new(0);
    sys.on(&["peer-state"], move |_, _| {
        polls.set(polls.get() + 1);
        Output::ok(if polls.get() >= n { "up" } else { "down" })
    });
}

fn with_cx<T>(f: impl FnOnce(&Context) -> T) -> T {
    let (inv, config, secret) = parts(&db_doc("db-a", "10.0.1.4"), OsId::Debian12);
    let cx = Context {
        inv: &inv,
        platform: inv.platform.platform(),
        config: &config,
        secrets: &secret.into(),
        options: Options::default(),
    };
    f(&cx)
}

fn steps() -> Vec<Box<dyn Step>> {
    vec![Box::new(DemoStep)]
}

#[test]
fn apply_converges_and_a_second_run_changes_nothing() {
    with_cx(|cx| {
        let sys = fake();
        let plan = engine::plan(&steps(), cx, &sys).unwrap();
        assert!(!plan.is_converged());
        assert_eq!(plan.steps[0].actions.len(), 2);
        assert!(sys.read("/etc/demo.cnf").unwrap().is_none(), "plan wrote nothing");

        let out = engine::apply(&steps(), cx, &sys).unwrap();
        assert_eq!(out, vec![("test.demo", Outcome::Changed { actions: 2 })]);
        assert_eq!(sys.meta("/etc/demo.cnf").unwrap().unwrap().mode, 0o600);
        assert_eq!(engine::apply(&steps(), cx, &sys).unwrap(), vec![("test.demo", Outcome::Converged)]);
        assert!(engine::plan(&steps(), cx, &sys).unwrap().is_converged());
    });
}

#[test]
fn a_step_whose_actions_change_nothing_did_not_converge() {
    with_cx(|cx| {
        let sys = fake();
        sys.on(&["set-password"], |_, _| Output::ok("")); // succeeds but changes nothing
        let e = engine::apply(&steps(), cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Step);
        assert!(e.to_string().contains("test.demo") && e.to_string().contains("did not converge"), "{e}");
    });
}

#[test]
fn a_failing_command_is_a_step_error_with_argv_and_stderr() {
    with_cx(|cx| {
        let sys = fake();
        sys.reply(&["set-password"], Output::fail(4, "token rejected"));
        let e = engine::apply(&steps(), cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Step);
        let msg = e.to_string();
        assert!(msg.contains("set-password --user hacluster <redacted>") && msg.contains("exit 4"), "{msg}");
        assert!(msg.contains("token rejected"), "{msg}");
        assert!(!msg.contains(cx.derive(Purpose::HaclusterPassword).expose()));
    });
}

/// A capture keeps stdout as a file only on an accepted status; any other status writes
/// nothing and names what was expected.
#[test]
fn a_capture_writes_stdout_on_an_accepted_status_only() {
    let sys = FakeSystem::new("db-a");
    let diff = Action::Capture {
        cmd: Cmd::new("crm_diff").args(["--original", "a", "--new", "b"]),
        path: "/run/x/patch.xml".into(),
        ok_exits: vec![1],
        why: "the patch".into(),
    };
    sys.reply(&["crm_diff"], Output { code: Some(0), stdout: String::new(), stderr: String::new() });
    let e = engine::execute(&sys, &diff).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Step);
    assert!(e.to_string().contains("failed with exit 0 (expected 1)"), "{e}");
    assert_eq!(sys.read("/run/x/patch.xml").unwrap(), None);

    sys.reply(&["crm_diff"], Output { code: Some(1), stdout: "<diff/>\n".into(), stderr: String::new() });
    engine::execute(&sys, &diff).unwrap();
    assert_eq!(sys.read_string("/run/x/patch.xml").unwrap().as_deref(), Some("<diff/>\n"));
    assert_eq!(sys.meta("/run/x/patch.xml").unwrap().unwrap().mode, 0o600);
    let shown = diff.describe();
    assert_eq!(shown, "run   crm_diff --original a --new b > /run/x/patch.xml (exit 1)    # the patch");
}

#[test]
fn waits_poll_until_ready_or_time_out_with_exit_3() {
    with_cx(|cx| {
        let sys = fake();
        peer_up_at_poll(&sys, 3);
        let steps: Vec<Box<dyn Step>> = vec![Box::new(WaitStep)];
        assert_eq!(engine::apply(&steps, cx, &sys).unwrap(), vec![("test.wait", Outcome::Changed { actions: 0 })]);

        let sys = fake();
        sys.reply(&["peer-state"], Output::ok("down"));
        let started = std::time::Instant::now();
        let e = engine::apply(&steps, cx, &sys).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
        assert!(e.to_string().contains("peer db-b"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

/// A wait ends when the check has a command to run first, not only when it has no wait left
/// (found in the lab: the follower waited 15 min for pcsd that answered, with its
/// `pcs host auth` never run, until exit 3 and a new boot attempt).
#[test]
fn a_wait_ends_when_the_check_has_work_to_do_before_waiting() {
    with_cx(|cx| {
        let sys = fake();
        peer_up_at_poll(&sys, 2);
        let steps: Vec<Box<dyn Step>> = vec![Box::new(AuthThenWaitStep)];
        let started = std::time::Instant::now();
        let out = engine::apply(&steps, cx, &sys);
        assert_eq!(out.unwrap(), vec![("test.auth", Outcome::Changed { actions: 1 })]);
        assert_eq!(sys.fact("marker").as_deref(), Some("done"), "the command after the wait ran");
        assert!(started.elapsed() < Duration::from_secs(3), "no wait ran into its timeout");
        // The check that ended a wait decides what runs next: never two checks in a row with
        // nothing run between them (each costs a pcs start in the db role).
        let ran: Vec<String> = sys.commands().iter().map(|c| c.join(" ")).collect();
        let checks_before_auth =
            ran.iter().take_while(|c| *c != "set-password").filter(|c| *c == "marker status").count();
        assert_eq!(checks_before_auth, 1, "{ran:#?}");
    });
}

#[test]
fn a_run_killed_after_any_action_is_converged_by_the_next_run() {
    with_cx(|cx| {
        for n in 0..2 {
            let sys = fake();
            let dying = DiesAfter::new(&sys, n);
            assert!(engine::apply(&steps(), cx, &dying).is_err(), "killed after {n}");
            engine::apply(&steps(), cx, &sys).unwrap();
            assert!(engine::plan(&steps(), cx, &sys).unwrap().is_converged(), "killed after {n}");
        }
    });
}

#[test]
fn apply_logs_never_contain_secrets() {
    with_cx(|cx| {
        let sys = fake();
        let (result, logs) = capture_logs(|| engine::apply(&steps(), cx, &sys));
        result.unwrap();
        assert!(logs.contains("set-password --user hacluster <redacted> <<< <redacted>"), "{logs}");
        for p in [Purpose::HaclusterPassword, Purpose::MariadbRoot] {
            assert!(!logs.contains(cx.derive(p).expose()), "log shows the {p:?} secret");
        }
        let plan = engine::plan(&steps(), cx, &fake()).unwrap();
        let text = format!("{}{}", plan.to_text(), plan.to_json());
        assert!(!text.contains(cx.derive(Purpose::MariadbRoot).expose()));
        assert!(text.contains("(contains secrets)"));
        let _ = Secret::new("unused");
    });
}

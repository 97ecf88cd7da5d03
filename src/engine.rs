//! Runs a role's steps: `plan` (checks against a recording overlay), `apply` (execute, then
//! check again: a step that still wants something after its actions ran did not converge),
//! and `render` (write the files the steps want under another root).

use std::time::{Duration, Instant};

use tracing::{info, info_span, warn};

use crate::config::Config;
use crate::error::{Context as _, Error, Result};
use crate::inventory::Inventory;
use crate::notify;
use crate::plan::{join_codes, Action, Plan, StepReport};
use crate::platform::Platform;
use crate::retry::Backoff;
use crate::secrets::{Purpose, Secret, Secrets};
use crate::system::{lookup_group, lookup_user, Executor, FileKind, FileSpec, Probe, RecordingSystem};

/// Everything a step may know, none of which does I/O.
pub struct Context<'a> {
    pub inv: &'a Inventory,
    pub platform: &'static Platform,
    pub config: &'a Config,
    pub secrets: &'a Secrets,
    pub options: Options,
}

/// Choices made on the command line or discovered before the steps run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--wipe-data-disk=DEV`: the data disk whose foreign contents may be destroyed (only
    /// while the peer holds current data; never DRBD's, see `roles::db::disk::wipe_decision`).
    /// One flag value for the whole run, kept `'static` so that options stay `Copy`.
    pub wipe_data_disk: Option<&'static str>,
    /// The VM has a managed identity (IMDS token endpoint answered).
    pub managed_identity: bool,
}

impl Context<'_> {
    /// A derived password or key: from the master secret, or (web tier) the value the node was
    /// given; which purposes a scoped node holds is checked before any step runs.
    pub fn derive(&self, purpose: Purpose) -> Secret {
        self.secrets.derive(purpose)
    }
    /// `len` derived bytes (binary keys); only the master secret has them (exit 2 otherwise).
    pub fn derive_bytes(&self, purpose: Purpose, len: usize) -> Result<Vec<u8>> {
        Ok(self.secrets.master()?.derive_bytes(purpose, len))
    }
}

pub trait Step {
    /// `<role>.<area>.<thing>`; stable, golden files and logs use it.
    fn id(&self) -> &'static str;
    /// Read the machine and return what is still needed (empty = converged).
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>>;
    /// The files this step wants, whatever the machine holds (for `render`).
    fn files(&self, _cx: &Context) -> Result<Vec<FileSpec>> {
        Ok(Vec::new())
    }
}

/// Write actions for the files that differ from `specs` in content, mode, owner or group.
pub fn check_files(probe: &dyn Probe, specs: Vec<FileSpec>) -> Result<Vec<Action>> {
    let passwd = probe.read_string("/etc/passwd")?.unwrap_or_default();
    let groups = probe.read_string("/etc/group")?.unwrap_or_default();
    let mut actions = Vec::new();
    for spec in specs {
        let same = match probe.meta(&spec.path)? {
            Some(m) if m.kind == FileKind::File => {
                m.mode == spec.mode
                    && Some(m.uid) == lookup_user(&passwd, &spec.owner)
                    && Some(m.gid) == lookup_group(&groups, &spec.group)
                    && probe.read(&spec.path)?.as_deref() == Some(spec.content.bytes())
            }
            _ => false,
        };
        if !same {
            actions.push(Action::Write(spec));
        }
    }
    Ok(actions)
}

/// Every step's check against a recording overlay of `probe`; nothing is changed.
pub fn plan(steps: &[Box<dyn Step>], cx: &Context, probe: &dyn Probe) -> Result<Plan> {
    let overlay = RecordingSystem::new(probe);
    let mut plan = Plan::default();
    for step in steps {
        let actions = step.check(cx, &overlay).context(format!("step {}", step.id()))?;
        for action in &actions {
            record_effect(&overlay, action)?;
        }
        plan.steps.push(StepReport { name: step.id(), actions });
    }
    Ok(plan)
}

/// Let later checks see the files and directories earlier steps would create.
fn record_effect(overlay: &RecordingSystem, action: &Action) -> Result<()> {
    match action {
        Action::Write(spec) => overlay.write_file(spec),
        Action::Dir { path, mode, owner, group } => overlay.ensure_dir(path, *mode, owner, group),
        _ => Ok(()),
    }
}

/// How one step ended in `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Converged,
    Changed { actions: usize },
}

/// A step that keeps finding work after waiting this many times is not converging.
const MAX_ROUNDS: usize = 16;

pub fn apply(steps: &[Box<dyn Step>], cx: &Context, sys: &dyn Executor) -> Result<Vec<(&'static str, Outcome)>> {
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let _span = info_span!("step", id = step.id()).entered();
        notify::status(&format!("step {}/{}: {}", i + 1, steps.len(), step.id()));
        let outcome = apply_step(step.as_ref(), cx, sys).map_err(|e| {
            warn!(error = %e, "failed");
            e.context(format!("step {}", step.id()))
        })?;
        match &outcome {
            Outcome::Converged => info!("ok"),
            Outcome::Changed { actions } => info!(actions, "changed"),
        }
        outcomes.push((step.id(), outcome));
    }
    Ok(outcomes)
}

fn apply_step(step: &dyn Step, cx: &Context, sys: &dyn Executor) -> Result<Outcome> {
    let mut actions = step.check(cx, sys)?;
    if actions.is_empty() {
        return Ok(Outcome::Converged);
    }
    let mut executed = 0;
    for _ in 0..MAX_ROUNDS {
        let mut after_wait = None;
        for action in &actions {
            if let Action::Wait { what, timeout } = action {
                // What follows a wait is decided by the fresh check that ended it.
                after_wait = Some(wait_until_ready(step, cx, sys, what, *timeout)?);
                break;
            }
            execute(sys, action)?;
            executed += 1;
        }
        let waited = after_wait.is_some();
        actions = match after_wait {
            Some(next) => next,
            None => step.check(cx, sys)?,
        };
        if actions.is_empty() {
            return Ok(Outcome::Changed { actions: executed });
        }
        if !waited {
            let left: Vec<String> = actions.iter().map(Action::describe).collect();
            return Err(Error::step(format!("did not converge: still needs {}", left.join("; "))));
        }
    }
    Err(Error::step(format!("did not converge after {MAX_ROUNDS} rounds of waiting")))
}

pub fn execute(sys: &dyn Executor, action: &Action) -> Result<()> {
    info!(action = %action.describe(), "start");
    match action {
        Action::Write(spec) => sys.write_file(spec),
        Action::Dir { path, mode, owner, group } => sys.ensure_dir(path, *mode, owner, group),
        Action::Run { cmd, why } => {
            let out = sys.run(cmd)?;
            if out.success() {
                return Ok(());
            }
            Err(cmd.failure(&out, format!("{why}: `{cmd}` failed with {}: {}", ended(out.code), out.tail())))
        }
        Action::Capture { cmd, path, ok_exits, why } => {
            let out = sys.run(cmd)?;
            match out.code {
                Some(code) if ok_exits.contains(&code) => sys.write_file(&FileSpec::new(path, out.stdout, 0o600)),
                code => {
                    let expected = join_codes(ok_exits);
                    let msg =
                        format!("{why}: `{cmd}` failed with {} (expected {expected}): {}", ended(code), out.tail());
                    Err(cmd.failure(&out, msg))
                }
            }
        }
        Action::Wait { .. } => Ok(()),
        Action::Unpack(spec) => sys.unpack(spec),
        Action::Download(spec) => sys.download(spec),
        Action::Tree(spec) => sys.fix_tree(spec),
    }
}

/// How a command ended, for messages: `exit 4`, or `a signal` (killed by someone).
fn ended(code: Option<i32>) -> String {
    code.map_or("a signal".to_string(), |c| format!("exit {c}"))
}

/// Poll the step's check until it no longer starts with a wait (it has work to do first, or
/// nothing left); exit 3 after `timeout`. What it waits for may change on the way (pcsd here,
/// then the peer's): the latest is what the log and the timeout name. Returns the actions of
/// the check that ended the wait (checking again costs a pcs start under emulation, ~30 s).
fn wait_until_ready(
    step: &dyn Step,
    cx: &Context,
    sys: &dyn Executor,
    what: &str,
    timeout: Duration,
) -> Result<Vec<Action>> {
    let backoff = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(10), deadline: timeout };
    let mut attempts = backoff.start();
    let mut last_report = Instant::now();
    let mut what = what.to_string();
    info!(what, timeout_secs = timeout.as_secs(), "waiting");
    notify::extend_timeout(timeout);
    loop {
        let actions = step.check(cx, sys)?;
        match actions.first() {
            Some(Action::Wait { what: now, .. }) => {
                if *now != what {
                    info!(was = what, now = now.as_str(), waited_secs = attempts.elapsed().as_secs(), "now waiting");
                    what = now.clone();
                }
            }
            _ => {
                info!(what, waited_secs = attempts.elapsed().as_secs(), "ready");
                return Ok(actions);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            info!(what, waited_secs = attempts.elapsed().as_secs(), "still waiting");
            notify::status(&format!("waiting for {what} ({} s)", attempts.elapsed().as_secs()));
            last_report = Instant::now();
        }
        if !attempts.wait() {
            return Err(Error::timeout(format!("timed out after {} s waiting for {what}", timeout.as_secs())));
        }
    }
}

/// Write every file the steps want below `sys`'s root; returns the paths written.
pub fn render(steps: &[Box<dyn Step>], cx: &Context, sys: &dyn Executor) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for step in steps {
        for spec in step.files(cx).context(format!("step {}", step.id()))? {
            sys.write_file(&spec)?;
            written.push(spec.path);
        }
    }
    Ok(written)
}

//! web.services: php-fpm and nginx enabled and running, restarted only when their configuration
//! changed.
//!
//! "Changed" is read from the machine, not remembered: a service is restarted when one of the
//! files hainit writes for it is newer than the moment systemd last started it. Keeping the
//! restart in the step that writes the file would lose it when a run is killed between the write
//! and the restart (the next run finds the file right and would never restart); comparing times
//! catches that case too. Both sides have one-second resolution, so a file written in the very
//! second the service started is not seen as newer; hainit writes its files in earlier steps of
//! the same run, so its own writes always precede its own restarts. Each (re)start is preceded by
//! the service's own configuration test, so a broken file never takes a running service down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::roles::units;
use crate::system::{Cmd, Probe};

use super::nginx::NginxStep;
use super::php_fpm::PhpFpmStep;

/// One systemd service and the files it was started from.
pub struct Service {
    pub unit: &'static str,
    pub config: Vec<String>,
    /// The daemon's own configuration test.
    pub test: Cmd,
}

pub fn services(cx: &Context) -> Vec<Service> {
    let web = &cx.platform.web;
    let paths = |specs: Vec<crate::system::FileSpec>| specs.into_iter().map(|s| s.path).collect();
    vec![
        Service {
            unit: web.php_fpm_service,
            config: paths(PhpFpmStep::specs(cx)),
            test: Cmd::new(web.php_fpm_binary).arg("-t"),
        },
        Service {
            unit: web.nginx_service,
            config: paths(NginxStep::specs(cx)),
            test: Cmd::new(web.nginx_binary).args(["-t", "-q"]),
        },
    ]
}

pub struct ServicesStep;

impl Step for ServicesStep {
    fn id(&self) -> &'static str {
        "web.services"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let mut actions = Vec::new();
        for svc in services(cx) {
            let state = units::state(probe, svc.unit)?;
            let systemctl = |verb: &str| Cmd::new("systemctl").args([verb, svc.unit]);
            if !state.is_enabled() {
                actions.push(Action::run(units::install("enable", &[svc.unit]), format!("start {} at boot", svc.unit)));
            }
            if !state.is_active() {
                actions.push(Action::run(svc.test.clone(), format!("test {}'s configuration", svc.unit)));
                actions.push(Action::run(systemctl("reset-failed"), "forget an earlier failure"));
                actions.push(Action::run(systemctl("start"), format!("start {}", svc.unit)));
                continue;
            }
            let started = state.started.ok_or_else(|| {
                Error::step(format!("{} is active but systemd reports no start time (ActiveEnterTimestamp)", svc.unit))
            })?;
            if let Some(path) = newer_than(probe, &svc.config, started)? {
                actions.push(Action::run(svc.test.clone(), format!("test {}'s configuration", svc.unit)));
                actions.push(Action::run(systemctl("restart"), format!("{path} changed since {} started", svc.unit)));
            }
        }
        Ok(actions)
    }
}

/// The first of `paths` modified after `started` (whole seconds). A time in the future (a file
/// written before the clock was stepped back) says nothing about the order: restarting would not
/// make the service newer than the file, so it is not counted.
fn newer_than(probe: &dyn Probe, paths: &[String], started: u64) -> Result<Option<String>> {
    let now = SystemTime::now() + Duration::from_secs(2); // a plan dates its own writes "now"
    for path in paths {
        if let Some(t) = probe.modified(path)?.filter(|t| *t <= now) {
            let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            if secs > started {
                return Ok(Some(path.clone()));
            }
        }
    }
    Ok(None)
}

//! web.packages: nginx, php-fpm, PHP's MySQL driver and CLI (for the unattended install) and the
//! MariaDB client, installed only when missing, from the repositories the image provides.

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::platform::PackageManager;
use crate::system::{Cmd, Probe};

/// The packages of `wanted` the package manager does not report as installed (one query each,
/// so the answer is per package whatever the tool's exit-code conventions).
pub fn missing<'a>(probe: &dyn Probe, pm: PackageManager, wanted: &[&'a str]) -> Result<Vec<&'a str>> {
    let (program, args) = pm.is_installed_query();
    let mut missing = Vec::new();
    for package in wanted {
        let out = probe.query(&Cmd::new(program).args(args.iter().copied()).arg(*package))?;
        if !pm.reports_installed(&out) {
            missing.push(*package);
        }
    }
    Ok(missing)
}

pub struct PackagesStep;

impl Step for PackagesStep {
    fn id(&self) -> &'static str {
        "web.packages"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let pm = cx.platform.package_manager;
        let missing = missing(probe, pm, cx.platform.web.packages)?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let why = format!("{} of the web role's packages missing", missing.len());
        Ok(pm.install_cmds(&missing).into_iter().map(|cmd| Action::run(cmd, why.clone())).collect())
    }
}

//! `<role>.packages`: the role's packages from the platform table, installed only when missing,
//! from the repositories the image provides.

use crate::config::StonithMode;
use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::platform::PackageManager;
use crate::system::Probe;

/// The packages of `wanted` the package manager does not report as installed (one query for all).
pub fn missing<'a>(probe: &dyn Probe, pm: PackageManager, wanted: &[&'a str]) -> Result<Vec<&'a str>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    pm.missing(wanted, &probe.query(&pm.installed_query(wanted))?)
}

pub struct PackagesStep {
    pub id: &'static str,
    pub list: fn(&Context) -> Vec<&'static str>,
}

impl PackagesStep {
    pub fn web() -> Self {
        PackagesStep { id: "web.packages", list: |cx| cx.platform.web.packages.to_vec() }
    }
    /// The db role's packages, and SBD's when it fences (`db.stonith: sbd`).
    pub fn db() -> Self {
        PackagesStep {
            id: "db.packages",
            list: |cx| {
                let db = &cx.platform.db;
                let sbd = if cx.config.db.stonith == StonithMode::Sbd { db.sbd_packages } else { &[] };
                db.packages.iter().chain(sbd).copied().collect()
            },
        }
    }
}

impl Step for PackagesStep {
    fn id(&self) -> &'static str {
        self.id
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let pm = cx.platform.package_manager;
        let missing = missing(probe, pm, &(self.list)(cx))?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let role = self.id.split('.').next().unwrap_or(self.id);
        let why = format!("{} of the {role} role's packages missing", missing.len());
        Ok(pm.install_cmds(&missing).into_iter().map(|cmd| Action::run(cmd, why.clone())).collect())
    }
}

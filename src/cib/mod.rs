//! The cluster configuration as data: the typed configuration hainit wants ([`model`], built by
//! [`desired`]), rendered per Pacemaker [`line`] ([`render`]), compared with the live CIB
//! ([`live`], [`diff`]) and applied as one guarded patch ([`patch`]). docs/cib.md has the design.

pub mod desired;
pub mod diff;
pub mod line;
pub mod live;
pub mod model;
pub mod patch;
pub mod render;
pub mod xml;

use crate::error::{Error, Result};
use desired::Spec;
use diff::{Change, Owned};
use live::Live;

/// Resource ids: fixed, so checks, `status`, the lab and the drill find them.
pub const GROUP: &str = "g_db";
pub const FS: &str = "fs_db";
pub const MYSQLD: &str = "mysqld";
pub const PROBE: &str = "lb_probe";
pub const FENCE_AZURE: &str = "fence_azure";
pub const FENCE_SBD: &str = "fence_sbd";
/// ocf:heartbeat:azure-events-az (Microsoft's name); its `health-` prefix keeps it and its clone
/// out of the rule that moves everything else off a node under maintenance.
pub const SCHEDULED_EVENTS: &str = "health-azure-events";

/// What it takes to bring `live` to what `spec` wants.
#[derive(Debug, Clone)]
pub struct Convergence {
    pub changes: Vec<Change>,
    /// The changes as one patch against `live`'s version.
    pub patch: String,
}

pub fn converge(spec: &Spec, live: &Live) -> Result<Convergence> {
    let wanted = desired::desired(spec);
    if let (Some(need), Some(have)) = (wanted.line.needs_schema(), live.schema()) {
        if have < need {
            return Err(Error::step(format!(
                "the live CIB validates against {have}, older than the {need} that Pacemaker {}'s role names need; \
                 upgrade it once with `cibadmin --upgrade --force`",
                wanted.line
            )));
        }
    }
    let variants: Vec<_> = desired::every_variant(spec).iter().map(render::configuration).collect();
    let changes = diff::diff(&render::configuration(&wanted), &live.configuration, &Owned::of(&variants));
    let patch = patch::render(live.version, &changes);
    Ok(Convergence { changes, patch })
}

//! Each role is an ordered list of steps; steps shared by both roles live in `common`.

mod common;
pub mod db;
pub mod firewall;
pub mod packages;
pub mod units;
pub mod web;

use crate::config::Config;
use crate::engine::{Context, Step};
use crate::error::Result;
use crate::inventory::{Inventory, Role};
use crate::platform::Platform;
use crate::secrets::Purpose;
use crate::status::Health;
use crate::system::Probe;

pub fn steps(cx: &Context) -> Vec<Box<dyn Step>> {
    let mut steps = common::steps();
    steps.extend(match cx.inv.role {
        Role::Db => db::steps(cx),
        Role::Web => web::steps(cx),
    });
    steps
}

/// Role-specific inputs, checked before any step touches the machine (bad input: exit 2).
pub fn validate(cx: &Context, probe: &dyn Probe) -> Result<()> {
    match cx.inv.role {
        Role::Db => db::validate(cx, probe),
        Role::Web => web::validate(cx, probe),
    }
}

/// Every secret the role's steps derive: what a web node is given instead of the master secret
/// (`hainit secrets --tier web`, config `web_secrets`). The db role holds the master secret.
pub fn tier_purposes(role: Role) -> Vec<Purpose> {
    match role {
        Role::Db => Vec::new(),
        Role::Web => [Purpose::WordpressDb, Purpose::WordpressAdmin]
            .into_iter()
            .chain(web::wp_config::SALT_NAMES.into_iter().map(Purpose::WordpressSalt))
            .collect(),
    }
}

/// Health of this node's role, for `status`.
pub fn health(inv: &Inventory, platform: &Platform, config: &Config, probe: &dyn Probe) -> Vec<Health> {
    let mut items = common::health(probe);
    items.extend(match inv.role {
        Role::Db => db::health(inv, platform, config, probe),
        Role::Web => web::health(inv, platform, config, probe),
    });
    if let Some(why) = config.tier_warning(inv.role) {
        items.push(Health::warn("secrets", why));
    }
    items
}

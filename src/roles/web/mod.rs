//! The web role.

use crate::config::Config;
use crate::engine::{Context, Step};
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::status::Health;
use crate::system::Probe;

pub fn steps(_cx: &Context) -> Vec<Box<dyn Step>> {
    Vec::new()
}

pub fn health(_inv: &Inventory, _platform: &Platform, _config: &Config, _probe: &dyn Probe) -> Vec<Health> {
    Vec::new()
}

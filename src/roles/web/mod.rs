//! The web role: nginx, php-fpm and WordPress toward the DB VIP, the same on every web node.
//! Steps in order; each module has one job.

mod health;
pub mod healthz;
pub mod install;
pub mod nginx;
pub mod permissions;
pub mod php_fpm;
pub mod selinux;
pub mod services;
pub mod share;
pub mod wait_db;
pub mod wordpress;
pub mod wp_config;

use crate::config::Config;
use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::status::Health;
use crate::system::Probe;

pub fn steps(cx: &Context) -> Vec<Box<dyn Step>> {
    let mut steps: Vec<Box<dyn Step>> = vec![
        Box::new(crate::roles::packages::PackagesStep::web()),
        Box::new(wordpress::TreeStep),
        Box::new(wp_config::WpConfigStep),
        Box::new(php_fpm::PhpFpmStep),
        Box::new(nginx::NginxStep),
        Box::new(permissions::PermissionsStep),
        Box::new(share::ShareStep),
        Box::new(healthz::HealthzStep),
    ];
    if cx.platform.selinux {
        steps.push(Box::new(selinux::SelinuxStep));
    }
    if cx.platform.firewalld {
        steps.push(Box::new(crate::roles::firewall::FirewallStep::web()));
    }
    steps.extend([
        Box::new(services::ServicesStep) as Box<dyn Step>,
        Box::new(wait_db::WaitDbStep),
        Box::new(install::InstallStep),
    ]);
    steps
}

/// Inputs the web role needs, checked before any step touches the machine (exit 2).
pub fn validate(cx: &Context, probe: &dyn Probe) -> Result<()> {
    let web = &cx.config.web;
    web.validate()?;
    wp_config::db_host(cx)?;
    share::share(cx)?;
    if web.wordpress_url.is_none() && !probe.exists(&web.wordpress_tarball)? {
        return Err(Error::input(format!(
            "web.wordpress_tarball {} does not exist and web.wordpress_url is not set: nowhere to get WordPress from",
            web.wordpress_tarball
        )));
    }
    Ok(())
}

pub fn health(inv: &Inventory, platform: &Platform, config: &Config, probe: &dyn Probe) -> Vec<Health> {
    health::health(inv, platform, config, probe)
}

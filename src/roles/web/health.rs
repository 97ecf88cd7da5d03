//! `status` for a web node: nginx and php-fpm running, the shared uploads mounted from the share
//! the tag names, /healthz answering (and why not), the DB VIP reachable, WordPress answering on
//! localhost.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::status::Health;
use crate::system::mounts::mounted_on;
use crate::system::{Cmd, Probe};

use super::share::{self, Share};
use super::wait_db::CONNECT_TIMEOUT;

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEALTHZ_URL: &str = "http://127.0.0.1/healthz";
pub const SITE_URL: &str = "http://127.0.0.1/";

pub fn health(inv: &Inventory, platform: &Platform, config: &Config, probe: &dyn Probe) -> Vec<Health> {
    let web = &platform.web;
    let mut items = Vec::new();
    for (name, unit) in [("nginx", web.nginx_service), ("php-fpm", web.php_fpm_service)] {
        items.push(match probe.query(&Cmd::new("systemctl").args(["is-active", unit])) {
            Ok(out) if out.stdout.trim() == "active" => Health::ok(name, format!("{unit} active")),
            Ok(out) => Health::fail(name, format!("{unit} {}", or_unknown(out.stdout.trim()))),
            Err(e) => Health::fail(name, format!("{unit}: {e}")),
        });
    }
    items.push(shared_storage(inv, config, probe));
    items.push(match probe.http_get(HEALTHZ_URL, HTTP_TIMEOUT) {
        Ok(r) if r.status == 200 => Health::ok("healthz", format!("{HEALTHZ_URL} answers 200")),
        Ok(r) => Health::fail(
            "healthz",
            format!(
                "{HEALTHZ_URL} answers {} (the load balancer wants 200){}",
                r.status,
                Some(one_line(&r.body)).filter(|b| !b.is_empty()).map(|b| format!(": {b}")).unwrap_or_default()
            ),
        ),
        Err(e) => Health::fail("healthz", e.to_string()),
    });
    let port = config.database.port;
    items.push(match inv.vip {
        Some(vip) if probe.tcp_open(IpAddr::V4(vip), port, CONNECT_TIMEOUT) => {
            Health::ok("db-vip", format!("{vip}:{port} accepts connections"))
        }
        Some(vip) => Health::fail("db-vip", format!("{vip}:{port} does not accept connections")),
        None => Health::fail("db-vip", "no hainit-vip tag"),
    });
    items.push(match probe.http_get(SITE_URL, HTTP_TIMEOUT) {
        Ok(r) if r.status == 200 => Health::ok("wordpress", format!("{SITE_URL} answers 200")),
        Ok(r) if r.location.as_deref().is_some_and(|l| l.contains("wp-admin/install.php")) => {
            Health::fail("wordpress", "not installed yet (redirects to wp-admin/install.php)")
        }
        Ok(r) => Health::fail(
            "wordpress",
            format!("{SITE_URL} answers {}{}", r.status, r.location.map(|l| format!(" -> {l}")).unwrap_or_default()),
        ),
        Err(e) => Health::fail("wordpress", e.to_string()),
    });
    items
}

/// The uploads mounted from the share the tag names (or a local share, which only one node may use).
fn shared_storage(inv: &Inventory, config: &Config, probe: &dyn Probe) -> Health {
    const NAME: &str = "shared-storage";
    let uploads = share::uploads_in(&config.web.docroot);
    let source = match share::share_of(inv) {
        Ok(Share::Local) => return Health::warn(NAME, format!("local: {uploads} is this node's alone (web.share)")),
        Ok(s) => s.source().unwrap_or_default(),
        Err(e) => return Health::fail(NAME, e.to_string()),
    };
    match mounted_on(probe, &uploads) {
        Ok(Some(m)) if m.source == source => Health::ok(NAME, format!("{source} mounted on {uploads} ({})", m.fs_type)),
        Ok(Some(m)) => Health::fail(NAME, format!("{uploads} is mounted from {}, not {source}", m.source)),
        Ok(None) => Health::fail(NAME, format!("{source} is not mounted on {uploads}")),
        Err(e) => Health::fail(NAME, e.to_string()),
    }
}

/// A reply body as one line (healthz.php lists one problem per line).
fn one_line(body: &str) -> String {
    body.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

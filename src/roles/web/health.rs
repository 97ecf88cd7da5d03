//! `status` for a web node: nginx and php-fpm running, /healthz answering, the DB VIP reachable,
//! WordPress answering on localhost.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::inventory::Inventory;
use crate::platform::Platform;
use crate::status::Health;
use crate::system::{Cmd, Probe};

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
    items.push(match probe.http_get(HEALTHZ_URL, HTTP_TIMEOUT) {
        Ok(r) if r.status == 200 => Health::ok("healthz", format!("{HEALTHZ_URL} answers 200")),
        Ok(r) => Health::fail("healthz", format!("{HEALTHZ_URL} answers {} (the load balancer wants 200)", r.status)),
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

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

//! web.wordpress.install: finish the WordPress install unattended when the database has no site
//! yet (title, admin user and e-mail from the config, admin password derived from the shared
//! secret), so a fresh stack serves a site without a browser.
//!
//! A small PHP program (install.php) loads wp-load.php with the platform's php CLI and asks the
//! database itself: installed means a `siteurl` option and at least one user. The install runs
//! under the MariaDB lock `hainit-wordpress-install` and re-checks inside it, so two web nodes
//! converging at once install once. The admin password goes in on stdin, never in argv.

use std::net::IpAddr;
use std::time::Duration;

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::secrets::Purpose;
use crate::system::{Cmd, Probe};

use super::{wait_db, wp_config};

const SCRIPT: &str = include_str!("install.php");

/// The state line install.php prints last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteState {
    Installed,
    NotInstalled,
}

pub fn parse_state(stdout: &str) -> Option<SiteState> {
    match stdout.lines().rev().find(|l| l.starts_with("HAINIT:"))?.trim() {
        "HAINIT:installed" => Some(SiteState::Installed),
        "HAINIT:not-installed" => Some(SiteState::NotInstalled),
        _ => None,
    }
}

/// install.php without its opening tag and header comment: the code `php -r` runs.
pub fn script_code() -> String {
    SCRIPT.lines().filter(|l| *l != "<?php" && !l.starts_with("//")).collect::<Vec<_>>().join("\n") + "\n"
}

/// install.php's exit status when WordPress could not connect to the database: the VIP accepted
/// TCP but no MariaDB answered behind it (the ILB in the middle of a failover). Not ready yet.
const DB_NOT_ANSWERING: i32 = 3;

/// `php -r <install.php>` in the WordPress root, in `mode` (check | install).
pub fn php(cx: &Context, mode: &str) -> Cmd {
    let web = &cx.config.web;
    let code = script_code();
    let mut cmd = Cmd::new(cx.platform.web.php_binary)
        .args(["-d", "display_errors=stderr", "-r", &code])
        .cwd(web.docroot.trim_end_matches('/'))
        .env("HAINIT_MODE", mode)
        .env("HAINIT_TITLE", &web.site_title)
        .env("HAINIT_ADMIN_USER", &web.admin_user)
        .env("HAINIT_ADMIN_EMAIL", &web.admin_email)
        .not_ready_exit(DB_NOT_ANSWERING);
    if web.site_url.is_none() {
        // Without web.site_url the first node's own address becomes the site URL; set it for sites
        // behind a load balancer (links would point at one node otherwise).
        cmd = cmd.env("HAINIT_SITE_URL", format!("http://{}", cx.inv.node.ip));
    }
    cmd
}

pub struct InstallStep;

impl InstallStep {
    pub fn install(cx: &Context) -> Action {
        // Longer than install.php's 600 s wait for the lock another node may hold.
        let cmd = php(cx, "install").stdin_secret(cx.derive(Purpose::WordpressAdmin)).timeout(Duration::from_secs(900));
        Action::run(cmd, "finish the WordPress install (once per database, under a MariaDB lock)")
    }
}

impl Step for InstallStep {
    fn id(&self) -> &'static str {
        "web.wordpress.install"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let docroot = cx.config.web.docroot.trim_end_matches('/');
        let vip = cx.inv.vip.map(IpAddr::V4);
        let ready = probe.exists(&format!("{docroot}/wp-load.php"))?
            && probe.exists(&wp_config::path(cx))?
            && vip.is_some_and(|ip| probe.tcp_open(ip, cx.config.database.port, wait_db::CONNECT_TIMEOUT));
        if !ready {
            // Nothing to ask yet (a plan before the tree or the database exists): decided in apply,
            // after the earlier steps put the tree in place and waited for the VIP.
            return Ok(vec![Self::install(cx)]);
        }
        let check = php(cx, "check");
        let out = probe.query(&check)?;
        match parse_state(&out.stdout) {
            Some(SiteState::Installed) if out.success() => Ok(Vec::new()),
            Some(SiteState::NotInstalled) if out.success() => Ok(vec![Self::install(cx)]),
            _ => Err(check.failure(
                &out,
                format!(
                    "cannot tell whether WordPress is installed in database {} at {}: {}",
                    cx.config.database.name,
                    wp_config::db_host(cx)?,
                    out.tail()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_state_line() {
        assert_eq!(parse_state("noise\nHAINIT:installed\n"), Some(SiteState::Installed));
        assert_eq!(parse_state("HAINIT:not-installed"), Some(SiteState::NotInstalled));
        assert_eq!(parse_state("<html>Error establishing a database connection</html>"), None);
        assert_eq!(parse_state("HAINIT:maybe\n"), None);
    }
}

//! web.selinux (EL): php-fpm may connect to the remote database, and WordPress may write its
//! uploads, under the targeted policy (reference §6.6). Only where the platform has SELinux.
//!
//! With SELinux disabled (`getenforce` says so, or the tools are not installed) there is nothing
//! to converge. Otherwise: the boolean `httpd_can_network_connect_db` on (persistently, `-P`),
//! a local file-context rule that labels wp-content `httpd_sys_rw_content_t`, and the labels on
//! disk matching the rules (`restorecon -n -v` lists what it would change).

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::{Cmd, Probe};

const BOOLEAN: &str = "httpd_can_network_connect_db";
const RW_TYPE: &str = "httpd_sys_rw_content_t";

pub struct SelinuxStep;

fn wp_content(cx: &Context) -> String {
    format!("{}/wp-content", cx.config.web.docroot.trim_end_matches('/'))
}

impl Step for SelinuxStep {
    fn id(&self) -> &'static str {
        "web.selinux"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let mode = probe.query(&Cmd::new("getenforce"))?;
        if !mode.success() || mode.stdout.trim() == "Disabled" {
            return Ok(Vec::new());
        }
        let mut actions = Vec::new();
        let boolean = probe.query(&Cmd::new("getsebool").arg(BOOLEAN))?;
        if !boolean.stdout.trim_end().ends_with("--> on") {
            let set = Cmd::new("setsebool").args(["-P", BOOLEAN, "1"]).timeout(std::time::Duration::from_secs(900));
            actions.push(Action::run(set, "let php-fpm connect to the database VIP"));
        }
        let content = wp_content(cx);
        let rule = probe.query(&Cmd::new("matchpathcon").arg(&content))?;
        if !rule.stdout.contains(RW_TYPE) {
            let spec = format!("{content}(/.*)?");
            let add = Cmd::new("semanage").args(["fcontext", "-a", "-t", RW_TYPE, &spec]);
            actions.push(Action::run(add, "let WordPress write its uploads"));
        }
        let relabel = probe.query(&Cmd::new("restorecon").args(["-R", "-n", "-v", &content]))?;
        if !rule.stdout.contains(RW_TYPE) || !relabel.stdout.trim().is_empty() {
            actions.push(Action::run(Cmd::new("restorecon").args(["-R", &content]), "label wp-content by the rules"));
        }
        Ok(actions)
    }
}

//! web.selinux (EL): php-fpm may connect to the remote database, read hainit's healthz.php and
//! write the uploads, under the targeted policy (reference §6.6). Only where the platform has
//! SELinux.
//!
//! With SELinux disabled (`getenforce` says so, or the tools are not installed) there is nothing
//! to converge. Otherwise: the boolean `httpd_can_network_connect_db` on (persistently, `-P`),
//! a local file-context rule per path below, and the labels on disk matching the rules
//! (`restorecon -n -v` lists what it would change). The shared uploads carry their label as a
//! mount option (share.rs), so the NFS boolean `httpd_use_nfs` is not needed.

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::{Cmd, Probe};

use super::{healthz, share};

const BOOLEAN: &str = "httpd_can_network_connect_db";

/// A file-context rule for a path and everything below it.
struct Rule {
    path: String,
    kind: &'static str,
    why: &'static str,
    /// Relabel what is below too. Not the uploads: they may be the share, every node's files
    /// (new ones inherit the directory's label; a mounted share carries its own).
    recursive: bool,
}

fn rules(cx: &Context) -> [Rule; 2] {
    [
        Rule {
            path: share::uploads(cx),
            kind: "httpd_sys_rw_content_t",
            why: "let WordPress write its uploads",
            recursive: false,
        },
        Rule {
            path: healthz::DIR.to_string(),
            kind: "httpd_sys_content_t",
            why: "let php-fpm run the health check",
            recursive: true,
        },
    ]
}

pub struct SelinuxStep;

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
        for Rule { path, kind, why, recursive } in rules(cx) {
            let rule = probe.query(&Cmd::new("matchpathcon").arg(&path))?;
            let has_rule = rule.stdout.contains(kind);
            if !has_rule {
                let spec = format!("{path}(/.*)?");
                actions.push(Action::run(Cmd::new("semanage").args(["fcontext", "-a", "-t", kind, &spec]), why));
            }
            let restorecon = |extra: &[&str]| {
                let r = if recursive { vec!["-R"] } else { Vec::new() };
                Cmd::new("restorecon").args(r).args(extra.iter().copied()).arg(&path)
            };
            let relabel = probe.query(&restorecon(&["-n", "-v"]))?;
            if !has_rule || !relabel.stdout.trim().is_empty() {
                actions.push(Action::run(restorecon(&[]), format!("label {path} by the rules")));
            }
        }
        Ok(actions)
    }
}

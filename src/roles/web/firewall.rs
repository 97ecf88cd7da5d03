//! web.firewall (EL): HTTP open in firewalld, now and after a reload, where firewalld runs. The
//! public load balancer's probe and traffic arrive on port 80.

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::{Cmd, Probe};

pub struct FirewallStep;

impl Step for FirewallStep {
    fn id(&self) -> &'static str {
        "web.firewall"
    }

    fn check(&self, _cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        // Not running (or not installed): nothing filters port 80.
        if probe.query(&Cmd::new("firewall-cmd").arg("--state"))?.stdout.trim() != "running" {
            return Ok(Vec::new());
        }
        let mut actions = Vec::new();
        for permanent in [true, false] {
            let scope: &[&str] = if permanent { &["--permanent"] } else { &[] };
            let query = Cmd::new("firewall-cmd").args(scope.iter().copied()).arg("--query-service=http");
            if probe.query(&query)?.stdout.trim() != "yes" {
                let add = Cmd::new("firewall-cmd").args(scope.iter().copied()).arg("--add-service=http");
                let why = if permanent { "open HTTP after the next reload" } else { "open HTTP now" };
                actions.push(Action::run(add, why));
            }
        }
        Ok(actions)
    }
}

//! `<role>.firewall` (EL): what the role must receive, open in firewalld now and after a reload,
//! where firewalld runs. Web: HTTP from the public LB. Db: the cluster's ports, MariaDB, DRBD and
//! the internal LB's probe port.

use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::system::{Cmd, Probe};

/// A firewalld service or port, with the name people read in the plan.
pub struct Opening {
    pub label: String,
    /// `service=http` or `port=3306/tcp`.
    pub rule: String,
}

pub struct FirewallStep {
    pub id: &'static str,
    pub openings: fn(&Context) -> Vec<Opening>,
}

impl FirewallStep {
    pub fn web() -> Self {
        FirewallStep {
            id: "web.firewall",
            openings: |_| vec![Opening { label: "HTTP".into(), rule: "service=http".into() }],
        }
    }

    pub fn db() -> Self {
        FirewallStep {
            id: "db.firewall",
            openings: |cx| {
                let port = |label: &str, p: u16| Opening { label: label.into(), rule: format!("port={p}/tcp") };
                vec![
                    // pcsd 2224/tcp, corosync 5404-5412/udp, pacemaker remote … (the EL service).
                    Opening { label: "the cluster".into(), rule: "service=high-availability".into() },
                    port("MariaDB", cx.config.database.port),
                    port("DRBD", cx.config.db.drbd_port),
                    port("the LB probe", cx.config.db.probe_port),
                ]
            },
        }
    }
}

impl Step for FirewallStep {
    fn id(&self) -> &'static str {
        self.id
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        // Not running (or not installed): nothing filters.
        if probe.query(&Cmd::new("firewall-cmd").arg("--state"))?.stdout.trim() != "running" {
            return Ok(Vec::new());
        }
        let mut actions = Vec::new();
        for opening in (self.openings)(cx) {
            for permanent in [true, false] {
                let scope: &[&str] = if permanent { &["--permanent"] } else { &[] };
                let query =
                    Cmd::new("firewall-cmd").args(scope.iter().copied()).arg(format!("--query-{}", opening.rule));
                if probe.query(&query)?.stdout.trim() != "yes" {
                    let add =
                        Cmd::new("firewall-cmd").args(scope.iter().copied()).arg(format!("--add-{}", opening.rule));
                    let why = if permanent {
                        format!("open {} after the next reload", opening.label)
                    } else {
                        format!("open {} now", opening.label)
                    };
                    actions.push(Action::run(add, why));
                }
            }
        }
        Ok(actions)
    }
}

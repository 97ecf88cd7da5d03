//! The db role: on a fake db VM (golden plans, convergence, kill-anywhere, refusals), and
//! judged by the real tools installed here: pcs + Pacemaker on an offline CIB, drbdadm on the
//! rendered resource files, loop devices as data disks and SBD disks (the real sbd), a real
//! mariadbd, crypt.

mod bootstrap;
mod cib;
mod disk;
mod drbd;
mod fake;
mod hacluster;
mod health;
mod mariadb;
mod sbd;

use std::process::Command;

use hainit::config::Config;
use hainit::engine::{Context, Options};
use hainit::imds::InstanceDoc;
use hainit::inventory::Inventory;
use hainit::platform::OsId;
use hainit::secrets::{Secrets, SharedSecret};

use crate::common::{db_doc, SECRET};

/// A db node's inputs: db-a (leader, 10.0.1.4) or db-b (10.0.1.5) of cluster wpcluster.
pub struct Node {
    pub inv: Inventory,
    pub config: Config,
    pub secrets: Secrets,
}

impl Node {
    pub fn new(os: OsId, leader: bool, yaml: &str) -> Node {
        let (host, ip) = if leader { ("db-a", "10.0.1.4") } else { ("db-b", "10.0.1.5") };
        let doc = InstanceDoc::from_json(&db_doc(host, ip)).unwrap();
        let config = Config::from_yaml(yaml, "test.yaml").unwrap();
        let inv = Inventory::resolve(&doc, &config, &Default::default(), os).unwrap();
        Node { inv, config, secrets: SharedSecret::try_new(SECRET, "test").unwrap().into() }
    }

    pub fn cx(&self, options: Options) -> Context<'_> {
        Context {
            inv: &self.inv,
            platform: self.inv.platform.platform(),
            config: &self.config,
            secrets: &self.secrets,
            options,
        }
    }
}

/// Run a real tool; its stdout, or a panic with everything it said.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn assert_root(what: &str) {
    assert!(nix::unistd::geteuid().is_root(), "{what} needs root (as in CI)");
}

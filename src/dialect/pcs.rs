//! pcs 0.9 (CentOS 7) vs 0.10 (EL8) vs 0.11 (EL9, Debian 12): the only place that knows their
//! argument shapes (reference §2), for what only pcs does — host authentication and the cluster
//! setup. The cluster configuration is not pcs's: hainit renders and patches the CIB itself
//! (crate::cib). Every builder returns a `Cmd`; secrets never go in argv (pcs reads the password
//! from stdin when it is not a terminal, §2.2).

use super::PcsDialect;
use crate::roles::db::timing::Timing;
use crate::system::Cmd;

impl PcsDialect {
    /// Authenticate this node's pcs to the pcsd of `nodes` (password on stdin).
    pub fn auth(self, nodes: &[(&str, String)]) -> Cmd {
        match self {
            PcsDialect::V09 => Cmd::new("pcs").args(["cluster", "auth"]).args(nodes.iter().map(|(n, _)| *n)),
            PcsDialect::V010 | PcsDialect::V011 => Cmd::new("pcs")
                .args(["host", "auth"])
                .args(nodes.iter().flat_map(|(n, ip)| [n.to_string(), format!("addr={ip}")])),
        }
        .args(["-u", "hacluster"])
    }

    /// Write this node's corosync.conf at `path` and contact no node (0.9 `--local`, 0.10+
    /// `--corosync_conf`); the peer fetches it with [`Self::corosync_of`]. A networked setup
    /// would first *destroy* the cluster on every node over pcsd (0.10+ always does), which a
    /// slow node answers after pcs's 60 s request timeout (found in the lab) and which hainit
    /// never wants to ask of a peer anyway. No keys either: hainit writes the derived corosync
    /// authkey itself, so a replaced node rejoins with the same one. The step has moved any
    /// foreign corosync.conf aside first (0.10+ refuses to overwrite; 0.9 keeps `--force`, which
    /// it needs to set up a node that has cluster files already). The token and consensus are
    /// the timing profile's (roles/db/timing.rs).
    pub fn setup(self, cluster: &str, nodes: &[(&str, String)], t: Timing, path: &str) -> Cmd {
        match self {
            PcsDialect::V09 => Cmd::new("pcs")
                .args(["cluster", "setup", "--local", "--name", cluster])
                .args(nodes.iter().map(|(n, _)| *n))
                .args(["--token", &t.token_ms.to_string(), "--consensus", &t.consensus_ms.to_string(), "--force"]),
            PcsDialect::V010 | PcsDialect::V011 => Cmd::new("pcs")
                .args(["cluster", "setup", cluster])
                .args(nodes.iter().flat_map(|(n, ip)| [n.to_string(), format!("addr={ip}")]))
                .args(["totem", &format!("token={}", t.token_ms), &format!("consensus={}", t.consensus_ms)])
                .args(["--corosync_conf", path]),
        }
    }

    /// Where pcs keeps this node's pcsd tokens: a JSON file keyed by node name (0.9 `tokens`,
    /// 0.10+ `known-hosts`).
    pub fn tokens_file(self) -> &'static str {
        match self {
            PcsDialect::V09 => "/var/lib/pcsd/tokens",
            PcsDialect::V010 | PcsDialect::V011 => "/var/lib/pcsd/known-hosts",
        }
    }

    /// Whether `tokens` (the text of [`Self::tokens_file`]) holds a token for `node`.
    pub fn has_token(tokens: &str, node: &str) -> bool {
        tokens.contains(&format!("\"{node}\""))
    }

    /// Read-only: the corosync.conf a (authenticated) node has.
    pub fn corosync_of(self, node: &str) -> Cmd {
        Cmd::new("pcs").args(["cluster", "corosync", node])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::db::timing;

    #[test]
    fn auth_and_setup_per_dialect() {
        let nodes = [("db-a", "10.0.1.4".to_string()), ("db-b", "10.0.1.5".to_string())];
        assert_eq!(PcsDialect::V09.auth(&nodes).argv_redacted().join(" "), "pcs cluster auth db-a db-b -u hacluster");
        assert_eq!(
            PcsDialect::V011.auth(&nodes).argv_redacted().join(" "),
            "pcs host auth db-a addr=10.0.1.4 db-b addr=10.0.1.5 -u hacluster"
        );
        assert_eq!(
            PcsDialect::V09.setup("wp", &nodes, timing::AZURE, "/etc/corosync/corosync.conf").argv_redacted().join(" "),
            "pcs cluster setup --local --name wp db-a db-b --token 30000 --consensus 36000 --force"
        );
        assert_eq!(
            PcsDialect::V010.setup("wp", &nodes, timing::FAST, "/etc/corosync/corosync.conf").argv_redacted().join(" "),
            "pcs cluster setup wp db-a addr=10.0.1.4 db-b addr=10.0.1.5 totem token=5000 consensus=6000 --corosync_conf \
             /etc/corosync/corosync.conf"
        );
    }
}

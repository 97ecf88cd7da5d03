//! Cluster state from `crm_mon` XML: the `--output-as=xml` form (Pacemaker ≥ 2.0.3) and the
//! legacy `--as-xml` form (CentOS 7), with every role spelling (reference §2.9).

use roxmltree::{Document, Node};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterState {
    /// crm_mon reached a running cluster (exit 102 / status code 102 means it did not).
    pub connected: bool,
    pub dc: Option<String>,
    pub quorate: bool,
    pub stonith_enabled: Option<bool>,
    pub nodes: Vec<NodeState>,
    pub resources: Vec<ResourceState>,
    /// Failed operations, as `op on node: reason`.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub unclean: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    pub id: String,
    /// `Promoted`/`Unpromoted` whatever the Pacemaker spelled (Master/Slave), or Started/Stopped.
    pub role: String,
    pub active: bool,
    pub failed: bool,
    pub nodes: Vec<String>,
}

impl ClusterState {
    pub fn online_nodes(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| n.online).map(|n| n.name.as_str()).collect()
    }

    /// Where `id` runs in `role` (`Started` for plain resources).
    pub fn node_of(&self, id: &str, role: &str) -> Option<&str> {
        self.resources
            .iter()
            .find(|r| r.id == id && r.active && r.role == role)
            .and_then(|r| r.nodes.first())
            .map(String::as_str)
    }

    pub fn any_failed(&self) -> bool {
        !self.failures.is_empty() || self.resources.iter().any(|r| r.failed)
    }
}

fn normalise_role(role: &str) -> String {
    match role {
        "Master" => "Promoted".into(),
        "Slave" => "Unpromoted".into(),
        other => other.into(),
    }
}

fn flag(n: Node, attr: &str) -> bool {
    n.attribute(attr) == Some("true")
}

/// Parse either XML form. Text that is not XML is an error message for `status`.
pub fn parse(xml: &str) -> Result<ClusterState, String> {
    let doc = Document::parse(xml).map_err(|e| format!("crm_mon output is not XML: {e}"))?;
    let root = doc.root_element();
    let mut state = ClusterState::default();
    if !matches!(root.tag_name().name(), "pacemaker-result" | "crm_mon") {
        return Err(format!("crm_mon output has an unexpected root <{}>", root.tag_name().name()));
    }
    let status_code = root.children().find(|n| n.has_tag_name("status")).and_then(|s| s.attribute("code"));
    state.connected = status_code.is_none_or(|c| c == "0") && root.children().any(|n| n.has_tag_name("nodes"));
    for n in root.descendants() {
        match n.tag_name().name() {
            "current_dc" if flag(n, "present") => {
                state.dc = n.attribute("name").map(str::to_string);
                state.quorate = flag(n, "with_quorum");
            }
            "cluster_options" => state.stonith_enabled = n.attribute("stonith-enabled").map(|v| v == "true"),
            "node" if n.parent().is_some_and(|p| p.has_tag_name("nodes")) => state.nodes.push(NodeState {
                name: n.attribute("name").unwrap_or_default().to_string(),
                online: flag(n, "online"),
                standby: flag(n, "standby"),
                unclean: flag(n, "unclean"),
            }),
            "resource" if n.parent().is_some_and(|p| !p.has_tag_name("node")) => state.resources.push(ResourceState {
                id: n.attribute("id").unwrap_or_default().to_string(),
                role: normalise_role(n.attribute("role").unwrap_or("Stopped")),
                active: flag(n, "active"),
                failed: flag(n, "failed"),
                nodes: n
                    .children()
                    .filter(|c| c.has_tag_name("node"))
                    .filter_map(|c| c.attribute("name").map(str::to_string))
                    .collect(),
            }),
            "failure" => state.failures.push(format!(
                "{} on {}: {}",
                n.attribute("op_key").unwrap_or("?"),
                n.attribute("node").unwrap_or("?"),
                n.attribute("exitreason").filter(|r| !r.is_empty()).or(n.attribute("exitstatus")).unwrap_or("failed")
            )),
            _ => {}
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/crm_mon/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn current_format_with_promoted_roles() {
        let s = parse(&fixture("debian12-live.xml")).unwrap();
        assert!(s.connected && s.quorate);
        assert_eq!(s.dc.as_deref(), Some("db-a"));
        assert_eq!(s.online_nodes(), ["db-a", "db-b"]);
        assert_eq!(s.node_of("drbd_wp", "Promoted"), Some("db-a"));
        assert_eq!(s.node_of("drbd_wp", "Unpromoted"), Some("db-b"));
        assert_eq!(s.node_of("mysqld", "Started"), Some("db-a"));
        assert_eq!(s.stonith_enabled, Some(false));
        assert_eq!(s.failures, ["mysqld_monitor_20000 on db-b: not running"]);
        assert!(s.any_failed());
    }

    #[test]
    fn legacy_format_with_master_slave() {
        let s = parse(&fixture("el7-legacy.xml")).unwrap();
        assert!(s.connected && s.quorate);
        assert_eq!(s.dc.as_deref(), Some("db-b"));
        assert_eq!(s.node_of("drbd_wp", "Promoted"), Some("db-a"));
        assert_eq!(s.node_of("lb_probe", "Started"), Some("db-a"));
        assert!(!s.any_failed());
    }

    #[test]
    fn cluster_down_and_garbage() {
        let s = parse(&fixture("debian12-down.xml")).unwrap();
        assert!(!s.connected && s.nodes.is_empty() && s.dc.is_none());
        assert!(parse("Error: not xml").unwrap_err().contains("not XML"));
        assert!(parse("<html/>").unwrap_err().contains("<html>"));
        let simulated = parse(&fixture("debian12-running.xml")).unwrap();
        assert!(simulated.connected && !simulated.quorate && simulated.dc.is_none());
    }
}

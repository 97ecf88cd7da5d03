//! Cluster state from `crm_mon` XML: the `--output-as=xml` form (Pacemaker ≥ 2.0.3) and the
//! legacy `--as-xml` form (CentOS 7), with every role spelling (reference §2.9), into types.
//!
//! "Not running" is a state only where crm_mon says so: by its exit status 102
//! (CRM_EX_NOT_CONNECTED, Pacemaker 1.1 and 2.x alike), or, while pacemakerd is still starting
//! its daemons (Pacemaker ≥ 2.1: exit 0), by its `<pacemakerd state="…">` element in place of the
//! cluster. Any other failure, and output that does not parse, is an error.

use std::fmt;

use roxmltree::{Document, Node};

use crate::error::{Error, Result};
use crate::system::Output;

/// crm_mon's exit status when it cannot connect to a cluster on this node.
pub const EXIT_NOT_CONNECTED: i32 = 102;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    /// Pacemaker does not run on this node (crm_mon exit 102).
    NotRunning,
    /// pacemakerd runs but its daemons do not serve (yet, or any more).
    Pacemakerd(PacemakerdState),
    Running(ClusterState),
}

/// pacemakerd's own state when it is not running the cluster (crm_mon's `<pacemakerd state>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacemakerdState {
    Init,
    StartingDaemons,
    /// Waiting for SBD's go-ahead.
    WaitForPing,
    /// Its daemons run but crm_mon got no view of the cluster from them yet (seen in the lab
    /// seconds after the start: exit 0, `state="running"`, no `<nodes>`).
    Running,
    ShuttingDown,
    ShutdownComplete,
}

impl PacemakerdState {
    pub fn parse(text: &str) -> Option<PacemakerdState> {
        Some(match text {
            "init" => PacemakerdState::Init,
            "starting_daemons" => PacemakerdState::StartingDaemons,
            "wait_for_ping" => PacemakerdState::WaitForPing,
            "running" => PacemakerdState::Running,
            "shutting_down" => PacemakerdState::ShuttingDown,
            "shutdown_complete" => PacemakerdState::ShutdownComplete,
            _ => return None,
        })
    }
}

impl fmt::Display for PacemakerdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacemakerdState::Init => "init",
            PacemakerdState::StartingDaemons => "starting_daemons",
            PacemakerdState::WaitForPing => "wait_for_ping",
            PacemakerdState::Running => "running",
            PacemakerdState::ShuttingDown => "shutting_down",
            PacemakerdState::ShutdownComplete => "shutdown_complete",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterState {
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
    pub status: NodeStatus,
}

/// One node as the cluster sees it; the first that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// Lost without being fenced yet.
    Unclean,
    /// Joining.
    Pending,
    Offline,
    Standby,
    Maintenance,
    Online,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceState {
    pub id: String,
    pub role: Role,
    pub active: bool,
    pub failed: bool,
    pub nodes: Vec<String>,
}

/// A resource instance's role, whatever Pacemaker called it (1.1 and 2.0: Master/Slave).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Unknown,
    Stopped,
    Started,
    Unpromoted,
    Promoted,
    /// An operation in flight (Pacemaker ≥ 2.1 records pending operations by default and shows
    /// them in place of the role): not yet in the role it is heading for.
    Starting,
    Stopping,
    Promoting,
    Demoting,
    Migrating,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "Unknown" => Role::Unknown,
            "Stopped" => Role::Stopped,
            "Started" => Role::Started,
            "Unpromoted" | "Slave" => Role::Unpromoted,
            "Promoted" | "Master" => Role::Promoted,
            "Starting" => Role::Starting,
            "Stopping" => Role::Stopping,
            "Promoting" => Role::Promoting,
            "Demoting" => Role::Demoting,
            "Migrating" => Role::Migrating,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Unknown => "Unknown",
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Unpromoted => "Unpromoted",
            Role::Promoted => "Promoted",
            Role::Starting => "Starting",
            Role::Stopping => "Stopping",
            Role::Promoting => "Promoting",
            Role::Demoting => "Demoting",
            Role::Migrating => "Migrating",
        })
    }
}

impl NodeStatus {
    /// A member of the cluster (standby and maintenance nodes are).
    pub fn is_online(self) -> bool {
        matches!(self, NodeStatus::Online | NodeStatus::Standby | NodeStatus::Maintenance)
    }
}

impl ClusterState {
    pub fn online_nodes(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| n.status.is_online()).map(|n| n.name.as_str()).collect()
    }

    /// Where `id` runs in `role` (`Started` for plain resources).
    pub fn node_of(&self, id: &str, role: Role) -> Option<&str> {
        self.resources
            .iter()
            .find(|r| r.id == id && r.active && r.role == role)
            .and_then(|r| r.nodes.first())
            .map(String::as_str)
    }

    pub fn any_failed(&self) -> bool {
        !self.failures.is_empty() || self.resources.iter().any(|r| r.failed)
    }

    /// Both nodes in, with quorum and a DC: what configuring the cluster waits for.
    pub fn is_formed(&self, members: usize) -> bool {
        self.quorate && self.dc.is_some() && self.online_nodes().len() == members
    }
}

/// crm_mon's answer: exit 0 with its XML, or exit 102.
pub fn read(out: &Output) -> Result<Cluster> {
    match out.code {
        Some(0) => document(&out.stdout),
        Some(EXIT_NOT_CONNECTED) => Ok(Cluster::NotRunning),
        Some(code) => Err(Error::step(format!("crm_mon failed with exit {code}: {}", out.tail()))),
        None => Err(Error::step(format!("crm_mon was killed (time limit or signal): {}", out.tail()))),
    }
}

fn flag(n: Node, attr: &str) -> bool {
    n.attribute(attr) == Some("true")
}

fn required<'a>(n: Node<'a, '_>, attr: &str) -> Result<&'a str> {
    n.attribute(attr).ok_or_else(|| Error::step(format!("crm_mon output: <{}> without {attr}", n.tag_name().name())))
}

fn node_status(n: Node) -> NodeStatus {
    if flag(n, "unclean") {
        NodeStatus::Unclean
    } else if !flag(n, "online") && flag(n, "pending") {
        NodeStatus::Pending
    } else if !flag(n, "online") {
        NodeStatus::Offline
    } else if flag(n, "standby") {
        NodeStatus::Standby
    } else if flag(n, "maintenance") {
        NodeStatus::Maintenance
    } else {
        NodeStatus::Online
    }
}

/// Either XML form of a running cluster.
pub fn parse(xml: &str) -> Result<ClusterState> {
    match document(xml)? {
        Cluster::Running(s) => Ok(s),
        other => Err(Error::step(format!("crm_mon shows no running cluster: {other:?}"))),
    }
}

/// What crm_mon's XML (exit 0) shows: the cluster, or pacemakerd not serving it.
fn document(xml: &str) -> Result<Cluster> {
    let doc = Document::parse(xml).map_err(|e| Error::step(format!("crm_mon output is not XML: {e}")))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "pacemaker-result" | "crm_mon") {
        return Err(Error::step(format!("crm_mon output has an unexpected root <{}>", root.tag_name().name())));
    }
    if root.children().any(|n| n.has_tag_name("nodes")) {
        return running(root).map(Cluster::Running);
    }
    match root.children().find(|n| n.has_tag_name("pacemakerd")) {
        Some(p) => {
            let text = required(p, "state")?;
            PacemakerdState::parse(text)
                .map(Cluster::Pacemakerd)
                .ok_or_else(|| Error::step(format!("crm_mon output: pacemakerd is {text:?} but lists no nodes")))
        }
        None => Err(Error::step("crm_mon output lists no nodes")),
    }
}

fn running(root: Node) -> Result<ClusterState> {
    let mut state = ClusterState::default();
    for n in root.descendants() {
        match n.tag_name().name() {
            "current_dc" if flag(n, "present") => {
                state.dc = Some(required(n, "name")?.to_string());
                state.quorate = flag(n, "with_quorum");
            }
            "cluster_options" => state.stonith_enabled = n.attribute("stonith-enabled").map(|v| v == "true"),
            "node" if n.parent().is_some_and(|p| p.has_tag_name("nodes")) => {
                state.nodes.push(NodeState { name: required(n, "name")?.to_string(), status: node_status(n) })
            }
            "resource" if n.parent().is_some_and(|p| !p.has_tag_name("node")) => {
                let role = required(n, "role")?;
                state.resources.push(ResourceState {
                    id: required(n, "id")?.to_string(),
                    role: Role::parse(role)
                        .ok_or_else(|| Error::step(format!("crm_mon output: unknown role {role:?}")))?,
                    active: flag(n, "active"),
                    failed: flag(n, "failed"),
                    nodes: n
                        .children()
                        .filter(|c| c.has_tag_name("node"))
                        .map(|c| required(c, "name").map(str::to_string))
                        .collect::<Result<_>>()?,
                })
            }
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

    fn running(out: Output) -> ClusterState {
        match read(&out).unwrap() {
            Cluster::Running(s) => s,
            other => panic!("not running ({other:?}): {out:?}"),
        }
    }

    #[test]
    fn current_format_with_promoted_roles() {
        let s = running(Output::ok(fixture("debian12-live.xml")));
        assert!(s.quorate && s.is_formed(2));
        assert_eq!(s.dc.as_deref(), Some("db-a"));
        assert_eq!(s.online_nodes(), ["db-a", "db-b"]);
        assert_eq!(s.node_of("drbd_wp", Role::Promoted), Some("db-a"));
        assert_eq!(s.node_of("drbd_wp", Role::Unpromoted), Some("db-b"));
        assert_eq!(s.node_of("mysqld", Role::Started), Some("db-a"));
        assert_eq!(s.node_of("mysqld", Role::Promoted), None);
        assert_eq!(s.stonith_enabled, Some(false));
        assert_eq!(s.failures, ["mysqld_monitor_20000 on db-b: not running"]);
        assert!(s.any_failed());
    }

    /// A start in flight shows as role "Starting" (lab run 20261206-043704-1759): the resource is
    /// not Started yet, which is a state, not an error; an unknown role still is one.
    #[test]
    fn an_operation_in_flight_is_not_yet_the_role() {
        let live = fixture("debian12-live.xml");
        let starting = live.replacen(
            "id=\"mysqld\" resource_agent=\"ocf:heartbeat:mysql\" role=\"Started\"",
            "id=\"mysqld\" resource_agent=\"ocf:heartbeat:mysql\" role=\"Starting\"",
            1,
        );
        assert_ne!(starting, live, "the fixture has mysqld Started");
        let s = running(Output::ok(starting.clone()));
        assert_eq!(s.node_of("mysqld", Role::Started), None);
        assert_eq!(s.node_of("mysqld", Role::Starting), Some("db-a"));
        let odd = starting.replace("role=\"Starting\"", "role=\"Dancing\"");
        assert!(read(&Output::ok(odd)).unwrap_err().to_string().contains("unknown role \"Dancing\""));
    }

    #[test]
    fn legacy_format_with_master_slave() {
        let s = running(Output::ok(fixture("el7-legacy.xml")));
        assert!(s.is_formed(2));
        assert_eq!(s.dc.as_deref(), Some("db-b"));
        assert_eq!(s.node_of("drbd_wp", Role::Promoted), Some("db-a"));
        assert_eq!(s.node_of("drbd_wp", Role::Unpromoted), Some("db-b"));
        assert_eq!(s.node_of("lb_probe", Role::Started), Some("db-a"));
        assert!(!s.any_failed());
    }

    #[test]
    fn not_running_only_by_exit_102() {
        let down = Output { code: Some(102), stdout: fixture("debian12-down.xml"), stderr: String::new() };
        assert_eq!(read(&down).unwrap(), Cluster::NotRunning);
        // CentOS 7 prints an empty legacy document with it.
        let legacy = Output { code: Some(102), stdout: "<crm_mon version=\"1.1.23\"/>".into(), stderr: String::new() };
        assert_eq!(read(&legacy).unwrap(), Cluster::NotRunning);
        // The same document with any other status is an error, not "down".
        for code in [Some(1), Some(69), Some(124), None] {
            let out = Output { code, stdout: fixture("debian12-down.xml"), stderr: "boom".into() };
            assert!(read(&out).unwrap_err().to_string().contains("crm_mon"), "{code:?}");
        }
        assert!(read(&Output::ok(fixture("debian12-down.xml"))).unwrap_err().to_string().contains("no nodes"));
    }

    #[test]
    fn pacemakerd_starting_its_daemons_is_a_state() {
        // What Pacemaker 2.1 prints (exit 0) right after `systemctl start pacemaker`.
        let starting = fixture("debian12-starting.xml");
        assert_eq!(read(&Output::ok(starting.clone())).unwrap(), Cluster::Pacemakerd(PacemakerdState::StartingDaemons));
        let odd = starting.replace("starting_daemons", "dancing");
        assert!(read(&Output::ok(odd)).unwrap_err().to_string().contains("\"dancing\""));
        // Daemons up, no cluster view yet: a state to wait out, not an error.
        let running = starting.replace("starting_daemons", "running");
        assert_eq!(read(&Output::ok(running)).unwrap(), Cluster::Pacemakerd(PacemakerdState::Running));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("Error: not xml").unwrap_err().to_string().contains("not XML"));
        assert!(parse("<html/>").unwrap_err().to_string().contains("<html>"));
        let odd_role = fixture("debian12-live.xml").replace("role=\"Promoted\"", "role=\"Leader\"");
        assert!(parse(&odd_role).unwrap_err().to_string().contains("\"Leader\""));
        let nameless =
            fixture("debian12-live.xml").replace("<node name=\"db-b\" id=\"2\" online", "<node id=\"2\" online");
        assert!(parse(&nameless).unwrap_err().to_string().contains("without name"));
    }

    #[test]
    fn simulated_cluster_has_no_dc_and_node_states_are_enums() {
        let s = running(Output::ok(fixture("debian12-running.xml")));
        assert!(!s.quorate && s.dc.is_none() && !s.is_formed(2));
        let xml = fixture("debian12-live.xml")
            .replace("<node name=\"db-a\" id=\"1\" online=\"true\" standby=\"false\"", "<node name=\"db-a\" id=\"1\" online=\"true\" standby=\"true\"")
            .replace("<node name=\"db-b\" id=\"2\" online=\"true\" standby=\"false\" standby_onfail=\"false\" maintenance=\"false\" pending=\"false\" unclean=\"false\"",
                     "<node name=\"db-b\" id=\"2\" online=\"false\" standby=\"false\" standby_onfail=\"false\" maintenance=\"false\" pending=\"false\" unclean=\"true\"");
        let s = parse(&xml).unwrap();
        let statuses: Vec<NodeStatus> = s.nodes.iter().map(|n| n.status).collect();
        assert_eq!(statuses, [NodeStatus::Standby, NodeStatus::Unclean]);
        assert_eq!(s.online_nodes(), ["db-a"]);
    }
}

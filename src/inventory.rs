//! IMDS document + config + flags → the validated `Inventory` (pure, no I/O).
//!
//! Tag contract (README.md "Tags"): `hainit-role`, `hainit-cluster`, `hainit-peers` (`name=ip,…`),
//! `hainit-vip`, and for web nodes `hainit-share` (docs/web-role.md). Tags are read from
//! `compute.tagsList` only.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::imds::InstanceDoc;
use crate::platform::OsId;

pub const TAG_ROLE: &str = "hainit-role";
pub const TAG_CLUSTER: &str = "hainit-cluster";
pub const TAG_PEERS: &str = "hainit-peers";
pub const TAG_VIP: &str = "hainit-vip";
/// The web tier's shared uploads storage (`host:/path` of an NFS 4.1 export); web role only.
pub const TAG_SHARE: &str = "hainit-share";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Db,
    Web,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "db" => Ok(Role::Db),
            "web" => Ok(Role::Web),
            other => Err(format!("unknown role {other:?} (expected db or web)")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Db => "db",
            Role::Web => "web",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
}

/// Facts about the VM that only matter to Azure-facing parts (fencing, status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AzureFacts {
    pub vm_name: String,
    pub vm_id: String,
    pub resource_group: String,
    pub subscription_id: String,
    pub location: String,
    pub zone: Option<String>,
    /// This VM's subnet as `address/prefix`, when IMDS reports it.
    pub subnet: Option<String>,
    pub data_disk_luns: Vec<u32>,
}

/// The resolved view of this node and its cluster. Serialises to the `discover --json` contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub role: Role,
    pub node: Node,
    pub cluster: String,
    pub peers: Vec<Node>,
    pub vip: Option<Ipv4Addr>,
    /// The initial DRBD primary: the lowest node name in `hainit-peers` (db role only).
    pub leader: Option<String>,
    /// Tag `hainit-share` (else config `web.share`) as given; the web role parses and requires it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    pub platform: OsId,
    pub azure: AzureFacts,
}

/// Values given on the command line; they win over tags and config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub role: Option<Role>,
}

impl Inventory {
    pub fn resolve(doc: &InstanceDoc, config: &Config, flags: &Overrides, os: OsId) -> Result<Inventory> {
        let role = resolve_role(doc, config, flags)?;
        let cluster = layered(doc, TAG_CLUSTER, config.cluster.as_deref()).ok_or_else(|| {
            Error::input(format!("tag {TAG_CLUSTER} is missing (and `cluster` is not in the config)"))
        })?;
        validate_cluster_name(&cluster)?;

        let peers = match layered(doc, TAG_PEERS, config.peers.as_deref()) {
            Some(text) => parse_peers(&text)?,
            None if role == Role::Db => {
                return Err(Error::input(format!(
                    "tag {TAG_PEERS} is missing: the db role needs the pair as name=ip,name=ip"
                )))
            }
            None => Vec::new(),
        };
        let vip = match layered(doc, TAG_VIP, config.vip.as_deref()) {
            Some(text) => Some(parse_ip(&text).map_err(|why| Error::input(format!("tag {TAG_VIP}: {why}")))?),
            None if role == Role::Web => {
                return Err(Error::input(format!(
                    "tag {TAG_VIP} is missing: the web role needs the internal load balancer's IP for DB_HOST"
                )))
            }
            None => None,
        };

        let share = match role {
            Role::Web => layered(doc, TAG_SHARE, config.web.share.as_deref()),
            Role::Db => None,
        };

        let host_name = doc.computer_name.clone().unwrap_or_else(|| doc.vm_name.clone());
        let (node, leader) = match role {
            Role::Db => {
                if peers.len() != 2 {
                    return Err(Error::input(format!(
                        "tag {TAG_PEERS}: the db role needs exactly two peers, got {} ({})",
                        peers.len(),
                        describe(&peers)
                    )));
                }
                let me = find_self(&peers, &host_name, &doc.vm_name, doc.private_ip)?;
                let leader = peers.iter().map(|p| p.name.as_str()).min().map(str::to_string);
                (me, leader)
            }
            Role::Web => (Node { name: host_name, ip: doc.private_ip }, None),
        };

        Ok(Inventory {
            role,
            node,
            cluster,
            peers,
            vip,
            leader,
            share,
            platform: os,
            azure: AzureFacts {
                vm_name: doc.vm_name.clone(),
                vm_id: doc.vm_id.clone(),
                resource_group: doc.resource_group.clone(),
                subscription_id: doc.subscription_id.clone(),
                location: doc.location.clone(),
                zone: doc.zone.clone(),
                subnet: doc.subnet.map(|(a, p)| format!("{a}/{p}")),
                data_disk_luns: doc.data_disk_luns.clone(),
            },
        })
    }

    pub fn is_leader(&self) -> bool {
        self.leader.as_deref() == Some(self.node.name.as_str())
    }

    /// The other node of the db pair.
    pub fn peer(&self) -> Option<&Node> {
        self.peers.iter().find(|p| p.name != self.node.name)
    }
}

fn resolve_role(doc: &InstanceDoc, config: &Config, flags: &Overrides) -> Result<Role> {
    if let Some(role) = flags.role {
        return Ok(role);
    }
    match doc.tag(TAG_ROLE) {
        Some(value) => value.trim().parse().map_err(|why| Error::input(format!("tag {TAG_ROLE}: {why}"))),
        None => config
            .role
            .ok_or_else(|| Error::input(format!("tag {TAG_ROLE} is missing (expected db or web; or pass --role)"))),
    }
}

/// Tag value if present (trimmed), else the config fallback.
fn layered(doc: &InstanceDoc, tag: &str, config: Option<&str>) -> Option<String> {
    doc.tag(tag).or(config).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn validate_cluster_name(name: &str) -> Result<()> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "tag {TAG_CLUSTER}: {name:?} is not a valid cluster name (a letter, then letters, digits, - or _; at most 32)"
        )))
    }
}

fn parse_ip(text: &str) -> std::result::Result<Ipv4Addr, String> {
    text.trim().parse().map_err(|_| format!("{text:?} is not an IPv4 address"))
}

fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `db-a=10.0.1.4,db-b=10.0.1.5` → nodes, refusing malformed entries and duplicates.
pub fn parse_peers(text: &str) -> Result<Vec<Node>> {
    let bad = |why: String| Error::input(format!("tag {TAG_PEERS} ({text:?}): {why}"));
    let mut peers: Vec<Node> = Vec::new();
    let (mut names, mut ips) = (BTreeSet::new(), BTreeSet::new());
    for entry in text.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(bad("empty entry (expected name=ip,name=ip)".into()));
        }
        let (name, ip) = entry.split_once('=').ok_or_else(|| bad(format!("entry {entry:?} has no \"=ip\"")))?;
        let name = name.trim();
        if !is_host_name(name) {
            return Err(bad(format!("{name:?} is not a valid host name")));
        }
        let ip = parse_ip(ip).map_err(|why| bad(format!("entry {entry:?}: {why}")))?;
        if !names.insert(name.to_string()) {
            return Err(bad(format!("duplicate name {name:?}")));
        }
        if !ips.insert(ip) {
            return Err(bad(format!("duplicate IP {ip}")));
        }
        peers.push(Node { name: name.to_string(), ip });
    }
    Ok(peers)
}

fn describe(peers: &[Node]) -> String {
    peers.iter().map(|p| format!("{}={}", p.name, p.ip)).collect::<Vec<_>>().join(",")
}

/// This node's entry: by host name, VM name or IP. A name match with another IP is an error.
fn find_self(peers: &[Node], host_name: &str, vm_name: &str, ip: Ipv4Addr) -> Result<Node> {
    if let Some(p) = peers.iter().find(|p| p.name == host_name || p.name == vm_name) {
        if p.ip != ip {
            return Err(Error::input(format!(
                "tag {TAG_PEERS}: entry {}={} names this node but its IP is {ip}",
                p.name, p.ip
            )));
        }
        return Ok(p.clone());
    }
    peers.iter().find(|p| p.ip == ip).cloned().ok_or_else(|| {
        Error::input(format!(
            "tag {TAG_PEERS} ({}) does not list this node (host name {host_name:?}, VM name {vm_name:?}, IP {ip})",
            describe(peers)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::imds::Tag;

    fn doc(tags: &[(&str, &str)], name: &str, ip: &str) -> InstanceDoc {
        InstanceDoc {
            vm_name: format!("vm-{name}"),
            computer_name: Some(name.to_string()),
            vm_id: "id".into(),
            resource_group: "rg".into(),
            subscription_id: "sub".into(),
            location: "westeurope".into(),
            zone: None,
            user_data: None,
            tags: tags.iter().map(|(n, v)| Tag { name: n.to_string(), value: v.to_string() }).collect(),
            private_ip: ip.parse().unwrap(),
            subnet: None,
            data_disk_luns: vec![0],
        }
    }

    const DB_TAGS: [(&str, &str); 4] = [
        ("hainit-role", "db"),
        ("hainit-cluster", "wpcluster"),
        ("hainit-peers", "db-b=10.0.1.5,db-a=10.0.1.4"),
        ("hainit-vip", "10.0.1.10"),
    ];

    fn resolve(d: &InstanceDoc) -> Result<Inventory> {
        Inventory::resolve(d, &Config::default(), &Overrides::default(), OsId::Debian12)
    }

    #[test]
    fn db_node_leader_is_the_lowest_name() {
        let a = resolve(&doc(&DB_TAGS, "db-a", "10.0.1.4")).unwrap();
        assert_eq!(a.role, Role::Db);
        assert_eq!(a.leader.as_deref(), Some("db-a"));
        assert!(a.is_leader());
        assert_eq!(a.peer().unwrap().name, "db-b");
        let b = resolve(&doc(&DB_TAGS, "db-b", "10.0.1.5")).unwrap();
        assert!(!b.is_leader());
        assert_eq!(b.node, Node { name: "db-b".into(), ip: "10.0.1.5".parse().unwrap() });
    }

    #[test]
    fn node_is_found_by_ip_when_the_name_differs() {
        let inv = resolve(&doc(&DB_TAGS, "renamed", "10.0.1.5")).unwrap();
        assert_eq!(inv.node.name, "db-b");
    }

    #[test]
    fn unrelated_tags_with_separators_do_not_matter() {
        let mut tags = DB_TAGS.to_vec();
        tags.push(("owner", "team:db;cost=1,2"));
        assert!(resolve(&doc(&tags, "db-a", "10.0.1.4")).is_ok());
    }

    #[test]
    fn web_node_needs_a_vip_but_no_peers() {
        let tags = [("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", "10.0.1.10")];
        let inv = resolve(&doc(&tags, "web-1", "10.0.2.4")).unwrap();
        assert_eq!(inv.leader, None);
        assert_eq!(inv.node.name, "web-1");
        assert_eq!(inv.vip, Some("10.0.1.10".parse().unwrap()));
    }

    #[test]
    fn flag_wins_over_tag_and_tag_over_config() {
        let d = doc(&DB_TAGS, "db-a", "10.0.1.4");
        let config = Config { role: Some(Role::Web), cluster: Some("other".into()), ..Config::default() };
        let inv = Inventory::resolve(&d, &config, &Overrides::default(), OsId::El9).unwrap();
        assert_eq!((inv.role, inv.cluster.as_str()), (Role::Db, "wpcluster"));
        let inv = Inventory::resolve(&d, &config, &Overrides { role: Some(Role::Web) }, OsId::El9).unwrap();
        assert_eq!(inv.role, Role::Web);
    }

    /// The bad-input matrix of the tag contract: each names the tag and the value seen.
    #[test]
    fn bad_tags_are_input_errors_naming_tag_and_value() {
        let with = |key: &str, value: Option<&str>| {
            let mut tags: Vec<(&str, &str)> = DB_TAGS.iter().copied().filter(|(k, _)| *k != key).collect();
            if let Some(v) = value {
                tags.push((key, v));
            }
            tags.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()
        };
        type Case<'a> = (Vec<(String, String)>, &'a str, &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (with("hainit-role", None), "10.0.1.4", &["hainit-role is missing"]),
            (with("hainit-role", Some("cache")), "10.0.1.4", &["hainit-role", "\"cache\""]),
            (with("hainit-cluster", None), "10.0.1.4", &["hainit-cluster is missing"]),
            (with("hainit-cluster", Some("wp cluster;")), "10.0.1.4", &["hainit-cluster", "\"wp cluster;\""]),
            (with("hainit-peers", None), "10.0.1.4", &["hainit-peers is missing"]),
            (with("hainit-peers", Some("db-a=10.0.1.4")), "10.0.1.4", &["exactly two peers, got 1"]),
            (
                with("hainit-peers", Some("db-a=10.0.1.4,db-b=10.0.1.5,db-c=10.0.1.6")),
                "10.0.1.4",
                &["exactly two peers, got 3"],
            ),
            (with("hainit-peers", Some("db-a=10.0.1.4,db-a=10.0.1.5")), "10.0.1.4", &["duplicate name \"db-a\""]),
            (with("hainit-peers", Some("db-a=10.0.1.4,db-b=10.0.1.4")), "10.0.1.4", &["duplicate IP 10.0.1.4"]),
            (with("hainit-peers", Some("db-a=10.0.1.4,db-b=10.0.1.999")), "10.0.1.4", &["\"10.0.1.999\"", "IPv4"]),
            (with("hainit-peers", Some("db-a=10.0.1.4,db-b")), "10.0.1.4", &["\"db-b\" has no \"=ip\""]),
            (with("hainit-peers", Some("db-a=10.0.1.4,,db-b=10.0.1.5")), "10.0.1.4", &["empty entry"]),
            (with("hainit-peers", Some("db_a=10.0.1.4,db-b=10.0.1.5")), "10.0.1.4", &["\"db_a\" is not a valid host"]),
            (
                with("hainit-peers", Some("db-x=10.0.1.7,db-y=10.0.1.8")),
                "10.0.1.4",
                &["hainit-peers", "does not list this node", "db-x=10.0.1.7"],
            ),
            (with("hainit-peers", Some("db-a=10.0.1.9,db-b=10.0.1.5")), "10.0.1.4", &["db-a=10.0.1.9 names this node"]),
            (with("hainit-vip", Some("10.0.1")), "10.0.1.4", &["hainit-vip", "\"10.0.1\""]),
        ];
        for (tags, ip, wants) in cases {
            let pairs: Vec<(&str, &str)> = tags.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let e = resolve(&doc(&pairs, "db-a", ip)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Input, "{pairs:?}");
            for want in wants {
                assert!(e.to_string().contains(want), "{pairs:?}: {e} lacks {want}");
            }
        }
        let web = [("hainit-role", "web"), ("hainit-cluster", "c")];
        let e = resolve(&doc(&web, "web-1", "10.0.2.4")).unwrap_err();
        assert!(e.to_string().contains("hainit-vip is missing"), "{e}");
    }
}

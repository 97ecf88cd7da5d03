//! The cluster configuration hainit wants, as types: cluster options, resource and operation
//! defaults, primitives with their parameters, meta attributes and operations, the group, the
//! promotable clone, the constraints and the fence device. One value per Pacemaker line;
//! [`super::render`] spells it in that line's XML.

use super::line::Line;

/// `name=value` pairs of one attribute set, in the order they are written.
pub type Pairs = Vec<(&'static str, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub line: Line,
    /// Cluster options (`crm_config`, set `cib-bootstrap-options`).
    pub properties: Pairs,
    pub rsc_defaults: Pairs,
    pub op_defaults: Pairs,
    pub resources: Vec<Resource>,
    pub constraints: Vec<Constraint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Primitive(Primitive),
    /// Members start in order and stop in reverse, on one node.
    Group {
        id: String,
        members: Vec<Primitive>,
    },
    /// A clone with at most `promoted_max` promoted instances (`<master>` on 1.1).
    Promotable {
        id: String,
        primitive: Primitive,
        clone: CloneOptions,
    },
    /// One instance on every node, with these meta attributes.
    Clone {
        id: String,
        primitive: Primitive,
        meta: Pairs,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneOptions {
    pub clone_max: u32,
    pub promoted_max: u32,
    /// Pre- and post-notifications of every instance (ocf:linbit:drbd needs them).
    pub notify: bool,
    /// Scheduling and priority-fencing-delay weight of the promoted instance.
    pub priority: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primitive {
    pub id: String,
    pub agent: Agent,
    pub params: Pairs,
    pub meta: Pairs,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Ocf { provider: &'static str, kind: &'static str },
    Stonith(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub name: &'static str,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    /// Only in this role (the two DRBD monitors).
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Promoted,
    Unpromoted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `rsc` runs only where `with` is promoted.
    WithPromoted { id: String, rsc: String, with: String },
    /// `then` starts only after `first` is promoted (and stops before it is demoted).
    StartAfterPromote { id: String, first: String, then: String },
    /// No resource whose id matches `rsc_pattern` (a regular expression; a leading `!` inverts
    /// it) runs on a node whose integer node attribute `attribute` is below 0.
    BannedWhereNegative { id: String, rsc_pattern: String, attribute: &'static str },
}

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Primitive(p) => &p.id,
            Resource::Group { id, .. } | Resource::Promotable { id, .. } | Resource::Clone { id, .. } => id,
        }
    }

    /// The primitives this resource is made of.
    pub fn primitives(&self) -> Vec<&Primitive> {
        match self {
            Resource::Primitive(p) => vec![p],
            Resource::Group { members, .. } => members.iter().collect(),
            Resource::Promotable { primitive, .. } | Resource::Clone { primitive, .. } => vec![primitive],
        }
    }
}

impl Agent {
    /// `ocf:heartbeat:mysql`, `stonith:fence_azure_arm`: what `crm_resource --show-metadata` takes.
    pub fn spec(&self) -> String {
        match self {
            Agent::Ocf { provider, kind } => format!("ocf:{provider}:{kind}"),
            Agent::Stonith(kind) => format!("stonith:{kind}"),
        }
    }
}

impl Configuration {
    pub fn primitives(&self) -> Vec<&Primitive> {
        self.resources.iter().flat_map(Resource::primitives).collect()
    }

    pub fn primitive(&self, id: &str) -> Option<&Primitive> {
        self.primitives().into_iter().find(|p| p.id == id)
    }
}

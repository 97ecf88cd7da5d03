//! The stack hainit wants on the db pair: DRBD as a promotable clone; filesystem → MariaDB → LB
//! probe listener as a group on the promoted node, started after promotion; stickiness so a node
//! that returns takes nothing back; the fence device with the options that go with it; and what
//! the failover timing profile adds (roles/db/timing.rs): its fence delay, where the probe
//! listener starts, and Azure's Scheduled Events draining a node before planned maintenance.

use super::line::{Line, Version};
use super::model::{Agent, CloneOptions, Configuration, Constraint, Op, Pairs, Primitive, Resource, Role};
use super::{FS, GROUP, MYSQLD, PROBE, SCHEDULED_EVENTS};
use crate::roles::db::fencing::{FenceAgent, Stonith};
use crate::roles::db::timing::{self, ProbeListener, Timing};

/// Everything the configuration is made from; the db role fills it from its context.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The Pacemaker it is for: its line, and whether it has priority-fencing-delay.
    pub pacemaker: Version,
    pub drbd_resource: &'a str,
    pub drbd_primitive: String,
    pub device: String,
    pub mount_point: &'a str,
    pub fs_type: &'a str,
    pub mysqld_binary: &'a str,
    pub my_cnf: &'a str,
    pub mysql_pid: &'a str,
    pub mysql_socket: &'a str,
    pub mysql_log: &'a str,
    pub probe_port: u16,
    pub nc: &'a str,
    pub stonith: Option<Stonith>,
    /// Every operation timeout is multiplied by this (config `db.op_timeout_scale`).
    pub op_timeout_scale: u32,
    /// The failover timing profile (config `db.timing_profile`).
    pub timing: Timing,
}

/// How long a fence device's failure counts (seconds). The role that lets fence_azure_arm use
/// the VM's identity is assigned after the VM exists, and Azure takes minutes to propagate it:
/// a device that failed meanwhile is tried again instead of staying stopped.
pub const FENCE_FAILURE_TIMEOUT_SECS: u32 = 120;

/// Pacemaker's own default operation timeout, scaled like every other.
const DEFAULT_OP_TIMEOUT_SECS: u32 = 20;

pub fn desired(s: &Spec) -> Configuration {
    let line = s.pacemaker.line();
    let priority_fencing = s.pacemaker.has_priority_fencing_delay();
    let op = |name, interval_secs, timeout_secs| Op {
        name,
        interval_secs,
        timeout_secs: timeout_secs * s.op_timeout_scale,
        role: None,
    };
    let clone_id = line.clone_id(&s.drbd_primitive);

    // STONITH only with a fence device (the db role refuses a missing one unless configured off).
    let mut properties: Pairs = vec![("stonith-enabled", s.stonith.is_some().to_string())];
    if s.stonith.is_some() {
        properties.extend([("stonith-timeout", "900".to_string()), ("concurrent-fencing", "true".to_string())]);
        if priority_fencing {
            // The node running the promoted DRBD (priority below) wins a fence race.
            properties.push(("priority-fencing-delay", format!("{}s", s.timing.fence_delay_secs)));
        }
    }
    if s.timing.scheduled_events.is_some() {
        // azure-events-az sets #health-azure to -1000000 on a node with a pending event;
        // `custom` leaves what that means to the location rule below.
        properties.push(("node-health-strategy", "custom".to_string()));
    }

    // ocf:linbit:drbd refuses to start without notify=true; the two monitors need different
    // intervals (Pacemaker keys operations by name and interval).
    let drbd = Primitive {
        id: s.drbd_primitive.clone(),
        agent: Agent::Ocf { provider: "linbit", kind: "drbd" },
        params: vec![("drbd_resource", s.drbd_resource.to_string())],
        meta: Vec::new(),
        ops: vec![
            Op { role: Some(Role::Promoted), ..op("monitor", 29, 20) },
            Op { role: Some(Role::Unpromoted), ..op("monitor", 31, 20) },
            op("start", 0, 240),
            op("stop", 0, 100),
            op("promote", 0, 90),
            op("demote", 0, 90),
            op("notify", 0, 90),
        ],
    };
    let clone = CloneOptions {
        clone_max: 2,
        promoted_max: 1,
        notify: true,
        priority: (s.stonith.is_some() && priority_fencing).then_some(10),
    };

    let fs = Primitive {
        id: FS.into(),
        agent: Agent::Ocf { provider: "heartbeat", kind: "Filesystem" },
        params: vec![
            ("device", s.device.clone()),
            ("directory", s.mount_point.to_string()),
            ("fstype", s.fs_type.to_string()),
        ],
        meta: Vec::new(),
        ops: vec![op("monitor", 20, 40), op("start", 0, 60), op("stop", 0, 60)],
    };
    let mysqld = Primitive {
        id: MYSQLD.into(),
        agent: Agent::Ocf { provider: "heartbeat", kind: "mysql" },
        params: vec![
            ("binary", s.mysqld_binary.to_string()),
            ("config", s.my_cnf.to_string()),
            ("datadir", s.mount_point.to_string()),
            ("pid", s.mysql_pid.to_string()),
            ("socket", s.mysql_socket.to_string()),
            ("log", s.mysql_log.to_string()),
            ("user", "mysql".into()),
            ("group", "mysql".into()),
        ],
        meta: Vec::new(),
        ops: vec![op("monitor", 20, 30), op("start", 0, 180), op("stop", 0, 120)],
    };
    let probe = Primitive {
        id: PROBE.into(),
        agent: Agent::Ocf { provider: "heartbeat", kind: "azure-lb" },
        params: vec![("port", s.probe_port.to_string()), ("nc", s.nc.to_string())],
        meta: Vec::new(),
        ops: vec![op("monitor", 10, 20), op("start", 0, 20), op("stop", 0, 20)],
    };

    // Started in this order and stopped in reverse: the probe goes before MariaDB stops. The
    // fast profile starts the listener before MariaDB (timing.rs, ProbeListener).
    let members = match s.timing.probe_listener {
        ProbeListener::AfterMariadb => vec![fs, mysqld, probe],
        ProbeListener::BeforeMariadb => vec![fs, probe, mysqld],
    };
    let mut resources = vec![
        Resource::Promotable { id: clone_id.clone(), primitive: drbd, clone },
        Resource::Group { id: GROUP.into(), members },
    ];
    if let Some(f) = &s.stonith {
        resources.push(Resource::Primitive(fence_device(f, priority_fencing, s.timing.fence_delay_secs)));
    }
    let mut constraints = vec![
        Constraint::WithPromoted {
            id: format!("colocation-{GROUP}-{clone_id}-INFINITY"),
            rsc: GROUP.into(),
            with: clone_id.clone(),
        },
        Constraint::StartAfterPromote {
            id: format!("order-{clone_id}-{GROUP}-mandatory"),
            first: clone_id,
            then: GROUP.into(),
        },
    ];
    if let Some(events) = s.timing.scheduled_events {
        let (clone, ban) = scheduled_events(events, &op);
        resources.push(clone);
        constraints.push(ban);
    }

    Configuration {
        line,
        properties,
        // A node that comes back must not take the service back: that would be a second outage.
        rsc_defaults: vec![("resource-stickiness", "100".into())],
        // Operations without a timeout of their own (probes among them) scale too.
        op_defaults: vec![("timeout", format!("{}s", DEFAULT_OP_TIMEOUT_SECS * s.op_timeout_scale))],
        resources,
        constraints,
    }
}

/// Microsoft's azure-events-az set-up: a clone that keeps running on a node under maintenance
/// (allow-unhealthy-nodes, Pacemaker 2.1.3), and a rule that bans every other resource from a
/// node whose #health-azure is below 0 (-1000000 while an announced event of `events` is pending
/// there), which moves them to the other node before the event. Microsoft's rule that scores by
/// the attribute (`score-attribute=#health-azure`) bans everything from a node that has no such
/// attribute yet (crm_simulate): nothing would start.
fn scheduled_events(events: &'static str, op: &dyn Fn(&'static str, u32, u32) -> Op) -> (Resource, Constraint) {
    let primitive = Primitive {
        id: SCHEDULED_EVENTS.into(),
        agent: Agent::Ocf { provider: "heartbeat", kind: "azure-events-az" },
        params: vec![("eventTypes", events.to_string())],
        meta: Vec::new(),
        ops: vec![op("monitor", 10, 240), op("start", 0, 10), op("stop", 0, 10)],
    };
    let clone = Resource::Clone {
        id: format!("{SCHEDULED_EVENTS}-clone"),
        primitive,
        meta: vec![("allow-unhealthy-nodes", "true".into()), ("failure-timeout", "120s".into())],
    };
    let ban = Constraint::BannedWhereNegative {
        id: "location-away-from-maintenance".into(),
        rsc_pattern: "!health-.*".into(),
        attribute: "#health-azure",
    };
    (clone, ban)
}

fn fence_device(f: &Stonith, priority_fencing: bool, delay_secs: u32) -> Primitive {
    let (agent, mut params): (&str, Pairs) = match &f.agent {
        FenceAgent::AzureArm { subscription_id, resource_group, host_map } => (
            "fence_azure_arm",
            vec![
                ("msi", "true".into()),
                ("subscriptionId", subscription_id.clone()),
                ("resourceGroup", resource_group.clone()),
                ("pcmk_host_map", host_map.clone()),
                ("power_timeout", "240".into()),
                ("pcmk_reboot_timeout", "900".into()),
                ("pcmk_monitor_timeout", "120".into()),
                ("pcmk_monitor_retries", "4".into()),
                ("pcmk_action_limit", "3".into()),
            ],
        ),
        // fence_sbd's `sbd message` returns after msgwait; its power_timeout (30 s by default)
        // must exceed that, and Pacemaker's action timeout that again.
        FenceAgent::Sbd { device, msgwait_secs } => (
            "fence_sbd",
            vec![
                ("devices", device.clone()),
                ("power_timeout", (msgwait_secs + 30).to_string()),
                ("pcmk_reboot_timeout", (msgwait_secs * 2 + 60).to_string()),
                ("pcmk_monitor_timeout", "120".into()),
            ],
        ),
    };
    if !priority_fencing {
        // No priority-fencing-delay (Pacemaker < 2.0.4): a random delay keeps both nodes from
        // shooting each other at once.
        params.push(("pcmk_delay_max", delay_secs.to_string()));
    }
    Primitive {
        id: f.id().to_string(),
        agent: Agent::Stonith(agent),
        params,
        meta: vec![("failure-timeout", format!("{FENCE_FAILURE_TIMEOUT_SECS}s"))],
        ops: vec![Op { name: "monitor", interval_secs: 3600, timeout_secs: 120, role: None }],
    }
}

/// The configurations hainit would want for this cluster on any Pacemaker line, with any fence
/// device or none, with any timing profile: together they name every object hainit may ever have created here, which
/// is what it owns (and removes once it no longer wants it).
pub fn every_variant(s: &Spec) -> Vec<Configuration> {
    let azure =
        FenceAgent::AzureArm { subscription_id: String::new(), resource_group: String::new(), host_map: String::new() };
    let sbd = FenceAgent::Sbd { device: String::new(), msgwait_secs: 0 };
    let fencing = [None, Some(azure), Some(sbd)];
    // 2.0.3 is a 2.0 without priority-fencing-delay, 2.0.5 one with it.
    let versions = [Version(1, 1, 23), Version(2, 0, 3), Version(2, 0, 5), Version(2, 1, 5)];
    debug_assert!(Line::ALL.iter().all(|l| versions.iter().any(|v| v.line() == *l)));
    let mut all = Vec::new();
    for pacemaker in versions {
        for agent in &fencing {
            for timing in [timing::AZURE, timing::FAST] {
                let stonith = agent.clone().map(|agent| Stonith { agent });
                all.push(desired(&Spec { pacemaker, stonith, timing, ..s.clone() }));
            }
        }
    }
    all
}

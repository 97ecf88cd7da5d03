//! pcs 0.9 (CentOS 7) vs 0.10 (EL8) vs 0.11 (EL9, Debian 12): the only place that knows their
//! argument shapes (reference §2). Every builder returns a `Cmd`; secrets never go in argv
//! (pcs reads the password from stdin when it is not a terminal, §2.2).

use std::time::Duration;

use super::PcsDialect;
use crate::roles::db::fencing::{FenceAgent, Stonith};
use crate::system::{Cmd, DEFAULT_TIMEOUT};

/// Runs `pcs -f` commands given as lines on stdin in one Python interpreter (see [`batch`]).
pub const BATCH_SCRIPT: &str = include_str!("pcs_batch.py");

/// One command that runs `cmds` (each `pcs -f FILE …`, the same FILE) in a single interpreter:
/// `python -Es script` with the commands as shell-quoted lines on stdin, `script` holding
/// [`BATCH_SCRIPT`]. pcs spends most of each start importing itself (1 s on hardware, 40 s
/// under emulation), so ten commands cost one import. `None` when a command cannot be a line
/// (a secret, stdin, environment), and the caller runs them one by one.
pub fn batch(python: &str, script: &str, cmds: &[Cmd]) -> Option<Cmd> {
    let mut input = String::new();
    for cmd in cmds {
        input.push_str(&cmd.shell_line()?);
        input.push('\n');
    }
    let limit = DEFAULT_TIMEOUT.as_secs() * cmds.len().max(1) as u64;
    Some(Cmd::new(python).args(["-Es", script]).stdin(input).timeout(Duration::from_secs(limit)))
}

/// Everything the offline CIB needs; ids are fixed so checks, status and the lab find them.
#[derive(Debug, Clone)]
pub struct CibSpec<'a> {
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
}

pub const GROUP: &str = "g_db";
pub const FS: &str = "fs_db";
pub const MYSQLD: &str = "mysqld";
pub const PROBE: &str = "lb_probe";
pub const FENCE_AZURE: &str = "fence_azure";
pub const FENCE_SBD: &str = "fence_sbd";

impl PcsDialect {
    /// The promotable clone's id: pcs ≥ 0.10 names it `<rsc>-clone`; 0.9 takes the ms id we give.
    pub fn clone_id(self, primitive: &str) -> String {
        match self {
            PcsDialect::V09 => format!("ms_{primitive}"),
            PcsDialect::V010 | PcsDialect::V011 => format!("{primitive}-clone"),
        }
    }

    /// Role names in constraints and ops.
    pub fn promoted(self) -> &'static str {
        match self {
            PcsDialect::V09 | PcsDialect::V010 => "Master",
            PcsDialect::V011 => "Promoted",
        }
    }

    pub fn unpromoted(self) -> &'static str {
        match self {
            PcsDialect::V09 | PcsDialect::V010 => "Slave",
            PcsDialect::V011 => "Unpromoted",
        }
    }

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
    /// it needs to set up a node that has cluster files already).
    pub fn setup(self, cluster: &str, nodes: &[(&str, String)], token_ms: u32, path: &str) -> Cmd {
        match self {
            PcsDialect::V09 => Cmd::new("pcs")
                .args(["cluster", "setup", "--local", "--name", cluster])
                .args(nodes.iter().map(|(n, _)| *n))
                .args(["--token", &token_ms.to_string(), "--force"]),
            PcsDialect::V010 | PcsDialect::V011 => Cmd::new("pcs")
                .args(["cluster", "setup", cluster])
                .args(nodes.iter().flat_map(|(n, ip)| [n.to_string(), format!("addr={ip}")]))
                .args(["totem", &format!("token={token_ms}"), "--corosync_conf", path]),
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

    /// Build the whole stack in the CIB file `file`, offline (`pcs -f`), in one ordered list.
    pub fn cib_commands(self, file: &str, s: &CibSpec) -> Vec<Cmd> {
        let pcs = || Cmd::new("pcs").args(["-f", file]);
        let clone = self.clone_id(&s.drbd_primitive);
        let mut cmds = Vec::new();

        // Properties: STONITH only with a fence device (safety rule 4 logs the other choice).
        let mut props = vec![format!("stonith-enabled={}", s.stonith.is_some())];
        if let Some(f) = &s.stonith {
            props.extend(["stonith-timeout=900".to_string(), "concurrent-fencing=true".to_string()]);
            if f.priority_fencing {
                props.push("priority-fencing-delay=15s".to_string());
            }
        }
        cmds.push(pcs().args(["property", "set"]).args(props));
        // A node that comes back must not take the service back: that would be a second outage.
        let defaults: &[&str] = match self {
            PcsDialect::V09 => &["resource", "defaults"],
            PcsDialect::V010 | PcsDialect::V011 => &["resource", "defaults", "update"],
        };
        cmds.push(pcs().args(defaults.iter().copied()).arg("resource-stickiness=100"));

        // DRBD as a promotable clone; ocf:linbit:drbd refuses to run without notify=true and pcs
        // refuses two monitors with the same interval (§2.4, §3.10). pcs ≥ 0.10 makes the clone in
        // the same call (one pcs start less: each costs seconds on a small VM); 0.9 needs its own
        // `resource master`.
        let op = |name: &str, interval: u32, timeout: u32| {
            [
                "op".to_string(),
                name.to_string(),
                format!("interval={interval}s"),
                format!("timeout={}s", timeout * s.op_timeout_scale),
            ]
        };
        let clone_meta = ["clone-max=2", "clone-node-max=1", "notify=true"];
        let drbd = pcs()
            .args(["resource", "create", &s.drbd_primitive, "ocf:linbit:drbd"])
            .arg(format!("drbd_resource={}", s.drbd_resource))
            .arg("--no-default-ops")
            .args(op("monitor", 29, 20))
            .arg(format!("role={}", self.promoted()))
            .args(op("monitor", 31, 20))
            .arg(format!("role={}", self.unpromoted()))
            .args(op("start", 0, 240))
            .args(op("stop", 0, 100))
            .args(op("promote", 0, 90))
            .args(op("demote", 0, 90))
            .args(op("notify", 0, 90));
        match self {
            PcsDialect::V09 => {
                cmds.push(drbd);
                cmds.push(
                    pcs()
                        .args(["resource", "master", &clone, &s.drbd_primitive, "master-max=1", "master-node-max=1"])
                        .args(clone_meta),
                );
            }
            PcsDialect::V010 | PcsDialect::V011 => {
                cmds.push(drbd.args(["promotable", "promoted-max=1", "promoted-node-max=1"]).args(clone_meta))
            }
        }
        if s.stonith.as_ref().is_some_and(|f| f.priority_fencing) {
            // The node running the promoted DRBD wins a fence race (priority-fencing-delay).
            cmds.push(pcs().args(["resource", "meta", &clone, "priority=10"]));
        }

        // The group: filesystem → mysqld → LB probe listener (started in this order, stopped in
        // reverse, so the probe disappears before MariaDB stops).
        cmds.push(
            pcs()
                .args(["resource", "create", FS, "ocf:heartbeat:Filesystem"])
                .arg(format!("device={}", s.device))
                .arg(format!("directory={}", s.mount_point))
                .arg(format!("fstype={}", s.fs_type))
                .arg("--no-default-ops")
                .args(op("monitor", 20, 40))
                .args(op("start", 0, 60))
                .args(op("stop", 0, 60))
                .args(["--group", GROUP]),
        );
        cmds.push(
            pcs()
                .args(["resource", "create", MYSQLD, "ocf:heartbeat:mysql"])
                .arg(format!("binary={}", s.mysqld_binary))
                .arg(format!("config={}", s.my_cnf))
                .arg(format!("datadir={}", s.mount_point))
                .arg(format!("pid={}", s.mysql_pid))
                .arg(format!("socket={}", s.mysql_socket))
                .arg(format!("log={}", s.mysql_log))
                .args(["user=mysql", "group=mysql"])
                .arg("--no-default-ops")
                .args(op("monitor", 20, 30))
                .args(op("start", 0, 180))
                .args(op("stop", 0, 120))
                .args(["--group", GROUP]),
        );
        cmds.push(
            pcs()
                .args(["resource", "create", PROBE, "ocf:heartbeat:azure-lb"])
                .arg(format!("port={}", s.probe_port))
                .arg(format!("nc={}", s.nc))
                .arg("--no-default-ops")
                .args(op("monitor", 10, 20))
                .args(op("start", 0, 20))
                .args(op("stop", 0, 20))
                .args(["--group", GROUP]),
        );
        cmds.push(
            pcs()
                .args(["constraint", "colocation", "add", GROUP, "with"])
                .arg(match self {
                    PcsDialect::V09 => "master".to_string(),
                    _ => self.promoted().to_string(),
                })
                .args([clone.as_str(), "INFINITY"]),
        );
        cmds.push(pcs().args(["constraint", "order", "promote", &clone, "then", "start", GROUP]));

        if let Some(f) = &s.stonith {
            let create = pcs().args(["stonith", "create", f.id()]);
            let mut fence = match &f.agent {
                FenceAgent::AzureArm { subscription_id, resource_group, host_map } => create
                    .args(["fence_azure_arm", "msi=true"])
                    .arg(format!("subscriptionId={subscription_id}"))
                    .arg(format!("resourceGroup={resource_group}"))
                    .arg(format!("pcmk_host_map={host_map}"))
                    .args(["power_timeout=240", "pcmk_reboot_timeout=900", "pcmk_monitor_timeout=120"])
                    .args(["pcmk_monitor_retries=4", "pcmk_action_limit=3"]),
                // fence_sbd's `sbd message` returns after msgwait; its power_timeout (30 s by
                // default) must exceed that, and Pacemaker's action timeout that again.
                FenceAgent::Sbd { device, msgwait_secs } => create
                    .arg("fence_sbd")
                    .arg(format!("devices={device}"))
                    .arg(format!("power_timeout={}", msgwait_secs + 30))
                    .arg(format!("pcmk_reboot_timeout={}", msgwait_secs * 2 + 60))
                    .arg("pcmk_monitor_timeout=120"),
            };
            if !f.priority_fencing {
                fence = fence.arg("pcmk_delay_max=15");
            }
            cmds.push(fence.args(["op", "monitor", "interval=3600s", "timeout=120s"]));
        }
        cmds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CibSpec<'static> {
        CibSpec {
            drbd_resource: "wp",
            drbd_primitive: "drbd_wp".into(),
            device: "/dev/drbd0".into(),
            mount_point: "/var/lib/mysql",
            fs_type: "ext4",
            mysqld_binary: "/usr/sbin/mariadbd",
            my_cnf: "/etc/mysql/my.cnf",
            mysql_pid: "/run/mysqld/mysqld.pid",
            mysql_socket: "/run/mysqld/mysqld.sock",
            mysql_log: "/var/log/mysql/error.log",
            probe_port: 62500,
            nc: "/usr/bin/nc",
            stonith: None,
            op_timeout_scale: 1,
        }
    }

    fn joined(cmds: &[Cmd]) -> Vec<String> {
        cmds.iter().map(|c| c.argv_redacted().join(" ")).collect()
    }

    #[test]
    fn a_batch_carries_every_command_as_a_line() {
        let cmds = PcsDialect::V011.cib_commands("/run/c.xml", &spec());
        let b = batch("/usr/bin/python3", "/run/b.py", &cmds).unwrap();
        assert_eq!(b.argv_redacted(), ["/usr/bin/python3", "-Es", "/run/b.py"]);
        let input = String::from_utf8(b.stdin_bytes().unwrap().to_vec()).unwrap();
        let lines: Vec<&str> = input.lines().collect();
        assert_eq!(lines.len(), cmds.len());
        assert_eq!(lines[0], "pcs -f /run/c.xml property set stonith-enabled=false");
        assert_eq!(b.timeout.as_secs(), 600 * cmds.len() as u64);
        let with_secret = Cmd::new("pcs").secret_arg(crate::secrets::Secret::new("pw"));
        assert!(batch("/usr/bin/python3", "/run/b.py", &[with_secret]).is_none());
    }

    #[test]
    fn auth_and_setup_per_dialect() {
        let nodes = [("db-a", "10.0.1.4".to_string()), ("db-b", "10.0.1.5".to_string())];
        assert_eq!(PcsDialect::V09.auth(&nodes).argv_redacted().join(" "), "pcs cluster auth db-a db-b -u hacluster");
        assert_eq!(
            PcsDialect::V011.auth(&nodes).argv_redacted().join(" "),
            "pcs host auth db-a addr=10.0.1.4 db-b addr=10.0.1.5 -u hacluster"
        );
        assert_eq!(
            PcsDialect::V09.setup("wp", &nodes, 30000, "/etc/corosync/corosync.conf").argv_redacted().join(" "),
            "pcs cluster setup --local --name wp db-a db-b --token 30000 --force"
        );
        assert_eq!(
            PcsDialect::V010.setup("wp", &nodes, 30000, "/etc/corosync/corosync.conf").argv_redacted().join(" "),
            "pcs cluster setup wp db-a addr=10.0.1.4 db-b addr=10.0.1.5 totem token=30000 --corosync_conf /etc/corosync/corosync.conf"
        );
    }

    #[test]
    fn cib_per_dialect() {
        let old = joined(&PcsDialect::V09.cib_commands("c.xml", &spec()));
        assert!(old.iter().any(|c| c.contains("resource master ms_drbd_wp drbd_wp master-max=1")), "{old:#?}");
        assert!(old.iter().any(|c| c.ends_with("colocation add g_db with master ms_drbd_wp INFINITY")));
        assert!(old.iter().any(|c| c.ends_with("resource defaults resource-stickiness=100")));
        let new = joined(&PcsDialect::V011.cib_commands("c.xml", &spec()));
        let create_promotable = "ocf:linbit:drbd drbd_resource=wp --no-default-ops op monitor interval=29s timeout=20s";
        assert!(
            new.iter().any(|c| c.contains(create_promotable)
                && c.ends_with(
                    "promotable promoted-max=1 promoted-node-max=1 clone-max=2 clone-node-max=1 notify=true"
                )),
            "{new:#?}"
        );
        assert!(!new.iter().any(|c| c.contains("resource promotable")), "one call makes the clone: {new:#?}");
        assert!(new.iter().any(|c| c.contains("role=Promoted") && c.contains("role=Unpromoted")));
        assert!(new.iter().any(|c| c.ends_with("colocation add g_db with Promoted drbd_wp-clone INFINITY")));
        assert!(new.iter().any(|c| c.ends_with("order promote drbd_wp-clone then start g_db")));
        assert!(new.iter().any(|c| c.contains("property set stonith-enabled=false")));
        assert!(!new.iter().any(|c| c.contains("fence_azure_arm")));
        let el8 = joined(&PcsDialect::V010.cib_commands("c.xml", &spec()));
        assert!(
            el8.iter().any(|c| c.contains("role=Master"))
                && el8.iter().any(|c| c.contains("with Master drbd_wp-clone"))
        );
    }

    #[test]
    fn op_timeouts_scale_and_intervals_do_not() {
        let slow = CibSpec { op_timeout_scale: 3, ..spec() };
        let cmds = joined(&PcsDialect::V011.cib_commands("c.xml", &slow));
        let drbd = cmds.iter().find(|c| c.contains("ocf:linbit:drbd")).unwrap();
        assert!(drbd.contains("op monitor interval=29s timeout=60s role=Promoted"), "{drbd}");
        assert!(drbd.contains("op start interval=0s timeout=720s"), "{drbd}");
        let probe = cmds.iter().find(|c| c.contains("ocf:heartbeat:azure-lb")).unwrap();
        assert!(probe.contains("op monitor interval=10s timeout=60s"), "{probe}");
    }

    #[test]
    fn stonith_with_managed_identity() {
        let mut s = spec();
        s.stonith = Some(Stonith {
            agent: FenceAgent::AzureArm {
                subscription_id: "sub".into(),
                resource_group: "rg".into(),
                host_map: "db-a:vm-a;db-b:vm-b".into(),
            },
            priority_fencing: true,
        });
        let cmds = joined(&PcsDialect::V011.cib_commands("c.xml", &s));
        assert!(cmds.iter().any(|c| c.contains("property set stonith-enabled=true stonith-timeout=900")));
        assert!(cmds.iter().any(|c| c.contains("priority-fencing-delay=15s")));
        assert!(cmds.iter().any(|c| c.contains(
            "fence_azure_arm msi=true subscriptionId=sub resourceGroup=rg pcmk_host_map=db-a:vm-a;db-b:vm-b"
        )));
        s.stonith.as_mut().unwrap().priority_fencing = false;
        let cmds = joined(&PcsDialect::V09.cib_commands("c.xml", &s));
        assert!(cmds.iter().any(|c| c.contains("pcmk_delay_max=15")) && !cmds.iter().any(|c| c.contains("priority")));
    }

    #[test]
    fn stonith_with_sbd_waits_longer_than_msgwait() {
        let mut s = spec();
        let device = "/dev/disk/by-id/virtio-hainit-sbd".to_string();
        s.stonith = Some(Stonith {
            agent: FenceAgent::Sbd { device: device.clone(), msgwait_secs: 60 },
            priority_fencing: true,
        });
        assert_eq!(s.stonith.as_ref().unwrap().id(), FENCE_SBD);
        let cmds = joined(&PcsDialect::V011.cib_commands("c.xml", &s));
        assert!(cmds.iter().any(|c| c.contains("property set stonith-enabled=true")));
        let fence = cmds.iter().find(|c| c.contains("stonith create")).unwrap();
        assert!(
            fence.contains(&format!("fence_sbd fence_sbd devices={device} power_timeout=90 pcmk_reboot_timeout=180")),
            "{fence}"
        );
        assert!(!cmds.iter().any(|c| c.contains("fence_azure_arm")));
    }
}

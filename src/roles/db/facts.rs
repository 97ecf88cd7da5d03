//! Names and machine facts every db step shares: the resource, its devices, the DRBD state and
//! whether Pacemaker already owns the stack.

use crate::dialect::drbd::{parse_proc_drbd, parse_status_json, DrbdState};
use crate::dialect::DrbdDialect;
use crate::engine::Context;
use crate::error::Result;
use crate::system::Probe;

/// The on-disk CIB: present (and holding our resources) once the cluster was formed, even
/// while Pacemaker is stopped.
pub const CIB_FILE: &str = "/var/lib/pacemaker/cib/cib.xml";
pub const COROSYNC_CONF: &str = "/etc/corosync/corosync.conf";
/// Client options with the MariaDB root password (0600), for hainit's SQL and for operators.
pub const MYSQL_ROOT_CNF: &str = "/etc/hainit/mysql-root.cnf";
/// Scratch space for CIB files (tmpfs; nothing there survives a reboot or needs to).
pub const RUN_DIR: &str = "/run/hainit";

pub fn resource<'a>(cx: &'a Context) -> &'a str {
    &cx.inv.cluster
}

pub fn device(cx: &Context) -> String {
    format!("/dev/drbd{}", cx.config.db.drbd_minor)
}

/// The GPT partition label hainit gives the data partition and finds again on re-runs.
pub fn partition_label(cx: &Context) -> String {
    format!("hainit-{}", cx.inv.cluster)
}

/// The backing device DRBD uses: udev's by-partlabel link, independent of disk discovery.
pub fn partition_path(cx: &Context) -> String {
    format!("/dev/disk/by-partlabel/{}", partition_label(cx))
}

pub fn resource_file(cx: &Context) -> String {
    format!("/etc/drbd.d/{}.res", cx.inv.cluster)
}

/// Pacemaker resource ids.
pub fn drbd_primitive(cx: &Context) -> String {
    drbd_primitive_of(&cx.inv.cluster)
}

pub fn drbd_primitive_of(cluster: &str) -> String {
    format!("drbd_{cluster}")
}

/// The DRBD dialect the loaded module speaks, else the platform's default.
pub fn drbd_dialect(cx: &Context, probe: &dyn Probe) -> Result<DrbdDialect> {
    dialect_of(probe, cx.platform.drbd)
}

fn dialect_of(probe: &dyn Probe, default: DrbdDialect) -> Result<DrbdDialect> {
    Ok(probe.read_string("/proc/drbd")?.and_then(|t| DrbdDialect::from_proc(&t)).unwrap_or(default))
}

/// This node's DRBD state; `None` while the resource is down.
pub fn drbd_state(cx: &Context, probe: &dyn Probe) -> Result<Option<DrbdState>> {
    drbd_state_of(probe, resource(cx), cx.config.db.drbd_minor, cx.platform.drbd)
}

/// [`drbd_state`] without a `Context` (for `status`, which holds no secret): the resource
/// `res` on minor `minor`, `default` the platform's dialect.
pub fn drbd_state_of(probe: &dyn Probe, res: &str, minor: u32, default: DrbdDialect) -> Result<Option<DrbdState>> {
    match dialect_of(probe, default)?.status_query(res) {
        None => Ok(probe.read_string("/proc/drbd")?.and_then(|t| parse_proc_drbd(&t, minor))),
        Some(q) => {
            let out = probe.query(&q)?;
            Ok(if out.success() { parse_status_json(&out.stdout) } else { None })
        }
    }
}

/// True once the CIB holds hainit's DRBD resource: from then on Pacemaker decides the DRBD role,
/// the mount and mysqld, and hainit's bootstrap steps stand aside.
pub fn cluster_owns(cx: &Context, probe: &dyn Probe) -> Result<bool> {
    let needle = format!("id=\"{}\"", drbd_primitive(cx));
    Ok(probe.read_string(CIB_FILE)?.is_some_and(|cib| cib.contains(&needle)))
}

/// Does the corosync.conf text describe our cluster?
pub fn is_our_corosync(cx: &Context, text: &str) -> bool {
    is_corosync_of(&cx.inv.cluster, text)
}

pub fn is_corosync_of(cluster: &str, text: &str) -> bool {
    text.lines().any(|l| l.trim().strip_prefix("cluster_name:").is_some_and(|v| v.trim() == cluster))
}

/// Mounts from `/proc/self/mountinfo` as (source, mount point).
pub fn mounts(probe: &dyn Probe) -> Result<Vec<(String, String)>> {
    Ok(crate::system::mounts::mounts(probe)?.into_iter().map(|m| (m.source, m.mount_point)).collect())
}

/// Where `source` is mounted, if anywhere.
pub fn mount_point_of(probe: &dyn Probe, source: &str) -> Result<Option<String>> {
    Ok(mounts(probe)?.into_iter().find(|(s, _)| s == source).map(|(_, m)| m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FakeSystem;

    #[test]
    fn parses_mountinfo() {
        let fake = FakeSystem::new("db-a");
        fake.add_file(
            "/proc/self/mountinfo",
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             40 22 147:0 / /var/lib/my\\040sql rw - ext4 /dev/drbd0 rw\n",
            0o444,
        );
        assert_eq!(mount_point_of(&fake, "/dev/drbd0").unwrap().as_deref(), Some("/var/lib/my sql"));
        assert_eq!(mount_point_of(&fake, "/dev/vdb").unwrap(), None);
    }
}

//! Names and machine facts every db step shares: the resource, its devices, the DRBD state and
//! whether Pacemaker already owns the stack.

use crate::dialect::drbd::{parse_proc_drbd, parse_status_json, DrbdState, Generation, EXIT_NO_SUCH_RESOURCE};
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

/// The GPT partition label hainit gives the data partition (for people; DRBD finds the
/// partition by its PARTUUID, see `disk::backing`).
pub fn partition_label(cx: &Context) -> String {
    format!("hainit-{}", cx.inv.cluster)
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

/// `/proc/drbd` exists once the module is loaded; its first line names the module's version.
fn dialect_of(probe: &dyn Probe, default: DrbdDialect) -> Result<DrbdDialect> {
    match probe.read_string("/proc/drbd")? {
        Some(text) => DrbdDialect::from_proc(&text),
        None => Ok(default),
    }
}

/// This node's DRBD state; `None` while the resource is not configured.
pub fn drbd_state(cx: &Context, probe: &dyn Probe) -> Result<Option<DrbdState>> {
    drbd_state_of(probe, resource(cx), cx.config.db.drbd_minor)
}

/// [`drbd_state`] without a `Context` (for `status`, which holds no secret): the resource
/// `res` on minor `minor`, asked in the loaded module's dialect. "Not configured" is decided only
/// from what DRBD says it means: no module (no `/proc/drbd`), no line for the minor in 8.4's
/// `/proc/drbd`, or drbdsetup's "No such resource" (exit 10). Any other failure, and any text
/// that does not parse, is an error: a failed query is never read as "down".
pub fn drbd_state_of(probe: &dyn Probe, res: &str, minor: u32) -> Result<Option<DrbdState>> {
    let Some(proc) = probe.read_string("/proc/drbd")? else { return Ok(None) };
    match DrbdDialect::from_proc(&proc)?.status_query(res) {
        None => parse_proc_drbd(&proc, minor),
        Some(q) => {
            let out = probe.query(&q)?;
            match out.code {
                Some(0) => parse_status_json(&out.stdout, res).map(Some),
                Some(EXIT_NO_SUCH_RESOURCE) if out.stderr.trim() == format!("{res}: No such resource") => Ok(None),
                _ => Err(q.failure(&out, format!("`{q}` failed ({}): {}", ended(out.code), out.tail()))),
            }
        }
    }
}

fn ended(code: Option<i32>) -> String {
    code.map_or("killed by a signal".to_string(), |c| format!("exit {c}"))
}

/// This node's data generation (`drbdadm get-gi`); the resource must be attached.
pub fn generation(cx: &Context, probe: &dyn Probe) -> Result<Generation> {
    let q = drbd_dialect(cx, probe)?.generation_query(resource(cx));
    let out = probe.query(&q)?;
    if !out.success() {
        return Err(q.failure(&out, format!("`{q}` failed ({}): {}", ended(out.code), out.tail())));
    }
    Generation::parse(&out.stdout).map_err(|e| e.context(format!("`{q}`")))
}

/// True once the CIB holds hainit's DRBD resource: from then on Pacemaker decides the DRBD role,
/// the mount and mysqld, and hainit's bootstrap steps stand aside.
/// A CIB file that does not parse is an error, not "not owned".
pub fn cluster_owns(cx: &Context, probe: &dyn Probe) -> Result<bool> {
    match probe.read_string(CIB_FILE)? {
        None => Ok(false),
        Some(text) => Ok(crate::cib::live::Live::parse(&text)
            .map_err(|e| e.context(CIB_FILE))?
            .has_primitive(&drbd_primitive(cx))),
    }
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

//! Corosync/Pacemaker membership through pcs: /etc/hosts, the hacluster password, pcsd, the
//! corosync authkey, corosync.conf (the leader sets the cluster up; a node whose peer already
//! has it — the follower, or a replaced VM — takes it from the peer), and starting the stack.

use std::net::IpAddr;
use std::time::Duration;

use super::facts::{is_our_corosync, COROSYNC_CONF};
use super::timing::Timing;
use crate::dialect::PcsDialect;
use crate::engine::{check_files, Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::roles::units;
use crate::secrets::{Purpose, Secret};
use crate::system::{Cmd, FileSpec, Output, Probe};

const PCSD_PORT: u16 = 2224;
/// Where a corosync.conf that is not ours is kept (moved, never deleted).
pub const FOREIGN_COROSYNC_CONF: &str = "/etc/corosync/corosync.conf.before-hainit";
const HOSTS_BEGIN: &str = "# BEGIN hainit cluster nodes";
const HOSTS_END: &str = "# END hainit cluster nodes";

/// Both node names resolve to their cluster addresses without DNS (pcs 0.9 and corosync 2 on
/// CentOS 7 address nodes by name; elsewhere it spares pcsd a DNS lookup).
pub struct HostsStep;

impl HostsStep {
    pub fn hosts_with_block(cx: &Context, current: &str) -> String {
        let mut out: Vec<&str> = Vec::new();
        let mut inside = false;
        for line in current.lines() {
            match line.trim() {
                HOSTS_BEGIN => inside = true,
                HOSTS_END => inside = false,
                _ if !inside => out.push(line),
                _ => {}
            }
        }
        let mut text = out.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(HOSTS_BEGIN);
        text.push('\n');
        for p in &cx.inv.peers {
            text.push_str(&format!("{} {}\n", p.ip, p.name));
        }
        text.push_str(HOSTS_END);
        text.push('\n');
        text
    }
}

impl Step for HostsStep {
    fn id(&self) -> &'static str {
        "db.cluster.hosts"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let current = probe.read_string("/etc/hosts")?.unwrap_or_default();
        check_files(probe, vec![FileSpec::new("/etc/hosts", Self::hosts_with_block(cx, &current), 0o644)])
    }
}

/// The same derived hacluster password on both nodes, set through stdin (never argv).
pub struct HaclusterStep;

/// Exits 0 when the password on stdin's second line matches the crypt hash on its first.
const CRYPT_CHECK: &str = "import crypt, sys\nh = sys.stdin.readline().rstrip('\\n')\np = sys.stdin.readline().rstrip('\\n')\nsys.exit(0 if h and crypt.crypt(p, h) == h else 1)\n";

impl Step for HaclusterStep {
    fn id(&self) -> &'static str {
        "db.cluster.hacluster"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let pw = cx.derive(Purpose::HaclusterPassword);
        let set = vec![Action::run(
            Cmd::new("chpasswd").stdin_secret(Secret::new(format!("hacluster:{}\n", pw.expose()))),
            "the derived hacluster password, the same on both nodes",
        )];
        let shadow = probe.read_string("/etc/shadow")?.unwrap_or_default();
        let Some(hash) = shadow.lines().find_map(|l| l.strip_prefix("hacluster:")?.split(':').next()) else {
            return Ok(set); // pcs not installed yet (a plan before the packages step)
        };
        let check = Cmd::new(cx.platform.db.python)
            .args(["-W", "ignore", "-c", CRYPT_CHECK])
            .stdin_secret(Secret::new(format!("{hash}\n{}\n", pw.expose())));
        Ok(if probe.query(&check)?.success() { Vec::new() } else { set })
    }
}

/// pcsd started without waiting for it: it needs seconds on Azure but minutes under emulation
/// (ruby), and nothing before `db.cluster.corosync` needs it, so the DRBD and MariaDB bootstrap
/// runs meanwhile; that step waits until it answers. A failed start is retried here. It is
/// enabled at boot by [`BootStep`].
pub struct PcsdStep;

impl Step for PcsdStep {
    fn id(&self) -> &'static str {
        "db.cluster.pcsd"
    }
    fn check(&self, _cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let s = units::state(probe, "pcsd")?;
        let starting = s.is_active() || s.is_activating() || units::start_queued(&list_jobs(probe)?, "pcsd");
        Ok(if starting {
            Vec::new()
        } else {
            vec![Action::run(
                Cmd::new("systemctl").args(["start", "--no-block", "pcsd"]),
                "start pcsd (db.cluster.corosync waits for it)",
            )]
        })
    }
}

/// Derived from the shared secret, so both nodes — and a replacement VM — hold the same key
/// without copying it (pcs setup writes the local file only and makes no keys).
pub struct AuthkeyStep;

impl AuthkeyStep {
    fn spec(cx: &Context) -> Result<FileSpec> {
        Ok(FileSpec::new("/etc/corosync/authkey", cx.derive_bytes(Purpose::CorosyncAuthkey, 256)?, 0o400).secret())
    }
}

impl Step for AuthkeyStep {
    fn id(&self) -> &'static str {
        "db.cluster.authkey"
    }
    fn files(&self, cx: &Context) -> Result<Vec<FileSpec>> {
        Ok(vec![Self::spec(cx)?])
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        check_files(probe, vec![Self::spec(cx)?])
    }
}

/// corosync.conf of our cluster. The leader writes it with a local `pcs cluster setup` only when
/// the peer has no cluster of ours yet; otherwise (follower, or a replaced VM) the file comes
/// from the peer's pcsd. Nothing is ever destroyed or pushed on the peer.
pub struct CorosyncStep;

impl CorosyncStep {
    fn nodes<'a>(cx: &'a Context) -> Vec<(&'a str, String)> {
        let mut nodes: Vec<(&str, String)> = cx.inv.peers.iter().map(|p| (p.name.as_str(), p.ip.to_string())).collect();
        nodes.sort();
        nodes
    }
}

impl Step for CorosyncStep {
    fn id(&self) -> &'static str {
        "db.cluster.corosync"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        match probe.read_string(COROSYNC_CONF)? {
            Some(text) if is_our_corosync(cx, &text) => Ok(Vec::new()),
            // pcs takes a host with a corosync.conf for a cluster member: `pcs host auth` then sends
            // the tokens to that cluster's nodes instead of saving them here (Debian's default
            // names one `node1`: every later pcs call fails to authenticate), and 0.10+ setup
            // refuses to overwrite it. Found in the lab (make lab); kept aside, never deleted.
            Some(_) => {
                let mut actions = vec![Action::run(
                    Cmd::new("mv").args(["-f", COROSYNC_CONF, FOREIGN_COROSYNC_CONF]),
                    "a corosync.conf that is not ours (the distro default) would mislead pcs",
                )];
                actions.extend(Self::membership(cx, probe)?);
                Ok(actions)
            }
            None => Self::membership(cx, probe),
        }
    }
}

impl CorosyncStep {
    /// Join the peer's cluster, or (leader) set it up; waits for what the peer must do first.
    fn membership(cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let timeout = Duration::from_secs(cx.config.db.peer_timeout_secs);
        let Some(peer) = cx.inv.peer() else { return Ok(Vec::new()) };
        let me = &cx.inv.node;
        if !probe.tcp_open(IpAddr::V4(me.ip), PCSD_PORT, Duration::from_secs(3)) {
            // Started in the background by db.cluster.pcsd; pcs talks to both nodes' pcsd.
            return Ok(vec![Action::wait(format!("pcsd on this node ({}:{PCSD_PORT}) to start", me.ip), timeout)]);
        }
        if !probe.tcp_open(IpAddr::V4(peer.ip), PCSD_PORT, Duration::from_secs(3)) {
            return Ok(vec![Action::wait(format!("pcsd on {} ({}:{PCSD_PORT})", peer.name, peer.ip), timeout)]);
        }
        let pcs = cx.platform.pcs;
        let pw = cx.derive(Purpose::HaclusterPassword);
        // Without a token for the peer, asking its pcsd is sure to fail: authenticate first
        // (each pcs run costs ~30 s under emulation). A token the peer no longer accepts (it
        // was replaced) shows as the authentication error below.
        let tokens = probe.read_string(pcs.tokens_file())?.unwrap_or_default();
        let asked = if PcsDialect::has_token(&tokens, &peer.name) {
            Some(probe.query(&pcs.corosync_of(&peer.name))?)
        } else {
            None
        };
        let refused =
            |o: &Output| !o.success() && format!("{}{}", o.stdout, o.stderr).to_lowercase().contains("authenticat");
        let Some(out) = asked.filter(|o| !refused(o)) else {
            // What the peer has decides between setup and join: authenticate, then look again.
            let nodes = Self::nodes(cx);
            return Ok(vec![
                Action::run(
                    pcs.auth(&nodes).stdin_secret(Secret::new(format!("{}\n", pw.expose()))),
                    "authenticate to pcsd on both nodes",
                ),
                Action::wait(format!("the cluster configuration of {}", peer.name), timeout),
            ]);
        };
        if out.success() && is_our_corosync(cx, &out.stdout) {
            return Ok(vec![Action::Write(FileSpec::new(COROSYNC_CONF, out.stdout, 0o644))]);
        }
        if cx.inv.is_leader() {
            return Ok(vec![Action::run(
                pcs.setup(&cx.inv.cluster, &Self::nodes(cx), Timing::for_config(cx), COROSYNC_CONF),
                "write corosync.conf of the two-node cluster (two_node quorum); the peer fetches it",
            )]);
        }
        Ok(vec![Action::wait(
            format!("the leader {} to set up cluster {}", cx.inv.leader.as_deref().unwrap_or("?"), cx.inv.cluster),
            timeout,
        )])
    }
}

/// corosync and pacemaker running with our corosync.conf (a distro default one that a package
/// started is restarted). Enabled at boot by [`BootStep`].
pub struct StartStep;

impl Step for StartStep {
    fn id(&self) -> &'static str {
        "db.cluster.start"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let corosync = units::state(probe, "corosync")?;
        let pacemaker = units::state(probe, "pacemaker")?;
        let mut actions = Vec::new();
        // Only a name corosync really reported decides a stop; a failed query ends the run.
        let stale = corosync.is_active() && running_cluster_name(probe)? != cx.inv.cluster;
        if stale {
            actions.push(Action::run(
                Cmd::new("pcs").args(["cluster", "stop", "--force"]),
                "corosync runs a stale configuration",
            ));
        }
        // What `pcs cluster start/enable` run, without pcs's interpreter start (minutes under
        // emulation in the lab; `pcs cluster enable` alone took 3.5 min there).
        if stale || !corosync.is_active() || !pacemaker.is_active() {
            actions.push(Action::run(
                Cmd::new("systemctl").args(["start", "corosync", "pacemaker"]),
                "start corosync and pacemaker here",
            ));
        }
        Ok(actions)
    }
}

/// `systemctl list-jobs`: its output, or an error when systemd did not answer.
fn list_jobs(probe: &dyn Probe) -> Result<String> {
    let out = probe.query(&units::list_jobs())?;
    if !out.success() {
        return Err(Error::step(format!("`systemctl list-jobs` failed with {:?}: {}", out.code, out.tail())));
    }
    Ok(out.stdout)
}

const CLUSTER_NAME_KEY: &str = "totem.cluster_name";

/// The cluster name the running corosync uses (`corosync-cmapctl -g totem.cluster_name`).
fn running_cluster_name(probe: &dyn Probe) -> Result<String> {
    parse_cluster_name(&probe.query(&Cmd::new("corosync-cmapctl").args(["-g", CLUSTER_NAME_KEY]))?)
}

/// Exactly one line `totem.cluster_name (str) = NAME`. cmapctl reports a failure as `… Error
/// CS_ERR_…` on stderr, with exit 1 when it cannot reach corosync and exit 0 when the key cannot
/// be read: `CS_ERR_TRY_AGAIN` (corosync busy, e.g. forming membership) is a timeout, exit 3, so
/// the boot unit runs hainit again; any other answer is exit 1. Never "a stale configuration".
pub fn parse_cluster_name(out: &Output) -> Result<String> {
    let cmd = format!("`corosync-cmapctl -g {CLUSTER_NAME_KEY}`");
    if let Some(code) = cs_error(&out.stderr) {
        let msg = format!("{cmd} failed with {code} (exit {:?}): {}", out.code, out.tail());
        return Err(if code == "CS_ERR_TRY_AGAIN" { Error::timeout(msg) } else { Error::step(msg) });
    }
    let prefix = format!("{CLUSTER_NAME_KEY} (str) = ");
    let lines: Vec<&str> = out.stdout.lines().collect();
    match (out.code, lines.as_slice()) {
        (Some(0), [line]) => match line.strip_prefix(&prefix) {
            Some(name) if !name.trim().is_empty() => Ok(name.trim().to_string()),
            _ => Err(Error::step(format!("{cmd} printed {line:?}, not `{prefix}NAME`"))),
        },
        _ => Err(Error::step(format!("{cmd} ended with {:?} and printed {:?}: {}", out.code, out.stdout, out.tail()))),
    }
}

/// The `CS_ERR_…` code at the end of a cmapctl error line (`… Error CS_ERR_TRY_AGAIN`).
fn cs_error(stderr: &str) -> Option<&str> {
    stderr.lines().find_map(|l| {
        let code = l.trim_end().rsplit_once(" Error ")?.1;
        let well_formed = code.strip_prefix("CS_ERR_")?.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        well_formed.then_some(code)
    })
}

/// The units that rejoin the cluster at boot, enabled in one call once the cluster runs. Last,
/// because nothing before needs it and each `systemctl enable` reloads systemd and runs Debian's
/// sysv-install: 20-70 s a call under emulation, which used to delay the VIP twice.
pub struct BootStep;

const BOOT_UNITS: [&str; 3] = ["pcsd", "corosync", "pacemaker"];

impl Step for BootStep {
    fn id(&self) -> &'static str {
        "db.cluster.boot"
    }
    fn check(&self, _cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let mut disabled = Vec::new();
        for unit in BOOT_UNITS {
            if !units::state(probe, unit)?.is_enabled() {
                disabled.push(unit);
            }
        }
        Ok(if disabled.is_empty() {
            Vec::new()
        } else {
            vec![Action::run(
                units::install("enable", &disabled),
                "pcsd and the cluster stack start at boot: the node rejoins the cluster",
            )]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn the_cluster_name_is_read_exactly() {
        assert_eq!(parse_cluster_name(&Output::ok("totem.cluster_name (str) = wpcluster\n")).unwrap(), "wpcluster");
        assert_eq!(parse_cluster_name(&Output::ok("totem.cluster_name (str) = debian\n")).unwrap(), "debian");
    }

    #[test]
    fn a_failed_cmapctl_is_an_error_and_try_again_a_timeout() {
        let failed = |code, stdout: &str, stderr: &str| Output { code, stdout: stdout.into(), stderr: stderr.into() };
        let cases = [
            // corosync 3.1: the get fails, cmapctl still exits 0 with nothing on stdout.
            (failed(Some(0), "", "Can't get key totem.cluster_name. Error CS_ERR_TRY_AGAIN\n"), ErrorKind::Timeout),
            (failed(Some(1), "", "Failed to initialize the cmap API. Error CS_ERR_TRY_AGAIN\n"), ErrorKind::Timeout),
            (failed(Some(1), "", "Failed to initialize the cmap API. Error CS_ERR_LIBRARY\n"), ErrorKind::Step),
            (failed(Some(0), "", "Can't get key totem.cluster_name. Error CS_ERR_NOT_EXIST\n"), ErrorKind::Step),
            (failed(Some(0), "", ""), ErrorKind::Step),
            (failed(None, "", "killed after 600 s"), ErrorKind::Step),
            (failed(Some(0), "totem.cluster_name (str) = \n", ""), ErrorKind::Step),
            (failed(Some(0), "totem.cluster_name (u32) = 7\n", ""), ErrorKind::Step),
            (failed(Some(0), "totem.cluster_name (str) = a\ntotem.cluster_name (str) = b\n", ""), ErrorKind::Step),
        ];
        for (out, kind) in cases {
            let e = parse_cluster_name(&out).unwrap_err();
            assert_eq!(e.kind, kind, "{out:?}: {e}");
            assert!(e.to_string().contains("corosync-cmapctl -g totem.cluster_name"), "{e}");
        }
    }
}

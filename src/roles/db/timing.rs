//! The failover timing profiles (config `db.timing_profile`): the one table of what each sets in
//! corosync and in the cluster configuration. docs/failover.md has the measurements and the
//! risks; each value here names the failure it must not cause.

use crate::config::TimingProfile;
use crate::engine::Context;
use crate::error::{Error, Result};

/// Where the load balancer's probe listener starts in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeListener {
    /// filesystem → MariaDB → listener: the LB starts probing once MariaDB is up.
    AfterMariadb,
    /// filesystem → listener → MariaDB: the LB's probe interval × threshold runs while MariaDB
    /// starts. The listener still needs the filesystem, so it never answers on a node where
    /// DRBD is not promoted: what the LB may then route to is the one node allowed to write,
    /// which refuses connections until MariaDB is ready.
    BeforeMariadb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub profile: TimingProfile,
    /// corosync totem token: a node silent this long is lost (a platform pause as well).
    pub token_ms: u32,
    /// corosync consensus: 1.2 × token, corosync's own default, written out as Microsoft does.
    pub consensus_ms: u32,
    /// How long the node without the promoted DRBD waits before fencing it
    /// (priority-fencing-delay), or the random delay's maximum (pcmk_delay_max) where Pacemaker
    /// lacks that. Pacemaker applies it also when the promoted node is simply dead (the survivor
    /// cannot tell a dead peer from a cut link), so every failover of the primary waits it. It
    /// must exceed the time the primary needs to power its peer off, or both end up off.
    pub fence_delay_secs: u32,
    pub probe_listener: ProbeListener,
    /// `eventTypes` of ocf:heartbeat:azure-events-az, when the profile drains a node before an
    /// announced platform pause (Scheduled Events); None: no such resource.
    pub scheduled_events: Option<&'static str>,
}

/// Microsoft's Pacemaker-on-Azure settings: a 30 s token rides out a memory-preserving update's
/// pause (up to ~30 s) without anyone noticing; 15 s priority-fencing-delay.
pub const AZURE: Timing = Timing {
    profile: TimingProfile::Azure,
    token_ms: 30_000,
    consensus_ms: 36_000,
    fence_delay_secs: 15,
    probe_listener: ProbeListener::AfterMariadb,
    scheduled_events: None,
};

/// A 5 s token (consensus 6 s): a node is declared lost ~11 s after it stops. Azure announces its
/// pausing maintenance through Scheduled Events (Freeze, at least 15 minutes ahead), and
/// azure-events-az moves the resources off that node first, so the pause costs a planned
/// switchover; an unannounced pause longer than the token fences the paused node. The fence delay
/// of 5 s exceeds the lab's measured fence round trip (docs/failover.md), not a figure measured
/// on Azure.
pub const FAST: Timing = Timing {
    profile: TimingProfile::Fast,
    token_ms: 5_000,
    consensus_ms: 6_000,
    fence_delay_secs: 5,
    probe_listener: ProbeListener::BeforeMariadb,
    scheduled_events: Some("Freeze,Reboot,Redeploy"),
};

/// The longest pause Microsoft states for its memory-preserving maintenance ("up to 30 seconds").
pub const AZURE_PAUSE_MS: u32 = 30_000;

/// corosync refuses nothing here, but below a second a busy VM loses its peer every few minutes
/// and above a minute a dead node is noticed after two.
const TOKEN_RANGE_MS: std::ops::RangeInclusive<u32> = 1_000..=60_000;

impl Timing {
    pub fn of(profile: TimingProfile) -> Timing {
        match profile {
            TimingProfile::Azure => AZURE,
            TimingProfile::Fast => FAST,
        }
    }

    /// This cluster's timing: the profile's, with `db.token_ms` replacing its token.
    pub fn for_config(cx: &Context) -> Timing {
        let base = Timing::of(cx.config.db.timing_profile);
        match cx.config.db.token_ms {
            Some(token_ms) => Timing { token_ms, consensus_ms: token_ms / 5 * 6, ..base },
            None => base,
        }
    }
}

/// The profile and token are bad input when the platform cannot carry them out (exit 2).
pub fn validate(cx: &Context) -> Result<()> {
    if let Some(token) = cx.config.db.token_ms {
        if !TOKEN_RANGE_MS.contains(&token) {
            return Err(Error::input(format!(
                "db.token_ms {token} must be between {} and {}",
                TOKEN_RANGE_MS.start(),
                TOKEN_RANGE_MS.end()
            )));
        }
    }
    let t = Timing::for_config(cx);
    if t.scheduled_events.is_some() && !cx.platform.db.scheduled_events {
        return Err(Error::input(format!(
            "db.timing_profile fast needs ocf:heartbeat:azure-events-az (Azure's Scheduled Events) and Pacemaker's \
             allow-unhealthy-nodes, which hainit has not proven on {:?}: use timing_profile azure",
            cx.platform.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consensus_is_corosyncs_default_of_each_profile() {
        for t in [AZURE, FAST] {
            assert_eq!(t.consensus_ms, t.token_ms / 5 * 6, "{t:?}");
        }
    }

    #[test]
    fn a_token_shorter_than_a_platform_pause_comes_with_the_drain_before_it() {
        for t in [AZURE, FAST] {
            let drains_before_freeze = t.scheduled_events.is_some_and(|e| e.split(',').any(|k| k == "Freeze"));
            assert!(t.token_ms >= AZURE_PAUSE_MS || drains_before_freeze, "{t:?}");
        }
    }
}

//! db.cluster.fencer: a fencer that could not reach the CIB is started again.
//!
//! Pacemaker's fencer signs on to the CIB manager when it starts, five times over ten seconds,
//! and never again: if the CIB manager is slower than that (a loaded first boot), the fencer
//! runs without a configuration, registers no fence device, and this node cannot fence its peer
//! ("Couldn't find anyone to fence … No fence device"). Seen in the lab's split-brain run: the
//! primary's fencer was blind, so the secondary won the fence race it should have lost. The
//! fencer logs that failure once; pacemakerd starts a fencer that exits again, and the new one
//! reads the CIB that is up by now. `db.cluster.ready` does the same before it asks the fencer to
//! list the device's targets (a blind fencer knows no device).

use std::time::Duration;

use super::fencing;
use crate::engine::{Context, Step};
use crate::error::Result;
use crate::plan::Action;
use crate::platform::Platform;
use crate::system::{Cmd, Probe};

/// What the fencer logs when it gave up on the CIB (`Could not connect to the CIB manager: …`;
/// Pacemaker 1.1: `… the CIB service: …`).
const BLIND: &str = "Could not connect to the CIB";

/// The pid of this node's fencer when it runs without the CIB, else `None`.
pub fn blind_fencer(platform: &Platform, probe: &dyn Probe) -> Result<Option<u32>> {
    let out = probe.query(&Cmd::new("pidof").arg(platform.fencer))?;
    let Some(pid) = out.success().then(|| out.stdout.split_whitespace().next()?.parse::<u32>().ok()).flatten() else {
        return Ok(None);
    };
    let log = probe.query(&Cmd::new("journalctl").args(["--no-pager", "-o", "cat", &format!("_PID={pid}")]))?;
    Ok(log.stdout.contains(BLIND).then_some(pid))
}

/// Stop a fencer that runs without the CIB, and wait for the one pacemakerd starts instead;
/// nothing when it sees the CIB. Checked again after the wait: the same pid until it has exited,
/// then pacemakerd's new fencer (or none for a moment, which is pacemakerd's to start).
pub fn restart_if_blind(platform: &Platform, probe: &dyn Probe) -> Result<Vec<Action>> {
    let fencer = platform.fencer;
    Ok(match blind_fencer(platform, probe)? {
        Some(pid) => vec![
            Action::run(
                Cmd::new("kill").arg(pid.to_string()),
                format!("{fencer} could not reach the CIB when it started and knows no fence device"),
            ),
            Action::wait(format!("pacemakerd to start a new {fencer}"), Duration::from_secs(120)),
        ],
        None => Vec::new(),
    })
}

pub struct FencerStep;

impl Step for FencerStep {
    fn id(&self) -> &'static str {
        "db.cluster.fencer"
    }
    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        if fencing::stonith(cx).is_none() {
            return Ok(Vec::new());
        }
        restart_if_blind(cx.platform, probe)
    }
}

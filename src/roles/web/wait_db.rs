//! web.db.vip: wait (bounded) until the internal load balancer's VIP accepts TCP on the database
//! port; on timeout the run exits 3 naming VIP and port, and a re-run resumes here.

use std::net::IpAddr;
use std::time::Duration;

use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::system::Probe;

/// One connection attempt; the engine polls with backoff up to web.vip_timeout_secs.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct WaitDbStep;

impl Step for WaitDbStep {
    fn id(&self) -> &'static str {
        "web.db.vip"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let vip = cx.inv.vip.ok_or_else(|| Error::input("tag hainit-vip is missing: the web role waits for it"))?;
        let port = cx.config.database.port;
        if probe.tcp_open(IpAddr::V4(vip), port, CONNECT_TIMEOUT) {
            return Ok(Vec::new());
        }
        let what = format!("the database VIP {vip}:{port} (tag hainit-vip) to accept TCP connections");
        Ok(vec![Action::wait(what, Duration::from_secs(cx.config.web.vip_timeout_secs))])
    }
}

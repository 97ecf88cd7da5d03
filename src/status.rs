//! `status`: the health of this node's role, and how the last run ended.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Outcome;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::system::{FileSpec, Probe};

pub const LAST_RUN: &str = "/var/lib/hainit/last-run.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of `status`: a named item, its level and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub name: String,
    pub level: Level,
    pub detail: String,
}

impl Health {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Health { name: name.into(), level: Level::Ok, detail: detail.into() }
    }
    pub fn warn(name: &str, detail: impl Into<String>) -> Self {
        Health { name: name.into(), level: Level::Warn, detail: detail.into() }
    }
    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Health { name: name.into(), level: Level::Fail, detail: detail.into() }
    }
}

pub struct StatusReport {
    pub inventory: Inventory,
    pub items: Vec<Health>,
    pub last_run: Option<Value>,
}

impl StatusReport {
    pub fn collect(inventory: Inventory, items: Vec<Health>, probe: &dyn Probe) -> Self {
        let last_run = probe.read_string(LAST_RUN).ok().flatten().and_then(|t| serde_json::from_str(&t).ok());
        StatusReport { inventory, items, last_run }
    }

    /// Worst level among the items.
    pub fn level(&self) -> Level {
        let worst = self.items.iter().map(|h| h.level);
        if worst.clone().any(|l| l == Level::Fail) {
            Level::Fail
        } else if worst.into_iter().any(|l| l == Level::Warn) {
            Level::Warn
        } else {
            Level::Ok
        }
    }

    /// How `status` exits: 0 when no item is FAIL (WARN included), else exit 1 naming the
    /// failed items (docs/usage.md).
    pub fn verdict(&self) -> Result<(), Error> {
        let failed: Vec<&str> = self.items.iter().filter(|h| h.level == Level::Fail).map(|h| h.name.as_str()).collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::step(format!("status: {} item(s) FAIL: {}", failed.len(), failed.join(", "))))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "role": self.inventory.role,
            "node": self.inventory.node,
            "cluster": self.inventory.cluster,
            "platform": self.inventory.platform,
            "level": self.level(),
            "items": self.items,
            "last_run": self.last_run,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} node {} ({}) in cluster {} on {}\n",
            self.inventory.role,
            self.inventory.node.name,
            self.inventory.node.ip,
            self.inventory.cluster,
            self.inventory.platform
        );
        for h in &self.items {
            let level = match h.level {
                Level::Ok => "ok",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "  {level:<5} {:<24} {}", h.name, h.detail);
        }
        match &self.last_run {
            Some(run) => {
                let _ = writeln!(
                    out,
                    "  last run: {} at {}",
                    run["result"].as_str().unwrap_or("?"),
                    run["finished"].as_str().unwrap_or("?")
                );
            }
            None => out.push_str("  last run: none recorded\n"),
        }
        out
    }
}

/// The record `apply` leaves for `status` (never read to decide what to do).
pub fn last_run_record(result: &Result<Vec<(&'static str, Outcome)>, Error>) -> FileSpec {
    let body = match result {
        Ok(outcomes) => json!({
            "result": "converged",
            "exit_code": 0,
            "finished": rfc3339_now(),
            "version": env!("CARGO_PKG_VERSION"),
            "steps": outcomes.iter().map(|(id, o)| json!({
                "id": id,
                "outcome": match o { Outcome::Converged => "ok", Outcome::Changed { .. } => "changed" },
            })).collect::<Vec<_>>(),
        }),
        Err(e) => json!({
            "result": "failed",
            "exit_code": e.kind.exit_code(),
            "finished": rfc3339_now(),
            "version": env!("CARGO_PKG_VERSION"),
            "error": e.message(),
        }),
    };
    // Root only: an error message may quote what a failed command said.
    FileSpec::new(LAST_RUN, format!("{body:#}\n"), 0o600)
}

pub fn rfc3339_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(secs)
}

/// UTC time of a Unix timestamp (days-from-civil, Howard Hinnant's algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_record_is_for_root_only() {
        assert_eq!(last_run_record(&Ok(Vec::new())).mode, 0o600);
        assert_eq!(last_run_record(&Err(Error::step("x"))).mode, 0o600);
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}

//! systemd unit state, read with `systemctl show` (shared by both roles).

use crate::system::Cmd;

/// What systemd says about a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub enabled: bool,
    pub active: bool,
    /// Its start job runs (a slow daemon started with `--no-block`).
    pub activating: bool,
    /// When it last entered the active state, seconds since the epoch (UTC).
    pub started: Option<u64>,
}

/// `systemctl show` with the timestamps in UTC (systemd formats them in the caller's zone).
pub fn show(unit: &str) -> Cmd {
    Cmd::new("systemctl")
        .args(["show", "-p", "UnitFileState", "-p", "ActiveState", "-p", "ActiveEnterTimestamp", unit])
        .env("TZ", "UTC")
}

pub fn parse_show(text: &str) -> UnitState {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).unwrap_or("").trim();
    UnitState {
        enabled: field("UnitFileState") == "enabled",
        active: field("ActiveState") == "active",
        activating: field("ActiveState") == "activating",
        started: parse_utc(field("ActiveEnterTimestamp")),
    }
}

/// `Tue 2026-11-25 06:15:01 UTC` → seconds since the epoch.
pub fn parse_utc(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let (_weekday, date, time, zone) = (words.next()?, words.next()?, words.next()?, words.next()?);
    if zone != "UTC" {
        return None;
    }
    let num = |s: Option<&str>| s?.parse::<i64>().ok();
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut t = time.split(':');
    let (hh, mm, ss) = (num(t.next())?, num(t.next())?, num(t.next())?);
    // Days from the civil date (Howard Hinnant's algorithm, the inverse of status::rfc3339).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// `systemctl enable|disable UNIT…` without Debian's SysV sync: for a unit that also ships an
/// init.d script, systemctl runs update-rc.d (perl) twice per unit, 20-70 s a call under
/// emulation. Under systemd those rc.d links decide nothing (the generator skips a script that has
/// a unit of its own); `SYSTEMCTL_SKIP_SYSV` is systemd's documented switch for exactly this, and
/// a systemctl without it (or without SysV compatibility, EL) behaves as before.
pub fn install(verb: &str, units: &[&str]) -> Cmd {
    Cmd::new("systemctl").arg(verb).args(units.iter().copied()).env("SYSTEMCTL_SKIP_SYSV", "1")
}

/// Lists the queued and running jobs (`systemctl list-jobs`, in every systemd we support).
pub fn list_jobs() -> Cmd {
    Cmd::new("systemctl").args(["list-jobs", "--no-legend", "--no-pager"])
}

/// Whether `list-jobs` output holds a start job for `unit`: a unit started with `--no-block` stays
/// `inactive` while its start job waits for a dependency (pcsd waits for pcsd-ruby).
pub fn start_queued(list_jobs: &str, unit: &str) -> bool {
    let name = if unit.contains('.') { unit.to_string() } else { format!("{unit}.service") };
    list_jobs.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() >= 3 && cols[1] == name && cols[2] == "start"
    })
}

/// The state of `unit`, read through the probe.
pub fn state(probe: &dyn crate::system::Probe, unit: &str) -> crate::error::Result<UnitState> {
    Ok(parse_show(&probe.query(&show(unit))?.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabling_skips_the_sysv_sync_and_names_every_unit() {
        let cmd = install("enable", &["pcsd", "corosync", "pacemaker"]);
        assert_eq!(cmd.argv_redacted(), ["systemctl", "enable", "pcsd", "corosync", "pacemaker"]);
        assert_eq!(cmd.env, [("SYSTEMCTL_SKIP_SYSV".to_string(), "1".to_string())]);
    }

    #[test]
    fn a_start_job_waiting_for_its_dependency_counts_as_starting() {
        // `systemctl list-jobs --no-legend` right after `systemctl start --no-block pcsd` (Debian 12).
        let jobs = "118 pcsd.service      start waiting\n119 pcsd-ruby.service start running\n";
        assert!(start_queued(jobs, "pcsd"));
        assert!(start_queued(jobs, "pcsd-ruby.service"));
        assert!(!start_queued(jobs, "corosync"));
        assert!(!start_queued("120 pcsd.service stop running\n", "pcsd"), "a stop job is not a start");
        assert!(!start_queued("", "pcsd"));
    }
}

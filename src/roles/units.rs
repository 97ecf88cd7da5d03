//! systemd unit state, read with `systemctl show` (shared by both roles) and parsed into types: a
//! `systemctl` that fails or says something unknown is an error, never "inactive" (safety rule 6).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::system::{Cmd, Output, Probe};

/// systemd's `ActiveState` (the values `systemctl --state=help` lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Maintenance,
    Refreshing,
}

/// systemd's `UnitFileState`; `None` when the unit has no unit file (not installed, transient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFileState {
    Enabled,
    EnabledRuntime,
    Linked,
    LinkedRuntime,
    Alias,
    Masked,
    MaskedRuntime,
    Static,
    Disabled,
    Indirect,
    Generated,
    Transient,
    Bad,
    None,
}

const ACTIVE_STATES: [(&str, ActiveState); 8] = [
    ("active", ActiveState::Active),
    ("reloading", ActiveState::Reloading),
    ("inactive", ActiveState::Inactive),
    ("failed", ActiveState::Failed),
    ("activating", ActiveState::Activating),
    ("deactivating", ActiveState::Deactivating),
    ("maintenance", ActiveState::Maintenance),
    ("refreshing", ActiveState::Refreshing),
];

const UNIT_FILE_STATES: [(&str, UnitFileState); 14] = [
    ("enabled", UnitFileState::Enabled),
    ("enabled-runtime", UnitFileState::EnabledRuntime),
    ("linked", UnitFileState::Linked),
    ("linked-runtime", UnitFileState::LinkedRuntime),
    ("alias", UnitFileState::Alias),
    ("masked", UnitFileState::Masked),
    ("masked-runtime", UnitFileState::MaskedRuntime),
    ("static", UnitFileState::Static),
    ("disabled", UnitFileState::Disabled),
    ("indirect", UnitFileState::Indirect),
    ("generated", UnitFileState::Generated),
    ("transient", UnitFileState::Transient),
    ("bad", UnitFileState::Bad),
    ("", UnitFileState::None),
];

fn from_table<T: Copy>(table: &[(&str, T)], key: &str, text: &str) -> Result<T> {
    table.iter().find(|(name, _)| *name == text).map(|(_, v)| *v).ok_or_else(|| {
        let known: Vec<&str> = table.iter().map(|(n, _)| *n).filter(|n| !n.is_empty()).collect();
        Error::step(format!("systemctl show: {key}={text:?} is not one of {}", known.join(", ")))
    })
}

fn to_name<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map_or("?", |(n, _)| *n)
}

impl FromStr for ActiveState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        from_table(&ACTIVE_STATES, "ActiveState", s)
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(to_name(&ACTIVE_STATES, *self))
    }
}

impl FromStr for UnitFileState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        from_table(&UNIT_FILE_STATES, "UnitFileState", s)
    }
}

impl fmt::Display for UnitFileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(to_name(&UNIT_FILE_STATES, *self))
    }
}

/// What systemd says about a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub active: ActiveState,
    pub file: UnitFileState,
    /// When it last entered the active state, seconds since the epoch (UTC).
    pub started: Option<u64>,
}

impl UnitState {
    /// Running (`systemctl is-active` counts reloading and refreshing units as active too).
    pub fn is_active(&self) -> bool {
        matches!(self.active, ActiveState::Active | ActiveState::Reloading | ActiveState::Refreshing)
    }
    /// Its start job runs (a slow daemon started with `--no-block`).
    pub fn is_activating(&self) -> bool {
        self.active == ActiveState::Activating
    }
    /// Started at boot.
    pub fn is_enabled(&self) -> bool {
        self.file == UnitFileState::Enabled
    }
}

/// `systemctl show` with the timestamps in UTC (systemd formats them in the caller's zone).
pub fn show(unit: &str) -> Cmd {
    Cmd::new("systemctl")
        .args(["show", "-p", "UnitFileState", "-p", "ActiveState", "-p", "ActiveEnterTimestamp", unit])
        .env("TZ", "UTC")
}

/// The answer of [`show`] for `unit`: a non-zero exit (systemd unreachable, a D-Bus timeout) or a
/// missing or unknown ActiveState/UnitFileState is an error that names the unit.
pub fn parse_show(unit: &str, out: &Output) -> Result<UnitState> {
    let fail = |why: String| Error::step(format!("reading the state of {unit} (`systemctl show`): {why}"));
    if !out.success() {
        let ended = out.code.map_or("a signal".to_string(), |c| format!("exit {c}"));
        return Err(fail(format!("failed with {ended}: {}", out.tail())));
    }
    let field = |key: &str| out.stdout.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::trim);
    let need = |key: &str| field(key).ok_or_else(|| fail(format!("no {key} in its output {:?}", out.stdout.trim())));
    Ok(UnitState {
        active: need("ActiveState")?.parse().map_err(|e: Error| fail(e.to_string()))?,
        file: need("UnitFileState")?.parse().map_err(|e: Error| fail(e.to_string()))?,
        started: field("ActiveEnterTimestamp").and_then(parse_utc),
    })
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
pub fn state(probe: &dyn Probe, unit: &str) -> Result<UnitState> {
    parse_show(unit, &probe.query(&show(unit))?)
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

    const SHOW: &str = "UnitFileState=enabled\nActiveState=active\nActiveEnterTimestamp=Tue 2000-02-29 00:00:00 UTC\n";

    #[test]
    fn reads_unit_state_into_types() {
        let s = parse_show("x", &Output::ok(SHOW)).unwrap();
        assert_eq!(
            s,
            UnitState { active: ActiveState::Active, file: UnitFileState::Enabled, started: Some(951_782_400) }
        );
        assert!(s.is_active() && s.is_enabled() && !s.is_activating());
        // A unit that is not installed: systemd answers (exit 0) with no unit file state.
        let s = parse_show("x", &Output::ok("UnitFileState=\nActiveState=inactive\nActiveEnterTimestamp=\n")).unwrap();
        assert_eq!(s, UnitState { active: ActiveState::Inactive, file: UnitFileState::None, started: None });
        let s = parse_show("x", &Output::ok("ActiveState=activating\nUnitFileState=enabled-runtime\n")).unwrap();
        assert!(s.is_activating() && !s.is_active() && !s.is_enabled(), "{s:?}");
        for (text, state) in ACTIVE_STATES {
            assert_eq!(text.parse::<ActiveState>().unwrap(), state);
            assert_eq!(state.to_string(), text);
        }
        for (text, state) in UNIT_FILE_STATES {
            assert_eq!(text.parse::<UnitFileState>().unwrap(), state);
        }
    }

    #[test]
    fn a_failed_or_unreadable_answer_is_an_error_not_inactive() {
        let cases = [
            (
                Output::fail(1, "Failed to connect to bus: No such file or directory"),
                "exit 1: Failed to connect to bus",
            ),
            (Output { code: None, stdout: String::new(), stderr: "killed".into() }, "a signal"),
            (Output::ok(""), "no ActiveState"),
            (Output::ok("ActiveState=active\n"), "no UnitFileState"),
            (Output::ok("UnitFileState=enabled\nActiveState=sleeping\n"), "ActiveState=\"sleeping\" is not one of"),
            (Output::ok("UnitFileState=frozen\nActiveState=active\n"), "UnitFileState=\"frozen\""),
        ];
        for (out, want) in cases {
            let e = parse_show("corosync", &out).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Step, "{e}");
            let msg = e.to_string();
            assert!(msg.contains("corosync") && msg.contains(want), "{out:?}: {msg}");
        }
    }

    #[test]
    fn parses_systemd_timestamps_in_utc() {
        assert_eq!(parse_utc("Thu 1970-01-01 00:00:00 UTC"), Some(0));
        assert_eq!(parse_utc("Tue 2000-02-29 00:00:00 UTC"), Some(951_782_400));
        assert_eq!(parse_utc("Wed 2026-11-18 11:06:40 UTC"), Some(1_795_000_000));
        assert_eq!(parse_utc("Wed 2026-11-18 11:06:40 CET"), None);
        assert_eq!(parse_utc(""), None);
        assert_eq!(parse_utc("n/a"), None);
    }
}

//! DRBD's state as types: parsed from 8.4's `/proc/drbd` and 9's `drbdsetup status --json`.
//! Unknown keys are ignored (newer utils add fields); an unknown *value* of a state, a missing
//! field or text that does not parse is an error, never a guess (safety rule 6).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::{Error, Result};

/// An enum whose variants are spelled exactly as DRBD prints them, with `FromStr` and `Display`.
macro_rules! drbd_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| Error::step(format!("DRBD reported an unknown {} {s:?}", $what)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

drbd_enum!(
    /// A node's role in the resource (the peer's is `Unknown` while not connected).
    Role, "role" { Primary, Secondary, Unknown }
);

drbd_enum!(
    /// A disk state (the peer's is `DUnknown` while not connected). `Detaching` is 9's.
    DiskState, "disk state" {
        Diskless, Attaching, Detaching, Failed, Negotiating, Inconsistent, Outdated, DUnknown, Consistent, UpToDate,
    }
);

drbd_enum!(
    /// The link to the peer: 9's `connection-state`, and 8.4's `cs:` when it is not connected.
    /// 8.4 waits in `WFConnection` (9: `Connecting`) and handshakes in `WFReportParams`.
    Connection, "connection state" {
        StandAlone, Disconnecting, Unconnected, Timeout, BrokenPipe, NetworkFailure, ProtocolError, TearDown,
        WFConnection, Connecting, WFReportParams, Connected,
    }
);

drbd_enum!(
    /// Replication over a connected link: 9's `replication-state`; 8.4 prints it as `cs:`
    /// (its `Connected` is `Established`). `Off` while not connected.
    Replication, "replication state" {
        Off, Established, StartingSyncS, StartingSyncT, WFBitMapS, WFBitMapT, WFSyncUUID, SyncSource, SyncTarget,
        VerifyS, VerifyT, PausedSyncS, PausedSyncT, Ahead, Behind,
    }
);

impl Replication {
    /// A resync is under way (or paused) in either direction.
    pub fn is_resync(self) -> bool {
        use Replication::*;
        matches!(self, StartingSyncS | StartingSyncT | WFBitMapS | WFBitMapT | WFSyncUUID)
            || matches!(self, SyncSource | SyncTarget | PausedSyncS | PausedSyncT)
    }
}

/// The replication state of this node's resource and what it knows of its (one) peer.
#[derive(Debug, Clone, PartialEq)]
pub struct DrbdState {
    pub role: Role,
    pub disk: DiskState,
    pub connection: Connection,
    pub replication: Replication,
    pub peer_role: Role,
    pub peer_disk: DiskState,
    /// Resync progress while a resync runs.
    pub sync_percent: Option<f64>,
}

impl DrbdState {
    /// Connected to the peer, whether in sync or syncing.
    pub fn is_connected(&self) -> bool {
        self.connection == Connection::Connected
    }
    /// Not even trying to reach the peer (after a split brain, an authentication failure, or a
    /// `drbdadm disconnect`).
    pub fn is_standalone(&self) -> bool {
        self.connection == Connection::StandAlone
    }
    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }
    pub fn peer_is_primary(&self) -> bool {
        self.peer_role == Role::Primary
    }
    /// A resync runs (or is paused) with the peer.
    pub fn is_syncing(&self) -> bool {
        self.is_connected() && self.replication.is_resync()
    }
    /// Connected with current data on both sides: redundant again.
    pub fn is_in_sync(&self) -> bool {
        self.is_connected() && self.disk == DiskState::UpToDate && self.peer_disk == DiskState::UpToDate
    }
    /// Connected and being brought up to date from a peer whose disk is current (SyncTarget,
    /// or about to be).
    pub fn is_receiving_resync(&self) -> bool {
        self.is_connected() && self.disk != DiskState::UpToDate && self.peer_disk == DiskState::UpToDate
    }
    /// Connected without a resync, this disk UpToDate and the peer's said Inconsistent: a
    /// handshake would have started a resync, so this view of the peer is stale. DRBD 8.4 keeps
    /// one when a state packet the peer sent before it took the skipped sync's new UUID arrives
    /// after it (the peer turns UpToDate and says nothing more; seen in the lab, 1 bring-up in 4).
    pub fn holds_stale_peer_disk(&self) -> bool {
        self.is_connected()
            && self.replication == Replication::Established
            && self.disk == DiskState::UpToDate
            && self.peer_disk == DiskState::Inconsistent
    }
    /// Connected without a resync and both disks Inconsistent: after a handshake this means DRBD
    /// compared both sides' generations and found nothing to sync from — with the local
    /// generation "just created" ([`Generation::is_just_created`]) both sides are new.
    pub fn is_brand_new_pair(&self) -> bool {
        self.is_connected()
            && self.replication == Replication::Established
            && self.disk == DiskState::Inconsistent
            && self.peer_disk == DiskState::Inconsistent
    }
    /// The link as DRBD's own status names it: the replication state while connected.
    pub fn link(&self) -> &'static str {
        if self.is_connected() {
            self.replication.as_str()
        } else {
            self.connection.as_str()
        }
    }
}

/// 8.4's `cs:` folds the replication state into the connection state.
fn from_cs(cs: &str) -> Result<(Connection, Replication)> {
    Ok(match cs {
        "Connected" => (Connection::Connected, Replication::Established),
        _ => match Replication::from_str(cs) {
            Ok(r) if r != Replication::Off && r != Replication::Established => (Connection::Connected, r),
            _ => (Connection::from_str(cs)?, Replication::Off),
        },
    })
}

/// `A/B` of `ro:` or `ds:`.
fn pair<T: FromStr<Err = Error>>(line: &str, key: &str) -> Result<(T, T)> {
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .ok_or_else(|| Error::step(format!("/proc/drbd: no {key} in {line:?}")))?;
    let (a, b) =
        value.split_once('/').ok_or_else(|| Error::step(format!("/proc/drbd: {key}{value} is not A/B in {line:?}")))?;
    Ok((a.parse()?, b.parse()?))
}

/// The state of `minor` from DRBD 8.4's `/proc/drbd`; `None` when the minor is not configured
/// (absent, or `cs:Unconfigured`).
pub fn parse_proc_drbd(text: &str, minor: u32) -> Result<Option<DrbdState>> {
    let prefix = format!("{minor}:");
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with(&prefix));
    let Some(head) = lines.next() else { return Ok(None) };
    let cs = head
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cs:"))
        .ok_or_else(|| Error::step(format!("/proc/drbd: no cs: in {head:?}")))?;
    if cs == "Unconfigured" {
        return Ok(None);
    }
    let (connection, replication) = from_cs(cs)?;
    let (role, peer_role) = pair::<Role>(head, "ro:")?;
    let (disk, peer_disk) = pair::<DiskState>(head, "ds:")?;
    // While syncing, the progress line follows the counters line: "sync'ed: 12.3% (…)".
    let mut sync_percent = None;
    if replication.is_resync() {
        // Up to the next minor's line (" 1: cs:…").
        for line in lines.take(3).take_while(|l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit())) {
            if let Some(rest) = line.split("sync'ed:").nth(1) {
                let p = rest.trim().split('%').next().unwrap_or_default().trim();
                let p: f64 =
                    p.parse().map_err(|_| Error::step(format!("/proc/drbd: sync'ed {p:?} is not a percentage")))?;
                sync_percent = Some(p);
            }
        }
    }
    Ok(Some(DrbdState { role, disk, connection, replication, peer_role, peer_disk, sync_percent }))
}

fn field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Value> {
    v.get(key).ok_or_else(|| Error::step(format!("drbdsetup status --json: {what} has no {key:?}")))
}

fn text<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    field(v, key, what)?
        .as_str()
        .ok_or_else(|| Error::step(format!("drbdsetup status --json: {what} {key:?} is not a string")))
}

fn state<T: FromStr<Err = Error>>(v: &Value, key: &str, what: &str) -> Result<T> {
    text(v, key, what)?.parse()
}

/// The state of resource `res` from DRBD 9's `drbdsetup status RES --json` (its first volume and
/// its one peer). A resource the document does not hold is an error: drbdsetup says "No such
/// resource" with exit code 10, which the caller decides on.
pub fn parse_status_json(json: &str, res: &str) -> Result<DrbdState> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| Error::step(format!("drbdsetup status --json printed no JSON ({e})")))?;
    let list = doc
        .as_array()
        .ok_or_else(|| Error::step("drbdsetup status --json printed no array of resources".to_string()))?;
    let r = list
        .iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(res))
        .ok_or_else(|| Error::step(format!("drbdsetup status --json does not list resource {res}")))?;
    let role = state(r, "role", "the resource")?;
    let device = field(r, "devices", "the resource")?
        .as_array()
        .and_then(|d| d.first())
        .ok_or_else(|| Error::step(format!("drbdsetup status --json: resource {res} has no device")))?;
    let disk = state(device, "disk-state", "the device")?;
    let conn = field(r, "connections", "the resource")?
        .as_array()
        .ok_or_else(|| Error::step("drbdsetup status --json: connections is not an array".to_string()))?
        .first();
    // No connection object at all: the peer was never configured here.
    let Some(conn) = conn else {
        return Ok(DrbdState {
            role,
            disk,
            connection: Connection::StandAlone,
            replication: Replication::Off,
            peer_role: Role::Unknown,
            peer_disk: DiskState::DUnknown,
            sync_percent: None,
        });
    };
    let connection = state(conn, "connection-state", "the connection")?;
    let peer_role = state(conn, "peer-role", "the connection")?;
    let peer_dev = field(conn, "peer_devices", "the connection")?.as_array().and_then(|p| p.first());
    let (replication, peer_disk, sync_percent) = match peer_dev {
        None => (Replication::Off, DiskState::DUnknown, None),
        Some(p) => {
            let replication: Replication = state(p, "replication-state", "the peer device")?;
            // Progress of a running resync; `percent-in-sync` is the share of blocks in sync.
            let percent = match p.get("percent-resync-done") {
                None => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| {
                    Error::step("drbdsetup status --json: percent-resync-done is not a number".to_string())
                })?),
            };
            (replication, state(p, "peer-disk-state", "the peer device")?, percent.filter(|_| replication.is_resync()))
        }
    };
    Ok(DrbdState { role, disk, connection, replication, peer_role, peer_disk, sync_percent })
}

/// DRBD's current data generation on this node, from `drbdadm get-gi RES` (8.4 and 9 print
/// `CURRENT:BITMAP:HISTORY…:flags…`, the UUIDs in 16 hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub current: u64,
}

/// What `drbdmeta create-md` leaves as the current UUID (`UUID_JUST_CREATED`).
const UUID_JUST_CREATED: u64 = 4;

impl Generation {
    pub fn parse(text: &str) -> Result<Generation> {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim();
        let current = first.split(':').next().unwrap_or_default();
        let current = u64::from_str_radix(current, 16)
            .map_err(|_| Error::step(format!("drbdadm get-gi printed {first:?}, not CURRENT:BITMAP:…")))?;
        Ok(Generation { current })
    }
    /// Metadata as `create-md` wrote it: this disk never held data of a generation (the low bit
    /// is the "primary" flag).
    pub fn is_just_created(self) -> bool {
        self.current & !1 == UUID_JUST_CREATED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_SYNCING: &str = "version: 8.4.11 (api:1/proto:86-101)\n\
        srcversion: 211FB288A383ED945B83420\n \
        0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----\n    \
        ns:123 nr:0 dw:0 dr:456 al:8 bm:0 lo:0 pe:1 ua:0 ap:0 ep:1 wo:f oos:200000\n\t\
        [==>.................] sync'ed: 12.3% (195312/222080)K\n\t\
        finish: 0:00:26 speed: 7,428 (7,428) K/sec\n";

    fn proc(line: &str) -> Result<Option<DrbdState>> {
        parse_proc_drbd(&format!("version: 8.4.11 (api:1/proto:86-101)\n{line}\n"), 0)
    }

    #[test]
    fn proc_drbd_84_lines() {
        let s = parse_proc_drbd(PROC_SYNCING, 0).unwrap().unwrap();
        assert_eq!((s.connection, s.replication), (Connection::Connected, Replication::SyncSource));
        assert_eq!((s.role, s.peer_role), (Role::Primary, Role::Secondary));
        assert_eq!((s.disk, s.peer_disk), (DiskState::UpToDate, DiskState::Inconsistent));
        assert_eq!(s.sync_percent, Some(12.3));
        assert!(s.is_connected() && s.is_syncing() && s.is_primary() && !s.is_brand_new_pair());
        assert!(!s.holds_stale_peer_disk(), "a resync under way is not a stale view");
        assert_eq!(s.link(), "SyncSource");
        assert_eq!(parse_proc_drbd(PROC_SYNCING, 1).unwrap(), None, "another minor");

        let fresh = proc(" 0: cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent C r-----").unwrap();
        let fresh = fresh.unwrap();
        assert!(fresh.is_brand_new_pair() && fresh.replication == Replication::Established);
        let stale = proc(" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----").unwrap().unwrap();
        assert!(stale.holds_stale_peer_disk());
        let waiting = proc(" 0: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r----s").unwrap().unwrap();
        assert_eq!((waiting.connection, waiting.peer_role), (Connection::WFConnection, Role::Unknown));
        assert!(!waiting.is_connected() && waiting.link() == "WFConnection");
        let alone = proc(" 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----").unwrap().unwrap();
        assert!(alone.is_standalone() && alone.sync_percent.is_none());
        let diskless = proc(" 0: cs:WFConnection ro:Secondary/Unknown ds:Diskless/DUnknown C r-----").unwrap();
        assert_eq!(diskless.unwrap().disk, DiskState::Diskless);
        assert_eq!(proc(" 0: cs:Unconfigured").unwrap(), None);
        assert_eq!(parse_proc_drbd("version: 8.4.11 (api:1/proto:86-101)\n", 0).unwrap(), None, "module only");
    }

    /// Text that does not parse is an error naming what it saw, never a state.
    #[test]
    fn proc_drbd_84_garbage_is_an_error() {
        for (line, names) in [
            (" 0: ro:Secondary/Secondary ds:UpToDate/UpToDate", "no cs:"),
            (" 0: cs:Connected ds:UpToDate/UpToDate C", "no ro:"),
            (" 0: cs:Connected ro:Secondary ds:UpToDate/UpToDate C", "not A/B"),
            (" 0: cs:Connected ro:Secondary/Secondary ds:UpToDate/Sideways C", "unknown disk state \"Sideways\""),
            (" 0: cs:Dancing ro:Secondary/Secondary ds:UpToDate/UpToDate C", "unknown connection state \"Dancing\""),
            (" 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C\n\t[>] sync'ed: lots% (1/2)K", "lots"),
        ] {
            let e = proc(line).unwrap_err();
            assert!(e.to_string().contains(names), "{line}: {e}");
        }
    }

    /// DRBD 9.2's `drbdsetup status RES --json` as drbdsetup prints it (the shape of
    /// drbd-utils' user/v9/drbdsetup.c status_cmd: every key, its indentation and the
    /// `"connection-state": "…", ` with its stray space), this node SyncTarget.
    const STATUS_9_SYNCING: &str = r#"[
{
  "name": "wpcluster",
  "node-id": 1,
  "role": "Secondary",
  "suspended": false,
  "suspended-user": false,
  "suspended-no-data": false,
  "suspended-fencing": false,
  "suspended-quorum": false,
  "force-io-failures": false,
  "write-ordering": "flush",
  "devices": [
    {
      "volume": 0,
      "minor": 0,
      "disk-state": "Inconsistent",
      "client": false,
      "open": false,
      "quorum": true,
      "size": 523260,
      "read": 0,
      "written": 214016,
      "al-writes": 0,
      "bm-writes": 13,
      "upper-pending": 0,
      "lower-pending": 1
    } ],
  "connections": [
    {
      "peer-node-id": 0,
      "name": "db-a",
      "connection-state": "Connected", 
      "congested": false,
      "peer-role": "Primary",
      "tls": false,
      "ap-in-flight": 0,
      "rs-in-flight": 1024,
      "paths": [
        {
          "this_host": {
            "address": "10.0.1.5",
            "port": 7789,
            "family": "ipv4"
          },
          "remote_host": {
            "address": "10.0.1.4",
            "port": 7789,
            "family": "ipv4"
          },
          "established": true
        } ],
      "peer_devices": [
        {
          "volume": 0,
          "replication-state": "SyncTarget",
          "peer-disk-state": "UpToDate",
          "peer-client": false,
          "resync-suspended": "no",
          "received": 214016,
          "sent": 0,
          "out-of-sync": 309244,
          "pending": 0,
          "unacked": 1,
          "has-sync-details": true,
          "has-online-verify-details": false,
          "percent-in-sync": 40.90,
          "rs-total": 1046520,
          "rs-dt-start-ms": 5210,
          "rs-paused-ms": 0,
          "rs-dt0-ms": 2000,
          "rs-db0-sectors": 163840,
          "rs-dt1-ms": 2000,
          "rs-db1-sectors": 163840,
          "rs-failed": 0,
          "rs-same-csum": 0,
          "want": 0.00,
          "db0/dt0 [MiB/s]": 40.00,
          "db1/dt1 [MiB/s]": 40.00,
          "estimated-seconds-to-finish": 8,
          "db/dt [MiB/s]": 40.04,
          "percent-resync-done": 40.90
        } ]
    } ]
}
]
"#;

    #[test]
    fn status_json_9_of_drbdsetup() {
        let s = parse_status_json(STATUS_9_SYNCING, "wpcluster").unwrap();
        assert_eq!((s.connection, s.replication), (Connection::Connected, Replication::SyncTarget));
        assert_eq!(
            (s.role, s.peer_role, s.disk, s.peer_disk),
            (Role::Secondary, Role::Primary, DiskState::Inconsistent, DiskState::UpToDate)
        );
        assert!(s.is_receiving_resync() && s.is_syncing() && s.peer_is_primary());
        assert_eq!(s.sync_percent, Some(40.9));
        assert!(parse_status_json(STATUS_9_SYNCING, "other").unwrap_err().to_string().contains("other"));
        // The same document once in sync: no progress figure, Established.
        let synced = STATUS_9_SYNCING
            .replace("\"SyncTarget\"", "\"Established\"")
            .replace("\"disk-state\": \"Inconsistent\"", "\"disk-state\": \"UpToDate\"");
        let s = parse_status_json(&synced, "wpcluster").unwrap();
        assert!(s.is_in_sync() && s.sync_percent.is_none() && s.link() == "Established");
        let waiting = STATUS_9_SYNCING
            .replace("\"Connected\"", "\"Connecting\"")
            .replace("\"peer-role\": \"Primary\"", "\"peer-role\": \"Unknown\"");
        let s = parse_status_json(&waiting, "wpcluster").unwrap();
        assert_eq!(s.connection, Connection::Connecting);
        assert!(!s.is_connected());
        let alone = r#"[{"name":"r","role":"Primary","devices":[{"disk-state":"UpToDate"}],"connections":[]}]"#;
        assert!(parse_status_json(alone, "r").unwrap().is_standalone());
    }

    #[test]
    fn status_json_9_garbage_is_an_error() {
        for (json, names) in [
            ("", "no JSON"),
            ("{}", "no array"),
            ("[]", "does not list resource r"),
            (r#"[{"name":"r","devices":[]}]"#, "no \"role\""),
            (r#"[{"name":"r","role":"Boss","devices":[],"connections":[]}]"#, "unknown role \"Boss\""),
            (r#"[{"name":"r","role":"Primary","devices":[],"connections":[]}]"#, "has no device"),
            (r#"[{"name":"r","role":"Primary","devices":[{"disk-state":7}],"connections":[]}]"#, "not a string"),
        ] {
            let e = parse_status_json(json, "r").unwrap_err();
            assert!(e.to_string().contains(names), "{json}: {e}");
        }
    }

    #[test]
    fn generation_of_get_gi() {
        // 8.4 and 9 after create-md, 9 with its peer flags; then a generation with history.
        for (line, new) in [
            ("0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:0:0:0\n", true),
            ("0000000000000005:0000000000000000:0000000000000000:0000000000000000:0:0:1:0:1:0:0:1:0:0:0:1\n", true),
            ("8A3F0C2E1B4D5A66:0000000000000000:0000000000000000:0000000000000000:1:1:0:0:0:0:0\n", false),
        ] {
            assert_eq!(Generation::parse(line).unwrap().is_just_created(), new, "{line}");
        }
        assert!(Generation::parse("Device has no disk\n").is_err());
        assert!(Generation::parse("").is_err());
    }

    #[test]
    fn enums_spell_drbds_names() {
        for d in DiskState::ALL {
            assert_eq!(d.as_str().parse::<DiskState>().unwrap(), *d);
        }
        assert_eq!(from_cs("PausedSyncT").unwrap(), (Connection::Connected, Replication::PausedSyncT));
        assert_eq!(from_cs("Connected").unwrap(), (Connection::Connected, Replication::Established));
        assert_eq!(from_cs("WFConnection").unwrap(), (Connection::WFConnection, Replication::Off));
        assert!(from_cs("Established").is_err(), "8.4 never prints 9's Established as cs:");
    }
}

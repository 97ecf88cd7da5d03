//! Pacemaker lines: what the installed Pacemaker's version decides about the CIB hainit writes.
//!
//! | line | where | promotable clone | role names | fence race |
//! |---|---|---|---|---|
//! | 1.1 | CentOS 7 (1.1.23) | `<master>` | Master/Slave | `pcmk_delay_max` on the device |
//! | 2.0 | EL8 before 8.5 | `<clone>` + meta `promotable=true` | Master/Slave | `priority-fencing-delay` from 2.0.4 |
//! | 2.1 | EL8 from 8.5, EL9, Debian 12 | `<clone>` + meta `promotable=true` | Promoted/Unpromoted | `priority-fencing-delay` |
//!
//! The platform table holds a default version per OS (what `render` and a plan on a machine
//! without Pacemaker use); `pacemakerd --version` decides at run time.

use std::fmt;

use crate::error::{Error, Result};
use crate::system::{Cmd, Probe};

/// A Pacemaker release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Line {
    V1_1,
    V2_0,
    V2_1,
}

/// `pacemakerd --version`: the installed Pacemaker.
pub fn version_query() -> Cmd {
    Cmd::new("pacemakerd").arg("--version")
}

impl Version {
    /// From `pacemakerd --version`'s first line: `Pacemaker 2.1.5` (Debian), `Pacemaker
    /// 2.1.7-5.el9_4` (EL), `Pacemaker 1.1.23-1.el7_9.1` (CentOS 7).
    pub fn parse(output: &str) -> Result<Version> {
        let bad =
            || Error::step(format!("pacemakerd --version printed {:?}, not `Pacemaker X.Y.Z`", first_line(output)));
        let word = first_line(output).strip_prefix("Pacemaker ").ok_or_else(bad)?;
        let release = word.split(['-', ' ']).next().unwrap_or_default();
        let mut parts = release.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c)), None) => Ok(Version(a, b, c)),
            _ => Err(bad()),
        }
    }

    /// The installed Pacemaker's version; `default` (the platform table's) while Pacemaker is not
    /// installed yet (a plan before the packages step). Any other failure is an error.
    pub fn installed(probe: &dyn Probe, default: Version) -> Result<Version> {
        let out = probe.query(&version_query())?;
        match out.code {
            Some(0) => Version::parse(&out.stdout),
            Some(127) => Ok(default),
            _ => Err(Error::step(format!("pacemakerd --version failed ({:?}): {}", out.code, out.tail()))),
        }
    }

    pub fn line(self) -> Line {
        match self {
            Version(0..=1, ..) => Line::V1_1,
            Version(2, 0, _) => Line::V2_0,
            _ => Line::V2_1,
        }
    }

    /// `priority-fencing-delay` exists from Pacemaker 2.0.4 on; before, `pcmk_delay_max` on the
    /// fence device makes the two nodes' fence race random instead.
    pub fn has_priority_fencing_delay(self) -> bool {
        self >= Version(2, 0, 4)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Line {
    pub const ALL: [Line; 3] = [Line::V1_1, Line::V2_0, Line::V2_1];

    /// `validate-with` of the rendered CIB: the oldest schema every Pacemaker of the line knows
    /// that holds what hainit writes (3.7 brought Promoted/Unpromoted).
    pub fn schema(self) -> Schema {
        match self {
            Line::V1_1 => Schema(2, 10),
            Line::V2_0 => Schema(3, 0),
            Line::V2_1 => Schema(3, 7),
        }
    }

    /// The oldest schema a live CIB must validate against for what this line writes: the
    /// Promoted/Unpromoted role names came with pacemaker-3.7. (A CIB made by an older Pacemaker
    /// keeps its schema until `cibadmin --upgrade`.)
    pub fn needs_schema(self) -> Option<Schema> {
        match self {
            Line::V1_1 | Line::V2_0 => None,
            Line::V2_1 => Some(Schema(3, 7)),
        }
    }

    /// The promotable clone's id: pcs 0.9 named it `ms_<rsc>` on CentOS 7, pcs ≥ 0.10 `<rsc>-clone`;
    /// kept, so clusters made by either keep their clone.
    pub fn clone_id(self, primitive: &str) -> String {
        match self {
            Line::V1_1 => format!("ms_{primitive}"),
            Line::V2_0 | Line::V2_1 => format!("{primitive}-clone"),
        }
    }

    pub fn promoted(self) -> &'static str {
        match self {
            Line::V1_1 | Line::V2_0 => "Master",
            Line::V2_1 => "Promoted",
        }
    }

    pub fn unpromoted(self) -> &'static str {
        match self {
            Line::V1_1 | Line::V2_0 => "Slave",
            Line::V2_1 => "Unpromoted",
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Line::V1_1 => "1.1",
            Line::V2_0 => "2.0",
            Line::V2_1 => "2.1",
        })
    }
}

/// A CIB schema, `pacemaker-MAJOR.MINOR` (what `validate-with` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Schema(pub u32, pub u32);

impl Schema {
    /// `pacemaker-3.9` → Schema(3, 9); anything else (`pacemaker-next`, `none`) is `None`.
    pub fn parse(validate_with: &str) -> Option<Schema> {
        let (major, minor) = validate_with.strip_prefix("pacemaker-")?.split_once('.')?;
        Some(Schema(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pacemaker-{}.{}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{FakeSystem, Output};

    #[test]
    fn versions_of_every_distribution_and_their_lines() {
        for (text, version, line) in [
            (
                "Pacemaker 2.1.5\nWritten by Andrew Beekhof and the Pacemaker project contributors\n",
                (2, 1, 5),
                Line::V2_1,
            ),
            ("Pacemaker 2.1.7-5.el9_4\nWritten by Andrew Beekhof\n", (2, 1, 7), Line::V2_1),
            ("Pacemaker 2.0.5-9.el8_4.5\n", (2, 0, 5), Line::V2_0),
            ("Pacemaker 1.1.23-1.el7_9.1\nWritten by Andrew Beekhof\n", (1, 1, 23), Line::V1_1),
        ] {
            let v = Version::parse(text).unwrap();
            assert_eq!(v, Version(version.0, version.1, version.2), "{text}");
            assert_eq!(v.line(), line, "{text}");
        }
        for bad in ["", "pacemakerd: command not found", "Pacemaker 2.1", "Pacemaker two.1.5", "Pacemaker 2.1.5.1"] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.to_string().contains("pacemakerd --version printed"), "{bad}: {e}");
        }
    }

    #[test]
    fn priority_fencing_delay_from_2_0_4() {
        assert!(!Version(1, 1, 23).has_priority_fencing_delay());
        assert!(!Version(2, 0, 3).has_priority_fencing_delay());
        assert!(Version(2, 0, 4).has_priority_fencing_delay());
        assert!(Version(2, 1, 5).has_priority_fencing_delay());
    }

    #[test]
    fn the_installed_version_wins_and_a_failure_is_an_error() {
        let fake = FakeSystem::new("db-a");
        let default = Version(2, 0, 5);
        fake.reply(&["pacemakerd"], Output::ok("Pacemaker 2.1.7-5.el8_10\n"));
        assert_eq!(Version::installed(&fake, default).unwrap(), Version(2, 1, 7));
        fake.reply(&["pacemakerd"], Output::fail(127, "not found"));
        assert_eq!(Version::installed(&fake, default).unwrap(), default);
        fake.reply(&["pacemakerd"], Output::fail(1, "broken"));
        assert!(Version::installed(&fake, default).unwrap_err().to_string().contains("broken"));
    }

    #[test]
    fn spellings_per_line() {
        assert_eq!(Line::V1_1.clone_id("drbd_wp"), "ms_drbd_wp");
        assert_eq!(Line::V2_0.clone_id("drbd_wp"), "drbd_wp-clone");
        assert_eq!((Line::V2_0.promoted(), Line::V2_0.unpromoted()), ("Master", "Slave"));
        assert_eq!((Line::V2_1.promoted(), Line::V2_1.unpromoted()), ("Promoted", "Unpromoted"));
        assert_eq!(Line::V1_1.schema().to_string(), "pacemaker-2.10");
        assert_eq!(Schema::parse("pacemaker-3.10"), Some(Schema(3, 10)));
        assert!(Schema::parse("pacemaker-3.10") > Some(Schema(3, 7)));
        assert_eq!(Schema::parse("pacemaker-next"), None);
    }
}

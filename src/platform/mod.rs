//! Which OS this is (`/etc/os-release` or `--os`) and the one table of its differences.

mod table;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

pub use table::{DbPlatform, PackageManager, Platform, WebPlatform};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OsId {
    Centos7,
    El8,
    El9,
    Debian12,
}

pub const SUPPORTED: &str = "centos7, el8, el9, debian12";

impl OsId {
    pub const ALL: [OsId; 4] = [OsId::Centos7, OsId::El8, OsId::El9, OsId::Debian12];

    pub fn as_str(self) -> &'static str {
        match self {
            OsId::Centos7 => "centos7",
            OsId::El8 => "el8",
            OsId::El9 => "el9",
            OsId::Debian12 => "debian12",
        }
    }

    pub fn platform(self) -> &'static Platform {
        table::platform(self)
    }

    /// Identify the OS from the text of `/etc/os-release`.
    pub fn detect(os_release: &str) -> Result<OsId> {
        let field = |key: &str| {
            os_release.lines().find_map(|l| {
                let value = l.strip_prefix(key)?.strip_prefix('=')?;
                Some(value.trim().trim_matches('"').trim_matches('\'').to_string())
            })
        };
        let id = field("ID").unwrap_or_default();
        let version = field("VERSION_ID").unwrap_or_default();
        let major = version.split('.').next().unwrap_or("");
        let el = matches!(id.as_str(), "rhel" | "rocky" | "almalinux" | "centos");
        match (id.as_str(), major) {
            ("centos", "7") => Ok(OsId::Centos7),
            (_, "8") if el => Ok(OsId::El8),
            (_, "9") if el => Ok(OsId::El9),
            ("debian", "12") => Ok(OsId::Debian12),
            _ => Err(Error::input(format!(
                "unsupported OS: /etc/os-release says ID={id:?} VERSION_ID={version:?}; supported: {SUPPORTED} \
                 (use --os to override)"
            ))),
        }
    }
}

impl FromStr for OsId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        OsId::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| Error::input(format!("--os {s:?} is not supported; supported: {SUPPORTED}")))
    }
}

impl fmt::Display for OsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_supported_os_release() {
        let cases = [
            ("NAME=\"CentOS Linux\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\n", OsId::Centos7),
            ("ID=\"rocky\"\nVERSION_ID=\"8.10\"\n", OsId::El8),
            ("ID=\"almalinux\"\nVERSION_ID=\"9.4\"\n", OsId::El9),
            ("ID=\"rhel\"\nVERSION_ID=\"9.2\"\n", OsId::El9),
            ("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n", OsId::Debian12),
        ];
        for (text, want) in cases {
            assert_eq!(OsId::detect(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn unsupported_os_lists_what_is_supported() {
        for text in ["ID=ubuntu\nVERSION_ID=\"22.04\"\n", "ID=debian\nVERSION_ID=\"11\"\n", ""] {
            let e = OsId::detect(text).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Input);
            assert!(e.to_string().contains(SUPPORTED), "{e}");
        }
        let e = "sles15".parse::<OsId>().unwrap_err();
        assert!(e.to_string().contains("\"sles15\"") && e.to_string().contains(SUPPORTED), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for os in OsId::ALL {
            assert_eq!(os.as_str().parse::<OsId>().unwrap(), os);
            assert_eq!(os.platform().id, os);
        }
    }
}

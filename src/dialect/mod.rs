//! Version dialects of the cluster tools: the only place that knows argument shapes per version.

pub mod crm_mon;
pub mod drbd;
pub mod pcs;

use std::fmt;

/// pcs command-line generations (reference §2): 0.9 on CentOS 7, 0.10 on EL8, 0.11 on EL9/Debian 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcsDialect {
    V09,
    V010,
    V011,
}

/// DRBD resource-file and command generations; the kernel module's version decides (reference §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrbdDialect {
    V84,
    V9,
}

impl fmt::Display for PcsDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PcsDialect::V09 => "pcs-0.9",
            PcsDialect::V010 => "pcs-0.10",
            PcsDialect::V011 => "pcs-0.11",
        })
    }
}

impl fmt::Display for DrbdDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DrbdDialect::V84 => "drbd-8.4",
            DrbdDialect::V9 => "drbd-9",
        })
    }
}

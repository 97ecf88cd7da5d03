//! The only code that touches the machine. Steps read through [`Probe`]; the engine writes
//! and runs through [`Executor`]. Implementations: [`HostSystem`] (the real machine under a
//! root prefix), [`RecordingSystem`] (an overlay that records instead of acting, for `plan`)
//! and [`FakeSystem`] (in memory with scripted commands, for tests).

pub mod archive;
mod cmd;
mod fake;
mod file;
mod http;
pub mod mounts;
mod real;
mod record;
mod root;
pub mod tree;

pub use archive::UnpackSpec;
pub use cmd::{Arg, Cmd, Input, Output, DEFAULT_TIMEOUT};
pub use fake::FakeSystem;
pub use file::{lookup_group, lookup_user, Content, FileKind, FileMeta, FileSpec};
pub use http::{DownloadSpec, HttpReply};
pub use real::HostSystem;
pub use record::RecordingSystem;
pub use root::Root;
pub use tree::TreeSpec;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Read-only view of the machine. Paths are absolute paths on the target (the root prefix, if
/// any, is applied by the implementation).
pub trait Probe {
    /// File content, `None` when the path does not exist.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// `lstat` of a path, `None` when it does not exist.
    fn meta(&self, path: &str) -> Result<Option<FileMeta>>;
    /// Names in a directory, sorted; empty when it does not exist.
    fn list(&self, path: &str) -> Result<Vec<String>>;
    /// Run a command that only reads (blkid, drbdadm dump-md, crm_mon …). A program that is not
    /// installed is an `Output` with code 127, not an error.
    fn query(&self, cmd: &Cmd) -> Result<Output>;
    /// True when a TCP connection to `ip:port` succeeds within `timeout`.
    fn tcp_open(&self, ip: IpAddr, port: u16, timeout: Duration) -> bool;
    /// `uname -n`.
    fn hostname(&self) -> Result<String>;

    /// Last modification time of a path (not following a final symlink), `None` when absent.
    fn modified(&self, path: &str) -> Result<Option<SystemTime>> {
        Err(Error::step(format!("modification times are not available here ({path})")))
    }
    /// One HTTP GET, no proxy, no redirects (health checks of this machine's own services).
    fn http_get(&self, url: &str, _timeout: Duration) -> Result<HttpReply> {
        Err(Error::step(format!("HTTP is not available here ({url})")))
    }

    fn read_string(&self, path: &str) -> Result<Option<String>> {
        Ok(self.read(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.meta(path)?.is_some())
    }
}

/// What changes the machine.
pub trait Executor: Probe {
    /// Atomic replace (temp file, fsync, rename, fsync dir); parents are created 0755 root.
    fn write_file(&self, spec: &FileSpec) -> Result<()>;
    fn ensure_dir(&self, path: &str, mode: u32, owner: &str, group: &str) -> Result<()>;
    /// Run a command; a non-zero exit is returned in `Output`, not as an error.
    fn run(&self, cmd: &Cmd) -> Result<Output>;
    /// Replace a tree with the verified content of an archive (see [`archive::unpack`]).
    fn unpack(&self, spec: &UnpackSpec) -> Result<()> {
        Err(Error::step(format!("unpacking archives is not supported here ({})", spec.dest)))
    }
    /// Download a file whose sha256 is pinned; nothing is written when it does not match.
    fn download(&self, spec: &DownloadSpec) -> Result<()> {
        Err(Error::step(format!("downloads are not supported here ({})", spec.url)))
    }
    /// Set owner, group and modes across a tree (see [`TreeSpec`]).
    fn fix_tree(&self, spec: &TreeSpec) -> Result<()> {
        Err(Error::step(format!("tree ownership is not supported here ({})", spec.path)))
    }
}

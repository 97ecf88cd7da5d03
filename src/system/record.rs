//! An overlay over a [`Probe`] that records instead of acting: `plan` runs every check against
//! it, so a file an earlier step would write is visible to a later step's check.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::{
    lookup_group, lookup_user, Cmd, DownloadSpec, Executor, FileKind, FileMeta, FileSpec, HttpReply, Output, Probe,
    TreeSpec, UnpackSpec,
};
use crate::error::Result;

/// What the recording system was asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Write(String),
    Dir(String),
    Run(Vec<String>),
    Unpack(String),
    Download(String),
    Tree(String),
}

pub struct RecordingSystem<'a> {
    inner: &'a dyn Probe,
    files: RefCell<BTreeMap<String, FileSpec>>,
    dirs: RefCell<BTreeMap<String, (u32, String, String)>>,
    journal: RefCell<Vec<Recorded>>,
}

impl<'a> RecordingSystem<'a> {
    pub fn new(inner: &'a dyn Probe) -> Self {
        RecordingSystem {
            inner,
            files: RefCell::new(BTreeMap::new()),
            dirs: RefCell::new(BTreeMap::new()),
            journal: RefCell::new(Vec::new()),
        }
    }

    pub fn journal(&self) -> Vec<Recorded> {
        self.journal.borrow().clone()
    }

    fn ids(&self, owner: &str, group: &str) -> (u32, u32) {
        let passwd = self.inner.read_string("/etc/passwd").ok().flatten().unwrap_or_default();
        let groups = self.inner.read_string("/etc/group").ok().flatten().unwrap_or_default();
        (lookup_user(&passwd, owner).unwrap_or(u32::MAX), lookup_group(&groups, group).unwrap_or(u32::MAX))
    }
}

impl Probe for RecordingSystem<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match self.files.borrow().get(path) {
            Some(spec) => Ok(Some(spec.content.bytes().to_vec())),
            None => self.inner.read(path),
        }
    }

    fn meta(&self, path: &str) -> Result<Option<FileMeta>> {
        if let Some(spec) = self.files.borrow().get(path) {
            let (uid, gid) = self.ids(&spec.owner, &spec.group);
            let len = spec.content.bytes().len() as u64;
            return Ok(Some(FileMeta { kind: FileKind::File, mode: spec.mode, uid, gid, len }));
        }
        if let Some((mode, owner, group)) = self.dirs.borrow().get(path) {
            let (uid, gid) = self.ids(owner, group);
            return Ok(Some(FileMeta { kind: FileKind::Dir, mode: *mode, uid, gid, len: 0 }));
        }
        self.inner.meta(path)
    }

    fn list(&self, path: &str) -> Result<Vec<String>> {
        let mut names = self.inner.list(path)?;
        let prefix = format!("{}/", path.trim_end_matches('/'));
        for p in self.files.borrow().keys().chain(self.dirs.borrow().keys()) {
            if let Some(name) = p.strip_prefix(&prefix).filter(|n| !n.contains('/')) {
                names.push(name.to_string());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn query(&self, cmd: &Cmd) -> Result<Output> {
        self.inner.query(cmd)
    }

    fn tcp_open(&self, ip: IpAddr, port: u16, timeout: Duration) -> bool {
        self.inner.tcp_open(ip, port, timeout)
    }

    fn hostname(&self) -> Result<String> {
        self.inner.hostname()
    }

    /// A file this overlay would write is as new as it gets.
    fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        if self.files.borrow().contains_key(path) {
            return Ok(Some(std::time::SystemTime::now()));
        }
        self.inner.modified(path)
    }

    fn http_get(&self, url: &str, timeout: Duration) -> Result<HttpReply> {
        self.inner.http_get(url, timeout)
    }
}

impl Executor for RecordingSystem<'_> {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        self.journal.borrow_mut().push(Recorded::Write(spec.path.clone()));
        self.files.borrow_mut().insert(spec.path.clone(), spec.clone());
        Ok(())
    }

    fn ensure_dir(&self, path: &str, mode: u32, owner: &str, group: &str) -> Result<()> {
        self.journal.borrow_mut().push(Recorded::Dir(path.to_string()));
        self.dirs.borrow_mut().insert(path.to_string(), (mode, owner.to_string(), group.to_string()));
        Ok(())
    }

    /// Recorded, not run: reports success with no output.
    fn run(&self, cmd: &Cmd) -> Result<Output> {
        self.journal.borrow_mut().push(Recorded::Run(cmd.argv_redacted()));
        Ok(Output::ok(""))
    }

    fn unpack(&self, spec: &UnpackSpec) -> Result<()> {
        self.journal.borrow_mut().push(Recorded::Unpack(spec.dest.clone()));
        Ok(())
    }

    fn download(&self, spec: &DownloadSpec) -> Result<()> {
        self.journal.borrow_mut().push(Recorded::Download(spec.path.clone()));
        Ok(())
    }

    fn fix_tree(&self, spec: &TreeSpec) -> Result<()> {
        self.journal.borrow_mut().push(Recorded::Tree(spec.path.clone()));
        Ok(())
    }
}

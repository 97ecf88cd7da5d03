//! An executor that dies after a number of actions, like a run killed mid-way (design rule 5).

use std::cell::Cell;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use hainit::error::{Error, Result};
use hainit::system::{
    Cmd, DownloadSpec, Executor, FakeSystem, FileMeta, FileSpec, HttpReply, Output, Probe, TreeSpec, UnpackSpec,
};

pub struct DiesAfter<'a> {
    pub inner: &'a FakeSystem,
    pub left: Cell<usize>,
}

impl DiesAfter<'_> {
    fn spend(&self) -> Result<()> {
        if self.left.get() == 0 {
            return Err(Error::step("killed"));
        }
        self.left.set(self.left.get() - 1);
        Ok(())
    }
}

impl Probe for DiesAfter<'_> {
    fn read(&self, p: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read(p)
    }
    fn meta(&self, p: &str) -> Result<Option<FileMeta>> {
        self.inner.meta(p)
    }
    fn list(&self, p: &str) -> Result<Vec<String>> {
        self.inner.list(p)
    }
    fn query(&self, c: &Cmd) -> Result<Output> {
        self.inner.query(c)
    }
    fn tcp_open(&self, ip: IpAddr, port: u16, t: Duration) -> bool {
        self.inner.tcp_open(ip, port, t)
    }
    fn hostname(&self) -> Result<String> {
        self.inner.hostname()
    }
    fn modified(&self, p: &str) -> Result<Option<SystemTime>> {
        self.inner.modified(p)
    }
    fn http_get(&self, url: &str, t: Duration) -> Result<HttpReply> {
        self.inner.http_get(url, t)
    }
}

impl Executor for DiesAfter<'_> {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        self.spend()?;
        self.inner.write_file(spec)
    }
    fn ensure_dir(&self, p: &str, m: u32, o: &str, g: &str) -> Result<()> {
        self.spend()?;
        self.inner.ensure_dir(p, m, o, g)
    }
    fn run(&self, c: &Cmd) -> Result<Output> {
        self.spend()?;
        self.inner.run(c)
    }
    fn unpack(&self, s: &UnpackSpec) -> Result<()> {
        self.spend()?;
        self.inner.unpack(s)
    }
    fn download(&self, s: &DownloadSpec) -> Result<()> {
        self.spend()?;
        self.inner.download(s)
    }
    fn fix_tree(&self, s: &TreeSpec) -> Result<()> {
        self.spend()?;
        self.inner.fix_tree(s)
    }
}

impl<'a> DiesAfter<'a> {
    pub fn new(inner: &'a FakeSystem, actions: usize) -> Self {
        DiesAfter { inner, left: Cell::new(actions) }
    }
}

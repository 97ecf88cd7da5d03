//! An in-memory machine for tests: files, scripted commands whose handlers may change the
//! machine, open TCP ports. An unscripted command is an error that shows its argv, so a test
//! cannot pass by accident.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{lookup_group, lookup_user, Cmd, Executor, FileKind, FileMeta, FileSpec, Output, Probe};
use crate::error::{Error, Result};

type Handler = Rc<dyn Fn(&FakeSystem, &Cmd) -> Output>;

#[derive(Clone)]
struct FakeFile {
    content: Vec<u8>,
    meta: FileMeta,
}

#[derive(Default)]
pub struct FakeSystem {
    files: RefCell<BTreeMap<String, FakeFile>>,
    handlers: RefCell<Vec<(Vec<String>, Handler)>>,
    /// Free-form state that command handlers keep (e.g. "drbd.md" = "created").
    facts: RefCell<BTreeMap<String, String>>,
    open_ports: RefCell<BTreeSet<(IpAddr, u16)>>,
    hostname: RefCell<String>,
    ran: RefCell<Vec<Vec<String>>>,
}

impl FakeSystem {
    pub fn new(hostname: &str) -> Self {
        let fake = FakeSystem::default();
        *fake.hostname.borrow_mut() = hostname.to_string();
        fake.add_file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644);
        fake.add_file("/etc/group", "root:x:0:\n", 0o644);
        fake
    }

    pub fn add_file(&self, path: &str, content: impl Into<Vec<u8>>, mode: u32) {
        let content = content.into();
        let meta = FileMeta { kind: FileKind::File, mode, uid: 0, gid: 0, len: content.len() as u64 };
        self.files.borrow_mut().insert(path.to_string(), FakeFile { content, meta });
    }

    pub fn add_node(&self, path: &str, kind: FileKind) {
        let meta = FileMeta { kind, mode: 0o660, uid: 0, gid: 0, len: 0 };
        self.files.borrow_mut().insert(path.to_string(), FakeFile { content: Vec::new(), meta });
    }

    pub fn remove(&self, path: &str) {
        self.files.borrow_mut().remove(path);
    }

    /// Answer every command whose argv starts with `prefix` (later registrations win).
    pub fn on(&self, prefix: &[&str], handler: impl Fn(&FakeSystem, &Cmd) -> Output + 'static) {
        let prefix = prefix.iter().map(|s| s.to_string()).collect();
        self.handlers.borrow_mut().push((prefix, Rc::new(handler)));
    }

    /// Answer with a fixed output.
    pub fn reply(&self, prefix: &[&str], out: Output) {
        self.on(prefix, move |_, _| out.clone());
    }

    pub fn set_fact(&self, key: &str, value: &str) {
        self.facts.borrow_mut().insert(key.to_string(), value.to_string());
    }

    pub fn fact(&self, key: &str) -> Option<String> {
        self.facts.borrow().get(key).cloned()
    }

    pub fn open_port(&self, ip: IpAddr, port: u16) {
        self.open_ports.borrow_mut().insert((ip, port));
    }

    /// Every command executed or queried so far, argv redacted.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.ran.borrow().clone()
    }

    fn dispatch(&self, cmd: &Cmd) -> Result<Output> {
        let argv = cmd.argv_redacted();
        self.ran.borrow_mut().push(argv.clone());
        let handler = self
            .handlers
            .borrow()
            .iter()
            .rev()
            .find(|(prefix, _)| argv.len() >= prefix.len() && argv[..prefix.len()] == prefix[..])
            .map(|(_, h)| h.clone());
        match handler {
            Some(h) => Ok(h(self, cmd)),
            None => Err(Error::step(format!("FakeSystem: unscripted command {argv:?}"))),
        }
    }

    fn ids(&self, owner: &str, group: &str) -> Result<(u32, u32)> {
        let passwd = self.read_string("/etc/passwd")?.unwrap_or_default();
        let groups = self.read_string("/etc/group")?.unwrap_or_default();
        let uid = lookup_user(&passwd, owner).ok_or_else(|| Error::step(format!("user {owner:?} does not exist")))?;
        let gid = lookup_group(&groups, group).ok_or_else(|| Error::step(format!("group {group:?} does not exist")))?;
        Ok((uid, gid))
    }
}

impl Probe for FakeSystem {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files.borrow().get(path).filter(|f| f.meta.kind != FileKind::Dir).map(|f| f.content.clone()))
    }

    fn meta(&self, path: &str) -> Result<Option<FileMeta>> {
        let files = self.files.borrow();
        if let Some(f) = files.get(path) {
            return Ok(Some(f.meta));
        }
        // A directory exists implicitly when something lives below it.
        let prefix = format!("{}/", path.trim_end_matches('/'));
        Ok(files.keys().any(|k| k.starts_with(&prefix)).then_some(FileMeta {
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            len: 0,
        }))
    }

    fn list(&self, path: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut names: Vec<String> = self
            .files
            .borrow()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.dedup();
        Ok(names)
    }

    fn query(&self, cmd: &Cmd) -> Result<Output> {
        self.dispatch(cmd)
    }

    fn tcp_open(&self, ip: IpAddr, port: u16, _timeout: Duration) -> bool {
        self.open_ports.borrow().contains(&(ip, port))
    }

    fn hostname(&self) -> Result<String> {
        Ok(self.hostname.borrow().clone())
    }
}

impl Executor for FakeSystem {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        let (uid, gid) = self.ids(&spec.owner, &spec.group)?;
        let content = spec.content.bytes().to_vec();
        let meta = FileMeta { kind: FileKind::File, mode: spec.mode, uid, gid, len: content.len() as u64 };
        self.files.borrow_mut().insert(spec.path.clone(), FakeFile { content, meta });
        Ok(())
    }

    fn ensure_dir(&self, path: &str, mode: u32, owner: &str, group: &str) -> Result<()> {
        let (uid, gid) = self.ids(owner, group)?;
        let meta = FileMeta { kind: FileKind::Dir, mode, uid, gid, len: 0 };
        self.files.borrow_mut().insert(path.to_string(), FakeFile { content: Vec::new(), meta });
        Ok(())
    }

    fn run(&self, cmd: &Cmd) -> Result<Output> {
        self.dispatch(cmd)
    }
}

//! An in-memory machine for tests: files, scripted commands whose handlers may change the
//! machine, open TCP ports. An unscripted command is an error that shows its argv, so a test
//! cannot pass by accident.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::archive::{read_entries, sha256_hex, EntryKind};
use super::{
    lookup_group, lookup_user, Cmd, DownloadSpec, Executor, FileKind, FileMeta, FileSpec, HttpReply, Output, Probe,
    TreeSpec, UnpackSpec,
};
use crate::error::{Error, Result};

type Handler = Rc<dyn Fn(&FakeSystem, &Cmd) -> Output>;

#[derive(Clone)]
struct FakeFile {
    content: Vec<u8>,
    meta: FileMeta,
    modified: SystemTime,
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
    /// Seconds of a fake clock that every change advances, so modification times are ordered.
    clock: Cell<u64>,
    http: RefCell<BTreeMap<String, HttpReply>>,
    downloads: RefCell<BTreeMap<String, Vec<u8>>>,
}

/// Where the fake clock starts (2020-09-13): in the past, so that a plan's overlay, which dates
/// the files it would write "now", sees them as newer than anything on the fake machine.
const CLOCK_START: u64 = 1_600_000_000;

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
        self.put(path, content, meta);
    }

    pub fn add_node(&self, path: &str, kind: FileKind) {
        let meta = FileMeta { kind, mode: 0o660, uid: 0, gid: 0, len: 0 };
        self.put(path, Vec::new(), meta);
    }

    fn put(&self, path: &str, content: Vec<u8>, meta: FileMeta) {
        let modified = self.tick();
        self.files.borrow_mut().insert(path.to_string(), FakeFile { content, meta, modified });
    }

    /// The fake clock now; every change to the machine advances it by a second.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(CLOCK_START.max(self.clock.get()))
    }

    fn tick(&self) -> SystemTime {
        self.clock.set(CLOCK_START.max(self.clock.get()) + 1);
        self.now()
    }

    /// Answer `http_get(url)` with `reply`.
    pub fn serve_http(&self, url: &str, reply: HttpReply) {
        self.http.borrow_mut().insert(url.to_string(), reply);
    }

    /// Let `download` fetch `bytes` from `url`.
    pub fn serve_download(&self, url: &str, bytes: Vec<u8>) {
        self.downloads.borrow_mut().insert(url.to_string(), bytes);
    }

    /// Every path at or below `dir` (explicit entries only).
    fn paths_below(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files.borrow().keys().filter(|k| *k == dir || k.starts_with(&prefix)).cloned().collect()
    }

    pub fn remove(&self, path: &str) {
        self.files.borrow_mut().remove(path);
    }

    /// `rm -rf dir`.
    pub fn remove_tree(&self, dir: &str) {
        for path in self.paths_below(dir) {
            self.remove(&path);
        }
    }

    /// `cp -a from/. to/`: everything below `from` also below `to` (merged, files replaced).
    pub fn copy_tree(&self, from: &str, to: &str) {
        let from = from.trim_end_matches('/');
        for path in self.paths_below(from) {
            let copy = self.files.borrow().get(&path).cloned();
            if let (Some(file), Some(rest)) = (copy, path.strip_prefix(from)) {
                self.put(&format!("{}{rest}", to.trim_end_matches('/')), file.content, file.meta);
            }
        }
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

    pub fn facts_remove(&self, key: &str) {
        self.facts.borrow_mut().remove(key);
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

    fn modified(&self, path: &str) -> Result<Option<SystemTime>> {
        Ok(self.files.borrow().get(path).map(|f| f.modified))
    }

    fn http_get(&self, url: &str, _timeout: Duration) -> Result<HttpReply> {
        self.http.borrow().get(url).cloned().ok_or_else(|| Error::step(format!("GET {url}: connection refused")))
    }
}

impl Executor for FakeSystem {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        let (uid, gid) = self.ids(&spec.owner, &spec.group)?;
        let content = spec.content.bytes().to_vec();
        let meta = FileMeta { kind: FileKind::File, mode: spec.mode, uid, gid, len: content.len() as u64 };
        self.put(&spec.path, content, meta);
        Ok(())
    }

    fn ensure_dir(&self, path: &str, mode: u32, owner: &str, group: &str) -> Result<()> {
        let (uid, gid) = self.ids(owner, group)?;
        let meta = FileMeta { kind: FileKind::Dir, mode, uid, gid, len: 0 };
        self.put(path, Vec::new(), meta);
        Ok(())
    }

    fn run(&self, cmd: &Cmd) -> Result<Output> {
        self.tick();
        self.dispatch(cmd)
    }

    /// The archive's entries replace everything below `dest` except the kept paths (no staging:
    /// in memory a refusal is found before anything changes).
    fn unpack(&self, spec: &UnpackSpec) -> Result<()> {
        let bytes = self.read(&spec.archive)?.ok_or_else(|| Error::step(format!("{} does not exist", spec.archive)))?;
        if sha256_hex(&bytes) != spec.sha256.to_ascii_lowercase() {
            return Err(Error::step(format!("{}: sha256 mismatch", spec.archive)));
        }
        let mut fresh = Vec::new();
        read_entries(&bytes, &spec.top, |entry, data| {
            let mut content = Vec::new();
            data.read_to_end(&mut content).map_err(|e| Error::step(e.to_string()))?;
            fresh.push((entry.clone(), content));
            Ok(())
        })?;
        let kept: Vec<String> = spec.keep.iter().map(|k| format!("{}/{k}", spec.dest)).collect();
        for path in self.paths_below(&spec.dest) {
            if !kept.iter().any(|k| path == *k || path.starts_with(&format!("{k}/"))) {
                self.remove(&path);
            }
        }
        self.put(&spec.dest, Vec::new(), FileMeta { kind: FileKind::Dir, mode: 0o755, uid: 0, gid: 0, len: 0 });
        for (entry, content) in fresh {
            let path = format!("{}/{}", spec.dest, entry.path);
            if kept.iter().any(|k| path == *k || path.starts_with(&format!("{k}/"))) && self.exists(&path)? {
                continue;
            }
            let (kind, mode) = match entry.kind {
                EntryKind::Dir => (FileKind::Dir, 0o755),
                EntryKind::Symlink(_) => (FileKind::Symlink, 0o777),
                EntryKind::File | EntryKind::HardLink(_) => (FileKind::File, 0o644),
            };
            let meta = FileMeta { kind, mode, uid: 0, gid: 0, len: content.len() as u64 };
            self.put(&path, content, meta);
        }
        Ok(())
    }

    fn download(&self, spec: &DownloadSpec) -> Result<()> {
        let bytes = self
            .downloads
            .borrow()
            .get(&spec.url)
            .cloned()
            .ok_or_else(|| Error::step(format!("downloading {}: HTTP 404", spec.url)))?;
        if sha256_hex(&bytes) != spec.sha256.to_ascii_lowercase() {
            return Err(Error::step(format!("downloaded {} does not match the pinned sha256", spec.url)));
        }
        self.write_file(&FileSpec::new(&spec.path, bytes, 0o644))
    }

    fn fix_tree(&self, spec: &TreeSpec) -> Result<()> {
        let (uid, gid) = self.ids(&spec.owner, &spec.group)?;
        let skipped = |p: &str| spec.except.iter().any(|e| p == e || p.starts_with(&format!("{e}/")));
        // Directories that exist only implicitly become entries, so their owner can be set.
        for path in self.paths_below(&spec.path) {
            let mut dir = path.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if parent.len() < spec.path.len() || self.files.borrow().contains_key(parent) {
                    break;
                }
                self.put(parent, Vec::new(), FileMeta { kind: FileKind::Dir, mode: 0o755, uid: 0, gid: 0, len: 0 });
                dir = parent;
            }
        }
        for path in self.paths_below(&spec.path).into_iter().filter(|p| !skipped(p)) {
            if let Some(f) = self.files.borrow_mut().get_mut(&path) {
                f.meta.uid = uid;
                f.meta.gid = gid;
                match f.meta.kind {
                    FileKind::Dir => f.meta.mode = spec.dir_mode,
                    FileKind::Symlink => {}
                    _ => f.meta.mode = spec.file_mode,
                }
            }
        }
        Ok(())
    }
}

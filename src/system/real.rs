//! The real machine, with every path below a [`Root`].

use std::fs;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{chown, Gid, Pid, Uid};
use tracing::debug;

use super::{
    archive, http, lookup_group, lookup_user, tree, Cmd, DownloadSpec, Executor, FileKind, FileMeta, FileSpec,
    HttpReply, Output, Probe, Root, TreeSpec, UnpackSpec,
};
use crate::error::{io_error, Error, Result};

pub struct HostSystem {
    root: Root,
    /// Apply ownership (apply); `render` writes files for inspection and leaves owners alone.
    chown: bool,
}

impl HostSystem {
    pub fn new(root: Root) -> Self {
        HostSystem { root, chown: true }
    }

    /// Files only, no ownership changes (for `render --out`).
    pub fn without_chown(root: Root) -> Self {
        HostSystem { root, chown: false }
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Hold an exclusive lock so that a boot unit and a cloud-init `runcmd` (or an operator)
    /// never converge the same node at once; waits for a holder to finish.
    pub fn lock(&self, path: &str) -> Result<Flock<fs::File>> {
        let p = self.root.resolve(path, true)?;
        self.create_parents(&p)?;
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p)
            .map_err(|e| io_error(format!("opening lock {}", p.display()), e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(lock),
            Err((file, _)) => {
                tracing::info!(lock = %p.display(), "another hainit run holds the lock; waiting for it");
                Flock::lock(file, FlockArg::LockExclusive)
                    .map_err(|(_, e)| Error::step(format!("locking {}: {e}", p.display())))
            }
        }
    }

    fn ids(&self, owner: &str, group: &str) -> Result<(u32, u32)> {
        let passwd = self.read_string("/etc/passwd")?.unwrap_or_default();
        let groups = self.read_string("/etc/group")?.unwrap_or_default();
        let uid = lookup_user(&passwd, owner)
            .ok_or_else(|| Error::step(format!("user {owner:?} does not exist on this machine")))?;
        let gid = lookup_group(&groups, group)
            .ok_or_else(|| Error::step(format!("group {group:?} does not exist on this machine")))?;
        Ok((uid, gid))
    }

    fn set_owner(&self, path: &Path, owner: &str, group: &str) -> Result<()> {
        if !self.chown {
            return Ok(());
        }
        let (uid, gid) = self.ids(owner, group)?;
        chown(path, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| Error::step(format!("chown {owner}:{group} {}: {e}", path.display())))
    }

    fn create_parents(&self, path: &Path) -> Result<()> {
        match path.parent() {
            Some(parent) if !parent.exists() => {
                fs::create_dir_all(parent).map_err(|e| io_error(format!("creating {}", parent.display()), e))
            }
            _ => Ok(()),
        }
    }

    fn execute(&self, cmd: &Cmd) -> Result<Output> {
        debug!(cmd = %cmd, "running");
        let mut command = Command::new(&cmd.program);
        command
            .args(cmd.args_exposed())
            .env("LC_ALL", "C")
            .stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &cmd.env {
            command.env(k, v);
        }
        if let Some(dir) = &cmd.cwd {
            let dir = self.root.resolve(dir, true)?;
            if !dir.is_dir() {
                return Err(Error::step(format!(
                    "{}: working directory {} does not exist",
                    cmd.program,
                    dir.display()
                )));
            }
            command.current_dir(dir);
        }
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == IoKind::NotFound => {
                return Ok(Output::fail(127, format!("{}: command not found", cmd.program)))
            }
            Err(e) => return Err(io_error(format!("starting {}", cmd.program), e)),
        };
        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), cmd.stdin_bytes()) {
            let bytes = bytes.to_vec();
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let started = Instant::now();
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if started.elapsed() >= cmd.timeout => {
                    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                    let _ = child.wait();
                    // A slow machine or service, not a wrong one: exit 3, and the boot unit runs
                    // hainit again (a re-run resumes where this one stopped).
                    return Err(Error::timeout(format!(
                        "`{}` did not finish within its time limit of {} and was killed",
                        cmd.head(),
                        limit(cmd.timeout)
                    )));
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(io_error(format!("waiting for {}", cmd.program), e)),
            }
        };
        Ok(Output { code, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() })
    }
}

/// `600 s`, or `0.2 s` below a second.
fn limit(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs())
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn not_found_is_none<T>(r: std::io::Result<T>, what: &Path) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(io_error(what.display(), e)),
    }
}

impl Probe for HostSystem {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = self.root.resolve(path, true)?;
        not_found_is_none(fs::read(&p), &p)
    }

    fn meta(&self, path: &str) -> Result<Option<FileMeta>> {
        let p = self.root.resolve(path, false)?;
        Ok(not_found_is_none(fs::symlink_metadata(&p), &p)?.map(|m| {
            let t = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            let kind = if t.is_file() {
                FileKind::File
            } else if t.is_dir() {
                FileKind::Dir
            } else if t.is_symlink() {
                FileKind::Symlink
            } else if t.is_block_device() {
                FileKind::BlockDevice
            } else {
                FileKind::Other
            };
            FileMeta { kind, mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), len: m.len() }
        }))
    }

    fn list(&self, path: &str) -> Result<Vec<String>> {
        let p = self.root.resolve(path, true)?;
        let Some(entries) = not_found_is_none(fs::read_dir(&p), &p)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        Ok(names)
    }

    fn query(&self, cmd: &Cmd) -> Result<Output> {
        self.execute(cmd)
    }

    fn tcp_open(&self, ip: IpAddr, port: u16, timeout: Duration) -> bool {
        TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout).is_ok()
    }

    fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        let p = self.root.resolve(path, false)?;
        not_found_is_none(fs::symlink_metadata(&p), &p)?
            .map(|m| m.modified().map_err(|e| io_error(p.display(), e)))
            .transpose()
    }

    fn http_get(&self, url: &str, timeout: Duration) -> Result<HttpReply> {
        http::get(url, timeout)
    }

    fn hostname(&self) -> Result<String> {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .map_err(|e| Error::step(format!("gethostname: {e}")))
    }
}

impl Executor for HostSystem {
    fn write_file(&self, spec: &FileSpec) -> Result<()> {
        let target = self.root.resolve(&spec.path, false)?;
        self.create_parents(&target)?;
        let dir = target.parent().unwrap_or(Path::new("/"));
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.hainit-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io_error(format!("creating {}", tmp.display()), e))?;
            f.write_all(spec.content.bytes()).map_err(|e| io_error(format!("writing {}", tmp.display()), e))?;
            self.set_owner(&tmp, &spec.owner, &spec.group)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(spec.mode))
                .map_err(|e| io_error(format!("chmod {}", tmp.display()), e))?;
            f.sync_all().map_err(|e| io_error(format!("fsync {}", tmp.display()), e))?;
            fs::rename(&tmp, &target).map_err(|e| io_error(format!("renaming onto {}", target.display()), e))?;
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn ensure_dir(&self, path: &str, mode: u32, owner: &str, group: &str) -> Result<()> {
        let p = self.root.resolve(path, true)?;
        fs::create_dir_all(&p).map_err(|e| io_error(format!("creating {}", p.display()), e))?;
        self.set_owner(&p, owner, group)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(format!("chmod {}", p.display()), e))
    }

    fn run(&self, cmd: &Cmd) -> Result<Output> {
        self.execute(cmd)
    }

    fn unpack(&self, spec: &UnpackSpec) -> Result<()> {
        archive::unpack(&self.root, spec)
    }

    fn download(&self, spec: &DownloadSpec) -> Result<()> {
        let bytes = http::fetch_verified(spec)?;
        self.write_file(&FileSpec::new(&spec.path, bytes, 0o644))
    }

    fn fix_tree(&self, spec: &TreeSpec) -> Result<()> {
        let passwd = self.read_string("/etc/passwd")?.unwrap_or_default();
        let groups = self.read_string("/etc/group")?.unwrap_or_default();
        let fixed = tree::fix(&self.root, spec, &passwd, &groups)?;
        debug!(path = %spec.path, fixed, "tree ownership and modes");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_with_mode_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let sys = HostSystem::without_chown(Root::new(dir.path()));
        let spec = FileSpec::new("/etc/hainit/x.conf", "hello\n", 0o640);
        sys.write_file(&spec).unwrap();
        let on_disk = dir.path().join("etc/hainit/x.conf");
        assert_eq!(fs::read_to_string(&on_disk).unwrap(), "hello\n");
        assert_eq!(sys.meta("/etc/hainit/x.conf").unwrap().unwrap().mode, 0o640);
        assert_eq!(sys.read("/etc/hainit/x.conf").unwrap().unwrap(), b"hello\n");
        assert_eq!(sys.list("/etc/hainit").unwrap(), vec!["x.conf"], "no temp file left behind");
        assert_eq!(sys.read("/nope").unwrap(), None);
    }

    #[test]
    fn commands_capture_output_take_stdin_and_time_out() {
        let sys = HostSystem::new(Root::host());
        let out = sys.run(&Cmd::new("cat").stdin("from stdin")).unwrap();
        assert_eq!((out.code, out.stdout.as_str()), (Some(0), "from stdin"));
        let out = sys.run(&Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap();
        assert_eq!((out.code, out.stderr.trim()), (Some(3), "oops"));
        let out = sys.run(&Cmd::new("/nonexistent/tool")).unwrap();
        assert_eq!(out.code, Some(127));
    }

    #[test]
    fn a_command_past_its_time_limit_is_killed_and_a_timeout() {
        let sys = HostSystem::new(Root::host());
        let started = Instant::now();
        let e = sys.run(&Cmd::new("sleep").arg("30").timeout(Duration::from_millis(200))).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(e.kind, crate::error::ErrorKind::Timeout, "{e}");
        assert_eq!(e.kind.exit_code(), 3);
        assert_eq!(e.to_string(), "`sleep 30` did not finish within its time limit of 0.2 s and was killed");
        let e = sys.query(&Cmd::new("sleep").arg("30").timeout(Duration::from_secs(1))).unwrap_err();
        assert!(e.to_string().contains("time limit of 1 s"), "{e}");
    }
}

//! The root prefix (`--root`): every target path is resolved below it, and symlinks inside the
//! root are followed as if the root were `/`, so nothing can redirect a read or write outside.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MAX_LINK_HOPS: u32 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    prefix: PathBuf,
}

impl Root {
    pub fn host() -> Self {
        Root { prefix: PathBuf::from("/") }
    }

    pub fn new(prefix: impl Into<PathBuf>) -> Self {
        Root { prefix: prefix.into() }
    }

    pub fn is_host(&self) -> bool {
        self.prefix == Path::new("/")
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Host path of `path`. With `follow_last` a symlink in the last component is followed too
    /// (for reads); without it the link itself is addressed (for lstat, replace).
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<PathBuf> {
        if !path.starts_with('/') {
            return Err(Error::input(format!("path {path:?} is not absolute")));
        }
        let mut pending: VecDeque<String> = components(path);
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = self.join(&resolved).join(&part);
            let is_last = pending.is_empty();
            let link = match std::fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => std::fs::read_link(&candidate).ok(),
                _ => None,
            };
            match link {
                Some(target) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(Error::step(format!("too many symlinks resolving {path}")));
                    }
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    let mut next = components(&target);
                    next.extend(pending);
                    pending = next;
                }
                None => resolved.push(part),
            }
        }
        Ok(self.join(&resolved))
    }

    fn join(&self, parts: &[String]) -> PathBuf {
        parts.iter().fold(self.prefix.clone(), |p, c| p.join(c))
    }
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn joins_below_the_prefix_and_clamps_dotdot() {
        let r = Root::new("/tmp/r");
        assert_eq!(r.resolve("/etc/x.conf", true).unwrap(), PathBuf::from("/tmp/r/etc/x.conf"));
        assert_eq!(r.resolve("/../../etc/shadow", true).unwrap(), PathBuf::from("/tmp/r/etc/shadow"));
        assert!(r.resolve("etc/x", true).is_err());
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("real")).unwrap();
        symlink("/real", dir.path().join("etc")).unwrap(); // absolute: re-rooted
        symlink("../../../../outside", dir.path().join("real/up")).unwrap(); // relative: clamped
        assert_eq!(root.resolve("/etc/passwd", true).unwrap(), dir.path().join("real/passwd"));
        assert_eq!(root.resolve("/real/up/file", true).unwrap(), dir.path().join("outside/file"));
        // Not following the last component addresses the link itself.
        assert_eq!(root.resolve("/etc", false).unwrap(), dir.path().join("etc"));
    }

    #[test]
    fn link_loops_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/b", dir.path().join("a")).unwrap();
        symlink("/a", dir.path().join("b")).unwrap();
        assert!(Root::new(dir.path()).resolve("/a/x", true).is_err());
    }
}

//! Ownership and modes of a whole directory tree, checked and fixed in one pass each.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use nix::unistd::{fchownat, Gid, Uid};

use super::{lookup_group, lookup_user, FileKind, Probe, Root};
use crate::error::{io_error, Error, Result};

/// Everything below `path` (and `path` itself) owned by `owner:group`, directories `dir_mode`,
/// files `file_mode`; symlinks get the owner only (their mode means nothing). Paths in `except`
/// (absolute, e.g. a secrets file with its own mode) and everything below them are left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub dir_mode: u32,
    pub file_mode: u32,
    pub except: Vec<String>,
}

impl TreeSpec {
    fn wanted_mode(&self, kind: FileKind) -> Option<u32> {
        match kind {
            FileKind::Dir => Some(self.dir_mode),
            FileKind::Symlink => None,
            _ => Some(self.file_mode),
        }
    }
}

/// How many entries differ from `spec` (0 = converged); `None` when the tree does not exist.
/// One `list` per directory and one `meta` per entry.
pub fn count_differences(probe: &dyn Probe, spec: &TreeSpec) -> Result<Option<usize>> {
    let passwd = probe.read_string("/etc/passwd")?.unwrap_or_default();
    let groups = probe.read_string("/etc/group")?.unwrap_or_default();
    let (uid, gid) = (lookup_user(&passwd, &spec.owner), lookup_group(&groups, &spec.group));
    let Some(top) = probe.meta(&spec.path)? else {
        return Ok(None);
    };
    let mut pending = vec![(spec.path.trim_end_matches('/').to_string(), top)];
    let mut differ = 0;
    while let Some((path, meta)) = pending.pop() {
        if spec.except.contains(&path) {
            continue;
        }
        let mode_ok = spec.wanted_mode(meta.kind).is_none_or(|m| m == meta.mode);
        if Some(meta.uid) != uid || Some(meta.gid) != gid || !mode_ok {
            differ += 1;
        }
        if meta.kind == FileKind::Dir {
            for name in probe.list(&path)? {
                let child = format!("{path}/{name}");
                if let Some(m) = probe.meta(&child)? {
                    pending.push((child, m));
                }
            }
        }
    }
    Ok(Some(differ))
}

/// Fix the tree on the real machine: `lchown`/`chmod` only where they differ, never following
/// symlinks (a link in the tree cannot redirect a chown outside it).
pub fn fix(root: &Root, spec: &TreeSpec, passwd: &str, groups: &str) -> Result<usize> {
    let uid = lookup_user(passwd, &spec.owner)
        .ok_or_else(|| Error::step(format!("user {:?} does not exist on this machine", spec.owner)))?;
    let gid = lookup_group(groups, &spec.group)
        .ok_or_else(|| Error::step(format!("group {:?} does not exist on this machine", spec.group)))?;
    // Resolved like the walk's own paths (directories followed), so the two compare equal.
    let except: Vec<PathBuf> = spec.except.iter().map(|e| root.resolve(e, true)).collect::<Result<_>>()?;
    let mut pending = vec![root.resolve(&spec.path, true)?];
    let mut fixed = 0;
    while let Some(path) = pending.pop() {
        if except.contains(&path) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| io_error(path.display(), e))?;
        let kind = if meta.is_dir() {
            FileKind::Dir
        } else if meta.file_type().is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::File
        };
        let mut changed = false;
        if meta.uid() != uid || meta.gid() != gid {
            fchownat(
                nix::fcntl::AT_FDCWD,
                &path,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::step(format!("chown {}:{} {}: {e}", spec.owner, spec.group, path.display())))?;
            changed = true;
        }
        if let Some(mode) = spec.wanted_mode(kind).filter(|m| *m != meta.mode() & 0o7777) {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| io_error(format!("chmod {mode:04o} {}", path.display()), e))?;
            changed = true;
        }
        fixed += usize::from(changed);
        if kind == FileKind::Dir {
            for entry in fs::read_dir(&path).map_err(|e| io_error(path.display(), e))? {
                pending.push(entry.map_err(|e| io_error(path.display(), e))?.path());
            }
        }
    }
    Ok(fixed)
}

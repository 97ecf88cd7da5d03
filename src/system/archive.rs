//! Release tarballs (gzip, one top directory, like WordPress's) read and unpacked safely.
//!
//! Every entry is judged before it is written: absolute paths, `..`, entries outside the top
//! directory or through a symlink, symlinks that leave the tree (also through other symlinks),
//! hard links to anything but an earlier file of the tree, devices and fifos are refused. The
//! same rules serve the read-only comparison in a step's check and the extraction, which writes
//! only into a staging directory next to the destination and swaps it in (see [`unpack`]).

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use tar::EntryType;

use super::Root;
use crate::error::{io_error, Error, Result};
use crate::secrets::hex;

/// Limits against archives built to fill the disk.
const MAX_ENTRIES: usize = 200_000;
const MAX_TOTAL_BYTES: u64 = 2 << 30;
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// Unpack `archive` (verified against `sha256`) so that `dest` holds the content of its `top`
/// directory; `keep` names paths (relative to `dest`) carried over from the current tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackSpec {
    pub archive: String,
    pub sha256: String,
    pub top: String,
    pub dest: String,
    pub keep: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// Target as written in the archive (relative, checked to stay inside the tree).
    Symlink(String),
    /// Path (relative to the top directory) of an earlier regular file.
    HardLink(String),
}

/// One accepted entry; `path` is relative to the top directory ("" is the top itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Walk every entry of a gzip'd tar, refusing unsafe ones; `visit` gets the accepted entries
/// with their data. A refusal names the entry and the reason.
pub fn read_entries(gz: &[u8], top: &str, mut visit: impl FnMut(&Entry, &mut dyn Read) -> Result<()>) -> Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(gz));
    let mut rules = Rules::default();
    let entries = archive.entries().map_err(|e| Error::step(format!("reading the tar stream: {e}")))?;
    for (n, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| Error::step(format!("reading the tar stream: {e}")))?;
        if n >= MAX_ENTRIES {
            return Err(Error::step(format!("more than {MAX_ENTRIES} entries: refused")));
        }
        let header = entry.header();
        let kind = header.entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue; // pax global metadata (e.g. git archive's comment), not a file
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        let size = header.size().unwrap_or(0);
        let accepted = rules.judge(&raw, kind, link.as_deref(), size, top)?;
        if let Some(accepted) = accepted {
            visit(&accepted, &mut entry)?;
        }
    }
    rules.finish()
}

/// The refusal rules, kept apart from any I/O so that check and extraction apply the same ones.
#[derive(Default)]
struct Rules {
    seen: HashSet<String>,
    files: HashSet<String>,
    symlinks: BTreeMap<String, String>,
    total: u64,
}

impl Rules {
    fn judge(&mut self, raw: &str, kind: EntryType, link: Option<&str>, size: u64, top: &str) -> Result<Option<Entry>> {
        let refuse = |why: String| Err(Error::step(format!("archive entry {raw:?}: {why}")));
        let Some(path) = inside_top(raw, top).map_err(|why| Error::step(format!("archive entry {raw:?}: {why}")))?
        else {
            return match kind {
                EntryType::Directory => Ok(None),
                _ => refuse(format!("the top directory {top}/ must be a directory")),
            };
        };
        if let Some(link) = self.symlinks.keys().find(|l| path.starts_with(&format!("{l}/"))) {
            return refuse(format!("goes through the symlink {link}"));
        }
        if !self.seen.insert(path.clone()) && kind != EntryType::Directory {
            return refuse("appears twice".into());
        }
        let kind = match kind {
            EntryType::Directory => EntryKind::Dir,
            EntryType::Regular | EntryType::Continuous => {
                self.total += size;
                if self.total > MAX_TOTAL_BYTES {
                    return refuse(format!("the archive unpacks to more than {MAX_TOTAL_BYTES} bytes"));
                }
                self.files.insert(path.clone());
                EntryKind::File
            }
            EntryType::Symlink => {
                let target = link.unwrap_or_default();
                if symlink_escapes(&path, target) {
                    return refuse(format!("symlink to {target:?} points outside the tree"));
                }
                self.symlinks.insert(path.clone(), target.to_string());
                EntryKind::Symlink(target.to_string())
            }
            EntryType::Link => {
                let target = link.unwrap_or_default();
                match inside_top(target, top) {
                    Ok(Some(t)) if self.files.contains(&t) => EntryKind::HardLink(t),
                    _ => return refuse(format!("hard link to {target:?}, which is not a file of the tree")),
                }
            }
            EntryType::Char | EntryType::Block => return refuse("device file".into()),
            EntryType::Fifo => return refuse("fifo".into()),
            other => return refuse(format!("unsupported entry type {other:?}")),
        };
        Ok(Some(Entry { path, kind, size }))
    }

    /// A symlink whose target passes through another symlink could leave the tree even though
    /// each looks fine on its own (`d/b -> ..`, `e -> d/b/..`): refuse such chains.
    fn finish(&self) -> Result<()> {
        for (path, target) in &self.symlinks {
            let mut at: Vec<&str> = path.split('/').collect();
            at.pop();
            let parts: Vec<&str> = target.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            for (i, part) in parts.iter().enumerate() {
                if *part == ".." {
                    at.pop();
                } else {
                    at.push(part);
                }
                let last = i + 1 == parts.len();
                if !last && self.symlinks.contains_key(&at.join("/")) {
                    return Err(Error::step(format!(
                        "archive entry {path:?}: symlink to {target:?} goes through the symlink {}",
                        at.join("/")
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The path below `top/`, `None` for `top` itself, or why it is refused.
fn inside_top(raw: &str, top: &str) -> std::result::Result<Option<String>, String> {
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    let parts: Vec<&str> = raw.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return Err("path traversal (..)".into());
    }
    match parts.split_first() {
        Some((first, rest)) if *first == top => Ok((!rest.is_empty()).then(|| rest.join("/"))),
        _ => Err(format!("outside the top directory {top}/")),
    }
}

/// Lexically resolve `target` from the symlink's directory; true when it leaves the tree.
fn symlink_escapes(path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') {
        return true;
    }
    let mut depth = path.split('/').count() - 1;
    for part in target.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if part == ".." {
            if depth == 0 {
                return true;
            }
            depth -= 1;
        } else {
            depth += 1;
        }
    }
    false
}

/// Read a whole archive (bounded), so that what is verified is what gets unpacked.
pub fn read_archive(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(|e| io_error(format!("opening {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_ARCHIVE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
        return Err(Error::step(format!("{} is larger than {MAX_ARCHIVE_BYTES} bytes", path.display())));
    }
    Ok(bytes)
}

/// Unpack on the real machine (below `root`): verify, extract into `.<name>.hainit-new` beside
/// the destination, move the kept paths into it, then swap with two renames; the replaced tree
/// becomes `.<name>.hainit-previous`. A run killed at any point is finished or rolled back by the
/// next call (see `recover`); kept paths always live in exactly one place, so they are never lost.
pub fn unpack(root: &Root, spec: &UnpackSpec) -> Result<()> {
    let archive = root.resolve(&spec.archive, true)?;
    let bytes = read_archive(&archive)?;
    let got = sha256_hex(&bytes);
    if !got.eq_ignore_ascii_case(&spec.sha256) {
        return Err(Error::step(format!("{}: sha256 is {got}, expected {}", spec.archive, spec.sha256)));
    }
    let dest = root.resolve(&spec.dest, true)?;
    let (staging, old) = side_paths(&dest)?;
    recover(&dest, &staging, &old, &spec.keep)?;

    fs::create_dir(&staging).map_err(|e| io_error(format!("creating {}", staging.display()), e))?;
    if let Err(e) = extract(&bytes, &spec.top, &staging) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e.context(&spec.archive));
    }
    for keep in &spec.keep {
        let current = dest.join(keep);
        if exists(&current) {
            let fresh = staging.join(keep);
            remove_any(&fresh)?;
            rename(&current, &fresh)?;
        }
    }
    if exists(&dest) {
        rename(&dest, &old)?;
        rename(&staging, &dest)?;
        // The replaced tree (without the kept paths) stays beside it until the next upgrade, so
        // files someone added at its top (robots.txt, verification files …) are not lost.
        let previous = dest.with_file_name(format!(".{}.hainit-previous", file_name(&dest)));
        remove_any(&previous)?;
        rename(&old, &previous)?;
    } else {
        rename(&staging, &dest)?;
    }
    if let Some(parent) = dest.parent().and_then(|p| fs::File::open(p).ok()) {
        let _ = parent.sync_all();
    }
    Ok(())
}

/// `.<name>.hainit-new` and `.<name>.hainit-old` beside `dest`.
fn side_paths(dest: &Path) -> Result<(PathBuf, PathBuf)> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(Error::input(format!("{} cannot be a destination tree", dest.display())));
    };
    let name = name.to_string_lossy();
    fs::create_dir_all(parent).map_err(|e| io_error(format!("creating {}", parent.display()), e))?;
    Ok((parent.join(format!(".{name}.hainit-new")), parent.join(format!(".{name}.hainit-old"))))
}

/// Finish or undo what a killed run left: an `old` tree without a live one is put back; kept
/// paths found only in staging go back into the live tree; then the leftovers go.
fn recover(dest: &Path, staging: &Path, old: &Path, keep: &[String]) -> Result<()> {
    if exists(old) {
        if exists(dest) {
            remove_any(old)?;
        } else {
            rename(old, dest)?;
        }
    }
    if exists(staging) {
        if dest.is_dir() {
            for k in keep {
                let (moved, home) = (staging.join(k), dest.join(k));
                if exists(&moved) && !exists(&home) {
                    rename(&moved, &home)?;
                }
            }
        }
        remove_any(staging)?;
    }
    Ok(())
}

fn extract(bytes: &[u8], top: &str, staging: &Path) -> Result<()> {
    read_entries(bytes, top, |entry, data| {
        let path = staging.join(&entry.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(format!("creating {}", parent.display()), e))?;
        }
        match &entry.kind {
            EntryKind::Dir => {
                if !path.is_dir() {
                    fs::create_dir(&path).map_err(|e| io_error(format!("creating {}", path.display()), e))?;
                }
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| io_error(format!("chmod {}", path.display()), e))
            }
            EntryKind::File => write_new(&path, data),
            EntryKind::Symlink(target) => std::os::unix::fs::symlink(target, &path)
                .map_err(|e| io_error(format!("creating the symlink {}", path.display()), e)),
            EntryKind::HardLink(target) => fs::hard_link(staging.join(target), &path)
                .map_err(|e| io_error(format!("creating the hard link {}", path.display()), e)),
        }
    })
}

/// A new file (never through an existing name or symlink), mode 0644.
fn write_new(path: &Path, data: &mut dyn Read) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| io_error(format!("creating {}", path.display()), e))?;
    io::copy(data, &mut f).map_err(|e| io_error(format!("writing {}", path.display()), e))?;
    f.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| io_error(format!("chmod {}", path.display()), e))?;
    f.flush().map_err(|e| io_error(format!("writing {}", path.display()), e))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| io_error(format!("renaming {} to {}", from.display(), to.display()), e))
}

/// Remove a file, symlink or whole directory (never following symlinks); absent is fine.
fn remove_any(p: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    result.map_err(|e| io_error(format!("removing {}", p.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_below_the_top_directory() {
        assert_eq!(inside_top("wordpress/", "wordpress"), Ok(None));
        assert_eq!(inside_top("./wordpress/wp-admin/x.php", "wordpress"), Ok(Some("wp-admin/x.php".into())));
        assert_eq!(inside_top("/etc/passwd", "wordpress"), Err("absolute path".into()));
        assert_eq!(inside_top("wordpress/../../x", "wordpress"), Err("path traversal (..)".into()));
        assert!(inside_top("other/x", "wordpress").unwrap_err().contains("outside the top directory"));
    }

    #[test]
    fn symlinks_are_judged_from_their_directory() {
        assert!(!symlink_escapes("a/b/link", "../c"));
        assert!(!symlink_escapes("a/link", "../c"));
        assert!(symlink_escapes("link", "../c"));
        assert!(symlink_escapes("a/link", "../../c"));
        assert!(symlink_escapes("a/link", "/etc/passwd"));
        assert!(symlink_escapes("a/link", ""));
    }

    #[test]
    fn symlink_chains_that_leave_the_tree_are_refused() {
        let mut rules = Rules::default();
        rules.judge("wp/d/b", EntryType::Symlink, Some(".."), 0, "wp").unwrap();
        rules.judge("wp/e", EntryType::Symlink, Some("d/b/.."), 0, "wp").unwrap();
        let e = rules.finish().unwrap_err();
        assert!(e.to_string().contains("goes through the symlink d/b"), "{e}");
        let e = rules.judge("wp/d/b/x.php", EntryType::Regular, None, 1, "wp").unwrap_err();
        assert!(e.to_string().contains("goes through the symlink d/b"), "{e}");
    }
}

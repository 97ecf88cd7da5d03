//! web.wordpress.tree: the WordPress code from a tarball pinned by sha256 (baked into the image,
//! else downloaded), unpacked safely and swapped in whole.
//!
//! How a re-run knows the tree came from this tarball, without a marker file: the tarball is the
//! truth. The check verifies the tarball's sha256, then walks its entries and compares each with
//! the tree (directories exist; files have the same size and bytes). wp-content (themes, plugins,
//! uploads: the site's own data) and wp-config.php are not compared and survive an upgrade; files
//! the tree has beyond the tarball's are tolerated. One pass over ~3,000 small files.

use crate::engine::{Context, Step};
use crate::error::{Error, Result};
use crate::plan::Action;
use crate::system::archive::{read_entries, sha256_hex, EntryKind};
use crate::system::{DownloadSpec, FileKind, Probe, UnpackSpec};

/// The single top directory of a WordPress release tarball.
pub const TOP: &str = "wordpress";
/// Paths of the live tree that are carried over when a new tarball is unpacked.
pub const KEEP: [&str; 2] = ["wp-content", "wp-config.php"];

fn is_kept(path: &str) -> bool {
    KEEP.iter().any(|k| path == *k || path.strip_prefix(k).is_some_and(|rest| rest.starts_with('/')))
}

/// True when every entry of the archive (outside the kept paths) is in `dest` as it is in the
/// archive. Unsafe entries are refused here already, so `plan` reports a bad tarball.
pub fn tree_matches(probe: &dyn Probe, archive: &[u8], dest: &str) -> Result<bool> {
    let dest = dest.trim_end_matches('/');
    let mut same = probe.meta(dest)?.is_some_and(|m| m.kind == FileKind::Dir);
    read_entries(archive, TOP, |entry, data| {
        if !same || is_kept(&entry.path) {
            return Ok(()); // keep reading: every entry must still pass the safety rules
        }
        let path = format!("{dest}/{}", entry.path);
        let meta = probe.meta(&path)?;
        same = match &entry.kind {
            EntryKind::Dir => meta.is_some_and(|m| m.kind == FileKind::Dir),
            EntryKind::Symlink(_) => meta.is_some_and(|m| m.kind == FileKind::Symlink),
            // A hard link carries no data: it matches when it holds what its target holds.
            EntryKind::HardLink(target) => {
                meta.is_some_and(|m| m.kind == FileKind::File)
                    && probe.read(&path)? == probe.read(&format!("{dest}/{target}"))?
            }
            EntryKind::File => {
                if meta.is_some_and(|m| m.kind == FileKind::File && m.len == entry.size) {
                    let mut want = Vec::new();
                    data.read_to_end(&mut want).map_err(|e| Error::step(format!("reading {}: {e}", entry.path)))?;
                    probe.read(&path)?.as_deref() == Some(&want[..])
                } else {
                    false
                }
            }
        };
        Ok(())
    })?;
    Ok(same)
}

pub struct TreeStep;

impl Step for TreeStep {
    fn id(&self) -> &'static str {
        "web.wordpress.tree"
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let web = &cx.config.web;
        let sha = web.pinned_sha256()?;
        let tarball = &web.wordpress_tarball;
        if probe.meta(&web.docroot)?.is_some_and(|m| m.kind == FileKind::Symlink) {
            return Err(Error::input(format!(
                "web.docroot {} is a symlink: set web.docroot to the directory itself",
                web.docroot
            )));
        }
        let unpack = Action::Unpack(UnpackSpec {
            archive: tarball.clone(),
            sha256: sha.clone(),
            top: TOP.into(),
            dest: web.docroot.trim_end_matches('/').to_string(),
            keep: KEEP.iter().map(|k| k.to_string()).collect(),
        });
        let mismatch = match probe.read(tarball)? {
            Some(bytes) => {
                let got = sha256_hex(&bytes);
                if got == sha {
                    let matches = tree_matches(probe, &bytes, &web.docroot).map_err(|e| e.context(tarball))?;
                    return Ok(if matches { Vec::new() } else { vec![unpack] });
                }
                Some(got)
            }
            None => None,
        };
        match (&web.wordpress_url, mismatch) {
            (Some(url), _) => Ok(vec![
                Action::Download(DownloadSpec { url: url.clone(), sha256: sha, path: tarball.clone() }),
                unpack,
            ]),
            (None, Some(got)) => Err(Error::input(format!(
                "{tarball}: sha256 is {got}, but web.wordpress_sha256 pins {sha}; refusing to install it"
            ))),
            (None, None) => Err(Error::input(format!(
                "{tarball} does not exist and web.wordpress_url is not set: nowhere to get WordPress from"
            ))),
        }
    }
}

//! web.share.uploads: wp-content/uploads on storage every web node mounts, so a file uploaded
//! through one node is served by all of them (docs/web-role.md).
//!
//! The share is tag `hainit-share` (else config `web.share`): an NFS 4.1 export `host:/path` (on
//! Azure a premium Azure Files NFS share, reached only from the web subnet), or `local` for a
//! single web node whose uploads stay on its own disk. A web node without either is bad input.
//!
//! The export is mounted right on `<docroot>/wp-content/uploads` by a systemd mount unit (boot)
//! and `systemctl start` (now). While it is not mounted, the directory underneath is root's, empty
//! and not writable by PHP: an upload then fails instead of landing on this node's disk and
//! forking the site, and /healthz answers 503 (healthz.rs), so the load balancer takes the node
//! out. That is why the unit may say `nofail`: a missing share must not hold up the boot (hainit
//! and sshd still start and can report), and it cannot fork the site.
//!
//! The mount point sits inside wp-content, which the tree step carries over whole (one rename)
//! when it unpacks a new WordPress; nothing that step deletes ever contains wp-content.

use std::time::Duration;

use crate::engine::{check_files, Context, Step};
use crate::error::{Error, Result};
use crate::inventory::{Inventory, TAG_SHARE};
use crate::plan::Action;
use crate::platform::Platform;
use crate::roles::units;
use crate::system::mounts::mounted_on;
use crate::system::{lookup_group, lookup_user, Cmd, FileKind, FileSpec, Probe};

/// Below the docroot: the only part of the WordPress tree PHP writes to.
pub const UPLOADS: &str = "wp-content/uploads";
const UNIT_DIR: &str = "/etc/systemd/system";
/// Where SELinux wants uploads: readable and writable by nginx and php-fpm (reference §6.6).
pub const RW_CONTEXT: &str = "system_u:object_r:httpd_sys_rw_content_t:s0";
/// How long `systemctl start` of the mount may take (mount.nfs retries for two minutes).
const START_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Share {
    /// An NFS 4.1 export: `host` (a DNS name or IPv4 address) and the exported `path`.
    Nfs { host: String, path: String },
    /// Uploads on this node's own disk: only for a single web node.
    Local,
}

impl Share {
    /// `host:/path` or `local`; anything else names the value and what was expected.
    pub fn parse(text: &str) -> Result<Share> {
        let text = text.trim();
        if text == "local" {
            return Ok(Share::Local);
        }
        let bad = |why: &str| {
            Error::input(format!(
                "tag {TAG_SHARE} (or web.share) {text:?}: {why}; expected host:/path of an NFS 4.1 export, or local"
            ))
        };
        let (host, path) = text.split_once(':').ok_or_else(|| bad("no ':' between host and path"))?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !host_ok {
            return Err(bad("the host is not a DNS name or an IPv4 address"));
        }
        let path_ok = path.starts_with('/')
            && (path == "/" || !path[1..].split('/').any(|c| c.is_empty() || c == ".."))
            && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        if !path_ok {
            return Err(bad("the path must be absolute, of letters, digits and /._-, without .. or //"));
        }
        Ok(Share::Nfs { host: host.to_string(), path: path.to_string() })
    }

    /// What mount(8) and mountinfo call the export: `host:/path`.
    pub fn source(&self) -> Option<String> {
        match self {
            Share::Nfs { host, path } => Some(format!("{host}:{path}")),
            Share::Local => None,
        }
    }
}

/// This node's share, required for the web role (exit 2 without it).
pub fn share(cx: &Context) -> Result<Share> {
    share_of(cx.inv)
}

pub fn share_of(inv: &Inventory) -> Result<Share> {
    let text = inv.share.as_deref().ok_or_else(|| {
        Error::input(format!(
            "tag {TAG_SHARE} is missing (and web.share is not in the config): every web node must mount the same \
             uploads (host:/path of an NFS 4.1 export); set web.share: local for a single web node"
        ))
    })?;
    Share::parse(text)
}

pub fn uploads(cx: &Context) -> String {
    uploads_in(&cx.config.web.docroot)
}

pub fn uploads_in(docroot: &str) -> String {
    format!("{}/{UPLOADS}", docroot.trim_end_matches('/'))
}

/// systemd's unit name for a mount point (`systemd-escape --path --suffix=mount`).
pub fn unit_name(mount_point: &str) -> String {
    let trimmed = mount_point.trim_matches('/');
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out + ".mount"
}

pub fn unit_path(cx: &Context) -> String {
    format!("{UNIT_DIR}/{}", unit_name(&uploads(cx)))
}

/// NFS 4.1 as Azure Files wants it (sec=sys, hard); lookupcache=positive: a file another node just
/// wrote is found at once, not after a cached "no such file" expires. Where SELinux is on, the
/// whole mount carries the uploads' label (no httpd_use_nfs needed).
pub fn options(platform: &Platform) -> String {
    let mut o = "vers=4.1,sec=sys,hard,lookupcache=positive,_netdev,nofail".to_string();
    if platform.selinux {
        o.push_str(",context=");
        o.push_str(RW_CONTEXT);
    }
    o
}

pub fn render_unit(platform: &Platform, source: &str, mount_point: &str) -> String {
    format!(
        "# Generated by hainit — re-run hainit instead of editing\n\
         [Unit]\n\
         Description=hainit: WordPress uploads shared by every web node ({source})\n\
         Documentation=man:systemd.mount(5) man:nfs(5)\n\
         # No service depends on it: without the share this node answers /healthz with 503 and the\n\
         # load balancer takes it out (nofail: the boot goes on, and hainit and sshd can report).\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Mount]\n\
         What={source}\n\
         Where={mount_point}\n\
         Type=nfs4\n\
         Options={options}\n\
         TimeoutSec=180\n\
         \n\
         [Install]\n\
         WantedBy=remote-fs.target\n",
        options = options(platform),
    )
}

pub struct ShareStep;

impl ShareStep {
    /// The mount unit, for the files this step writes; none for a local share.
    fn unit(cx: &Context) -> Result<Option<FileSpec>> {
        Ok(share(cx)?
            .source()
            .map(|source| FileSpec::new(unit_path(cx), render_unit(cx.platform, &source, &uploads(cx)), 0o644)))
    }
}

impl Step for ShareStep {
    fn id(&self) -> &'static str {
        "web.share.uploads"
    }

    fn files(&self, cx: &Context) -> Result<Vec<FileSpec>> {
        Ok(Self::unit(cx)?.into_iter().collect())
    }

    fn check(&self, cx: &Context, probe: &dyn Probe) -> Result<Vec<Action>> {
        let web = &cx.platform.web;
        let uploads = uploads(cx);
        let writable = Action::dir(&uploads, 0o755, web.web_user, web.web_group);
        let Some(unit) = Self::unit(cx)? else {
            // Local: a directory of this node's disk, PHP's to write.
            return Ok(if dir_is(probe, &uploads, web.web_user, web.web_group)? { Vec::new() } else { vec![writable] });
        };
        let source = share(cx)?.source().unwrap_or_default();
        let unit_name = unit_name(&uploads);
        let mut actions = check_files(probe, vec![unit])?;
        let systemctl = |verb: &str| Cmd::new("systemctl").args([verb, unit_name.as_str()]);
        let reload = Action::run(Cmd::new("systemctl").arg("daemon-reload"), "load the mount unit");
        let unit_changed = !actions.is_empty();
        let mounted = mounted_on(probe, &uploads)?;
        match &mounted {
            Some(m) if m.source == source => {
                // A changed unit applies at the next mount; the live mount is not touched.
                if unit_changed {
                    actions.push(reload);
                }
            }
            Some(m) => {
                return Err(Error::step(format!(
                    "{uploads} is mounted from {} ({}), not from {source} (tag {TAG_SHARE}): unmount it and run hainit \
                     again",
                    m.source, m.fs_type
                )))
            }
            None => {
                // The mount point underneath: root's, empty, so PHP cannot write there unmounted.
                match probe.meta(&uploads)? {
                    None => actions.push(Action::dir(&uploads, 0o755, "root", "root")),
                    Some(m) if m.kind == FileKind::Dir => {
                        if !probe.list(&uploads)?.is_empty() {
                            return Err(Error::step(format!(
                                "{uploads} holds files on this node's own disk: mounting the share {source} over them \
                                 would hide them; copy them onto the share and empty the directory, then run hainit \
                                 again"
                            )));
                        }
                        if !dir_is(probe, &uploads, "root", "root")? {
                            actions.push(Action::dir(&uploads, 0o755, "root", "root"));
                        }
                    }
                    Some(m) => {
                        return Err(Error::step(format!("{uploads} is a {:?}, not a directory to mount on", m.kind)))
                    }
                }
                actions.push(reload);
            }
        }
        if !units::state(probe, &unit_name)?.is_enabled() {
            actions.push(Action::run(units::install("enable", &[&unit_name]), "mount the shared uploads at boot"));
        }
        if mounted.is_none() {
            // A share that does not answer yet (a new storage account's network rule, the lab's NFS
            // server starting) is worth waiting for: exit 3, and the boot unit runs hainit again.
            let start = systemctl("start").timeout(START_TIMEOUT).not_ready_exit(1);
            actions.push(Action::run(start, format!("mount {source} on {uploads}")));
            actions.push(writable);
        } else if !dir_is(probe, &uploads, web.web_user, web.web_group)? {
            actions.push(writable);
        }
        Ok(actions)
    }
}

/// `path` is a directory owned by `owner:group` with mode 0755.
fn dir_is(probe: &dyn Probe, path: &str, owner: &str, group: &str) -> Result<bool> {
    let passwd = probe.read_string("/etc/passwd")?.unwrap_or_default();
    let groups = probe.read_string("/etc/group")?.unwrap_or_default();
    Ok(probe.meta(path)?.is_some_and(|m| {
        m.kind == FileKind::Dir
            && m.mode == 0o755
            && Some(m.uid) == lookup_user(&passwd, owner)
            && Some(m.gid) == lookup_group(&groups, group)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exports_and_local() {
        assert_eq!(
            Share::parse("st1.file.core.windows.net:/st1/wpcontent").unwrap(),
            Share::Nfs { host: "st1.file.core.windows.net".into(), path: "/st1/wpcontent".into() }
        );
        assert_eq!(
            Share::parse(" 10.0.2.200:/hainit/uploads ").unwrap().source().unwrap(),
            "10.0.2.200:/hainit/uploads"
        );
        assert_eq!(Share::parse("local").unwrap(), Share::Local);
        for bad in [
            "",
            "host",
            "host:path",
            ":/x",
            "ho st:/x",
            "host:/a/../b",
            "host:/a b",
            "-h:/x",
            "h:/x,ro",
            "nfs://st/x",
            "h:/a/",
        ] {
            let e = Share::parse(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Input, "{bad}");
            assert!(
                e.to_string().contains("hainit-share") && e.to_string().contains(&format!("{:?}", bad.trim())),
                "{e}"
            );
        }
    }

    #[test]
    fn unit_names_are_systemd_escaped_paths() {
        assert_eq!(
            unit_name("/var/www/wordpress/wp-content/uploads"),
            "var-www-wordpress-wp\\x2dcontent-uploads.mount"
        );
        assert_eq!(unit_name("/srv/site/"), "srv-site.mount");
        assert_eq!(unit_name("/srv/.hidden/a b"), "srv-.hidden-a\\x20b.mount");
        assert_eq!(unit_name("/"), "-.mount");
    }
}

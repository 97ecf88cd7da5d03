//! The web role: renders judged by nginx and php, tarball safety, plans and convergence on the
//! fake system, and the real stack on loopback.

mod health;
mod render;
mod stack;
mod steps;
mod tarball;

use hainit::config::Config;
use hainit::engine::{Context, Options};
use hainit::imds::InstanceDoc;
use hainit::inventory::Inventory;
use hainit::platform::OsId;
use hainit::secrets::{Secrets, SharedSecret};

use crate::common::{instance_doc, SECRET};

/// A web node's inputs: its IMDS tags (VIP `vip`), the config YAML and the shared secret.
pub struct Node {
    pub inv: Inventory,
    pub config: Config,
    pub secrets: Secrets,
}

/// The share of the tests' web nodes: an Azure Files NFS export, as scripts/deploy-azure.sh tags it.
pub const SHARE: &str = crate::common::SHARE;

impl Node {
    pub fn new(os: OsId, host: &str, ip: &str, vip: &str, yaml: &str, secret: &str) -> Node {
        let tags =
            [("hainit-role", "web"), ("hainit-cluster", "wpcluster"), ("hainit-vip", vip), ("hainit-share", SHARE)];
        Node::with_tags(os, host, ip, &tags, yaml, secret)
    }

    pub fn with_tags(os: OsId, host: &str, ip: &str, tags: &[(&str, &str)], yaml: &str, secret: &str) -> Node {
        let doc = InstanceDoc::from_json(&instance_doc(host, ip, tags)).unwrap();
        let config = Config::from_yaml(yaml, "test.yaml").unwrap();
        let inv = Inventory::resolve(&doc, &config, &Default::default(), os).unwrap();
        Node { inv, config, secrets: SharedSecret::try_new(secret, "test").unwrap().into() }
    }

    /// web-1 (10.0.2.4) toward the VIP 10.0.1.10, with the standard test secret.
    pub fn standard(os: OsId, yaml: &str) -> Node {
        Node::new(os, "web-1", "10.0.2.4", crate::common::VIP, yaml, SECRET)
    }

    pub fn cx(&self) -> Context<'_> {
        Context {
            inv: &self.inv,
            platform: self.inv.platform.platform(),
            config: &self.config,
            secrets: &self.secrets,
            options: Options::default(),
        }
    }
}

/// Config YAML pinning `sha256` for the tarball at `tarball`, plus `extra` lines under `web:`.
pub fn web_yaml(tarball: &str, sha256: &str, extra: &str) -> String {
    format!("web:\n  wordpress_tarball: {tarball}\n  wordpress_sha256: {sha256}\n{extra}")
}

/// How a crafted tar entry looks; names and link targets are written raw, unchecked.
pub enum Raw<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Device(&'a str),
    Fifo(&'a str),
}

/// A gzip'd tar with exactly these headers (tar::Builder would refuse the hostile ones).
pub fn targz(entries: &[Raw]) -> Vec<u8> {
    use tar::{EntryType, Header};
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for e in entries {
        let (name, kind, link, data): (&str, EntryType, &str, &[u8]) = match e {
            Raw::Dir(n) => (n, EntryType::Directory, "", b""),
            Raw::File(n, d) => (n, EntryType::Regular, "", d),
            Raw::Symlink(n, t) => (n, EntryType::Symlink, t, b""),
            Raw::HardLink(n, t) => (n, EntryType::Link, t, b""),
            Raw::Device(n) => (n, EntryType::Char, "", b""),
            Raw::Fifo(n) => (n, EntryType::Fifo, "", b""),
        };
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A small, well-formed WordPress-like release: what the steps need to find.
pub fn mini_wordpress(version: &str) -> Vec<u8> {
    let version_php = format!("<?php\n$wp_version = '{version}';\n");
    targz(&[
        Raw::Dir("wordpress/"),
        Raw::File("wordpress/index.php", b"<?php\nrequire __DIR__ . '/wp-blog-header.php';\n"),
        Raw::File("wordpress/wp-load.php", b"<?php\n// loads wp-config.php\n"),
        Raw::Dir("wordpress/wp-includes/"),
        Raw::File("wordpress/wp-includes/version.php", version_php.as_bytes()),
        Raw::Dir("wordpress/wp-content/"),
        Raw::File("wordpress/wp-content/index.php", b"<?php\n// Silence is golden.\n"),
        Raw::Dir("wordpress/wp-content/themes/"),
        Raw::File("wordpress/wp-content/themes/index.php", b"<?php\n// Silence is golden.\n"),
    ])
}

pub fn sha256(bytes: &[u8]) -> String {
    hainit::system::archive::sha256_hex(bytes)
}

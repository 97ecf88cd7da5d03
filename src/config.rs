//! `/etc/hainit/hainit.yaml`: everything that is not a tag. Layering is
//! defaults < this file < IMDS tags < command-line flags; the merge happens in `inventory`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::inventory::Role;
use crate::secrets::{ScopedSecrets, Secrets, SharedSecret};

pub const DEFAULT_PATH: &str = "/etc/hainit/hainit.yaml";
/// Defaults shipped by the image (e.g. the baked WordPress tarball and its sha256); the admin's
/// file above and everything else override them.
pub const IMAGE_DEFAULTS_PATH: &str = "/usr/share/hainit/defaults.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The shared secret itself (≥ 32 bytes); or
    pub secret: Option<String>,
    /// a file holding it (read under `--root`). Db nodes need it; web nodes should get only
    /// `web_secrets` instead (docs/configuration.md "Secrets per tier").
    pub secret_file: Option<String>,
    /// Web nodes: the web tier's pre-derived secrets, purpose → value, as `hainit secrets --tier
    /// web` prints them; or
    pub web_secrets: Option<BTreeMap<String, String>>,
    /// a file holding that mapping (YAML or JSON, read under `--root`).
    pub web_secrets_file: Option<String>,
    /// Fallbacks for the tags (a tag wins over these).
    pub role: Option<Role>,
    pub cluster: Option<String>,
    pub peers: Option<String>,
    pub vip: Option<String>,
    pub imds: ImdsConfig,
    pub database: DatabaseConfig,
    pub db: DbConfig,
    pub web: WebConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImdsConfig {
    pub url: Option<String>,
    /// Total time for all IMDS attempts, seconds (default 60).
    pub deadline_secs: Option<u64>,
}

/// The WordPress database, shared by both roles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub name: String,
    pub user: String,
    pub port: u16,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { name: "wordpress".into(), user: "wordpress".into(), port: 3306 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Ext4,
    Xfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StonithMode {
    /// fence_azure_arm when the VM has a managed identity, otherwise disabled with a warning.
    Auto,
    /// Disabled on purpose (logged, and shown by `status`).
    Off,
    /// SBD: fencing through a small disk both nodes share (an Azure shared disk), `db.sbd_device`.
    Sbd,
}

/// How fast the db pair fails over, and what it risks for it (docs/failover.md; the values are
/// in roles/db/timing.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimingProfile {
    /// Microsoft's recommendation for Pacemaker on Azure: rides out a 30 s platform pause.
    Azure,
    /// A short token, with Azure's Scheduled Events (azure-events-az) draining a node before a
    /// planned pause: an unannounced pause longer than the token fences the paused node.
    Fast,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbConfig {
    /// Block device to use when Azure LUN 0 is absent.
    pub data_disk: Option<String>,
    pub fs_type: FsType,
    pub drbd_port: u16,
    pub drbd_minor: u32,
    /// Where the DRBD filesystem (the MariaDB datadir) is mounted.
    pub mount_point: String,
    /// Port of the ocf:heartbeat:azure-lb listener the internal LB probes.
    pub probe_port: u16,
    /// The failover timing profile: `azure` (default) or `fast`.
    pub timing_profile: TimingProfile,
    /// Corosync totem token, ms, instead of the profile's (consensus follows at 1.2 x).
    pub token_ms: Option<u32>,
    /// Multiplies every Pacemaker operation timeout of the stack (1–10): for slow or overloaded
    /// hosts, where a 20 s monitor that times out restarts the whole database.
    pub op_timeout_scale: u32,
    /// Hosts allowed to log in as the WordPress user (MariaDB host patterns); default the web subnet.
    pub allowed_hosts: Vec<String>,
    /// The web tier's subnet (CIDR), used when `allowed_hosts` is empty.
    pub web_subnet: String,
    pub stonith: StonithMode,
    /// Host name → Azure VM name, when they differ (for fence_azure_arm's host map).
    pub vm_names: BTreeMap<String, String>,
    /// The disk both nodes share for SBD (`stonith: sbd`), by a stable name (/dev/disk/by-…).
    pub sbd_device: Option<String>,
    /// SBD's watchdog timeout, seconds, written into the device header; a poison pill counts as
    /// delivered after msgwait, twice this. Azure's guidance: 60 (rides out maintenance pauses).
    pub sbd_watchdog_timeout_secs: u32,
    /// How long to wait for the peer (DRBD, pcsd), seconds.
    pub peer_timeout_secs: u64,
    /// How long to wait for the cluster to start MariaDB, seconds.
    pub cluster_timeout_secs: u64,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            data_disk: None,
            fs_type: FsType::Ext4,
            drbd_port: 7789,
            drbd_minor: 0,
            mount_point: "/var/lib/mysql".into(),
            probe_port: 62500,
            timing_profile: TimingProfile::Azure,
            token_ms: None,
            op_timeout_scale: 1,
            allowed_hosts: Vec::new(),
            web_subnet: "10.0.2.0/24".into(),
            stonith: StonithMode::Auto,
            vm_names: BTreeMap::new(),
            sbd_device: None,
            sbd_watchdog_timeout_secs: 60,
            peer_timeout_secs: 900,
            cluster_timeout_secs: 900,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// WordPress tarball baked into the image.
    pub wordpress_tarball: String,
    /// Where to download it from when the tarball is absent.
    pub wordpress_url: Option<String>,
    /// Pinned sha256 of the tarball; without it hainit refuses to install WordPress.
    pub wordpress_sha256: Option<String>,
    pub docroot: String,
    pub table_prefix: String,
    pub site_url: Option<String>,
    pub site_title: String,
    pub admin_user: String,
    pub admin_email: String,
    /// How long to wait for the DB VIP to accept connections, seconds.
    pub vip_timeout_secs: u64,
    /// The shared uploads storage when the VM has no `hainit-share` tag: an NFS 4.1 export
    /// `host:/path`, or `local` (one web node, uploads on its own disk). See docs/web-role.md.
    pub share: Option<String>,
    /// Serve xmlrpc.php (closed by default: remote publishing and pingbacks, and a target for
    /// password guessing that bypasses the login page's limits).
    pub xmlrpc: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            wordpress_tarball: "/usr/share/hainit/wordpress.tar.gz".into(),
            wordpress_url: None,
            wordpress_sha256: None,
            docroot: "/var/www/wordpress".into(),
            table_prefix: "wp_".into(),
            site_url: None,
            site_title: "hainit WordPress".into(),
            admin_user: "wpadmin".into(),
            admin_email: "admin@example.com".into(),
            vip_timeout_secs: 900,
            share: None,
            xmlrpc: false,
        }
    }
}

impl WebConfig {
    /// The pinned sha256, lower case; refusing (exit 2) when none is configured.
    pub fn pinned_sha256(&self) -> Result<String> {
        let sha = self.wordpress_sha256.as_deref().ok_or_else(|| {
            Error::input(
                "web.wordpress_sha256 is not set: hainit installs WordPress only from a tarball whose sha256 is \
                 pinned (scripts/wordpress-tarball.sh prints it)",
            )
        })?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::input(format!("web.wordpress_sha256 {sha:?} is not 64 hexadecimal characters")));
        }
        Ok(sha.to_ascii_lowercase())
    }

    /// Everything the web role reads from here, checked before anything is touched.
    pub fn validate(&self) -> Result<()> {
        self.pinned_sha256()?;
        let bad = |key: &str, value: &str, why: &str| Err(Error::input(format!("web.{key} {value:?}: {why}")));
        let http = |v: &str| v.starts_with("http://") || v.starts_with("https://");
        if let Some(url) = &self.wordpress_url {
            if !http(url) {
                return bad("wordpress_url", url, "must start with http:// or https://");
            }
        }
        if !self.wordpress_tarball.starts_with('/') {
            return bad("wordpress_tarball", &self.wordpress_tarball, "must be an absolute path");
        }
        let docroot_parts: Vec<&str> = self.docroot.split('/').filter(|c| !c.is_empty()).collect();
        if !self.docroot.starts_with('/') || docroot_parts.is_empty() || docroot_parts.contains(&"..") {
            return bad("docroot", &self.docroot, "must be an absolute path below / without ..");
        }
        if self.table_prefix.is_empty() || !self.table_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return bad("table_prefix", &self.table_prefix, "only letters, digits and _ are allowed (WordPress)");
        }
        if let Some(url) = &self.site_url {
            let clean = url.bytes().all(|b| b.is_ascii_graphic() && !b"'\"\\<>".contains(&b));
            if !http(url) || !clean {
                return bad("site_url", url, "must be an http:// or https:// URL without quotes or spaces");
            }
        }
        if self.site_title.trim().is_empty() || self.site_title.chars().any(char::is_control) {
            return bad("site_title", &self.site_title, "must be a non-empty line of text");
        }
        let user_ok = |b: u8| b.is_ascii_alphanumeric() || b"_.@-".contains(&b);
        if self.admin_user.is_empty() || self.admin_user.len() > 60 || !self.admin_user.bytes().all(user_ok) {
            return bad("admin_user", &self.admin_user, "1-60 of letters, digits and _.@- (WordPress user names)");
        }
        let email_ok = self.admin_email.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.'));
        if !email_ok || self.admin_email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("admin_email", &self.admin_email, "is not an e-mail address");
        }
        if self.vip_timeout_secs == 0 {
            return bad("vip_timeout_secs", "0", "must be at least 1");
        }
        Ok(())
    }
}

impl Config {
    /// Parse YAML text; `origin` names the file in errors (unknown keys name the key and line).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| Error::input(format!("{origin}: {e}")))
    }

    /// Load the image defaults (if any) overlaid with the config: an explicit path must exist,
    /// the default path may be absent. `read` reads a file under `--root`.
    pub fn load(explicit: Option<&Path>, read: impl Fn(&str) -> Result<Option<String>>) -> Result<Self> {
        let admin = match explicit {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::input(format!("--config {}: {e}", path.display())))?;
                Some((text, path.display().to_string()))
            }
            None => read(DEFAULT_PATH)?.map(|text| (text, DEFAULT_PATH.to_string())),
        };
        let vendor = read(IMAGE_DEFAULTS_PATH)?.map(|text| (text, IMAGE_DEFAULTS_PATH.to_string()));
        let mut merged = serde_yaml_ng::Value::Null;
        for (text, origin) in vendor.iter().chain(admin.iter()) {
            // Each file on its own first, so an error names its file, key and line.
            Config::from_yaml(text, origin)?;
            if !text.trim().is_empty() {
                let value = serde_yaml_ng::from_str(text).map_err(|e| Error::input(format!("{origin}: {e}")))?;
                merge(&mut merged, value);
            }
        }
        if merged.is_null() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_value(merged).map_err(|e| Error::input(format!("config: {e}")))
    }

    /// The shared secret from `secret` or `secret_file` (exactly one of them).
    pub fn shared_secret(&self, read: impl Fn(&str) -> Result<Option<String>>) -> Result<SharedSecret> {
        match (&self.secret, &self.secret_file) {
            (Some(_), Some(_)) => Err(Error::input("config: set either `secret` or `secret_file`, not both")),
            (Some(value), None) => SharedSecret::try_new(value, "config `secret`"),
            (None, Some(path)) => {
                let text =
                    read(path)?.ok_or_else(|| Error::input(format!("config `secret_file`: {path} does not exist")))?;
                SharedSecret::try_new(&text, &format!("config `secret_file` {path}"))
            }
            (None, None) => Err(Error::input(format!(
                "no shared secret: set `secret` or `secret_file` in {DEFAULT_PATH} (or --config)"
            ))),
        }
    }

    /// What this node's role gets: the db role the master secret; the web role its tier's values
    /// (`web_secrets`), or the master secret from a config written before tiers (with a warning,
    /// [`Config::tier_warning`]). Exactly one source; anything else is bad input (exit 2).
    pub fn secrets(&self, role: Role, read: impl Fn(&str) -> Result<Option<String>>) -> Result<Secrets> {
        let master = self.secret.is_some() || self.secret_file.is_some();
        let scoped = match (&self.web_secrets, &self.web_secrets_file) {
            (Some(_), Some(_)) => {
                return Err(Error::input("config: set either `web_secrets` or `web_secrets_file`, not both"))
            }
            (Some(map), None) => Some((map.clone(), "config `web_secrets`".to_string())),
            (None, Some(path)) => {
                let origin = format!("config `web_secrets_file` {path}");
                let text = read(path)?.ok_or_else(|| Error::input(format!("{origin} does not exist")))?;
                let map = serde_yaml_ng::from_str(&text)
                    .map_err(|e| Error::input(format!("{origin}: not a mapping of purpose to value ({e})")))?;
                Some((map, origin))
            }
            (None, None) => None,
        };
        match (role, scoped) {
            (Role::Db, Some(_)) => Err(Error::input(
                "config: `web_secrets` are the web tier's; a db node needs the master secret (`secret` or \
                 `secret_file`)",
            )),
            (Role::Web, Some(_)) if master => Err(Error::input(
                "config: a web node takes `web_secrets` or the master secret, not both; keep `web_secrets` (the \
                 master secret opens the db tier)",
            )),
            (Role::Web, Some((map, origin))) => {
                Ok(Secrets::Scoped(ScopedSecrets::try_new(&map, &crate::roles::tier_purposes(role), &origin)?))
            }
            (_, None) => Ok(Secrets::Master(self.shared_secret(read)?)),
        }
    }

    /// Why this config is unsafe for its role, when it is: a web node holding the master secret.
    pub fn tier_warning(&self, role: Role) -> Option<String> {
        let master = self.secret.is_some() || self.secret_file.is_some();
        (role == Role::Web && master).then(|| {
            "this web node holds the master secret, which also derives the db tier's hacluster password, corosync \
             authkey and MariaDB root password: give web nodes only `web_secrets` (`hainit secrets --tier web`, \
             docs/configuration.md)"
                .to_string()
        })
    }

    pub fn imds_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.imds.deadline_secs.unwrap_or(60))
    }
}

/// Deep-merge YAML mappings: keys of `over` replace those of `base`, nested mappings merge.
fn merge(base: &mut serde_yaml_ng::Value, over: serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_yaml("\n", "x.yaml").unwrap();
        assert_eq!(c.db.drbd_port, 7789);
        assert_eq!(c.db.timing_profile, TimingProfile::Azure);
        assert_eq!(c.db.token_ms, None);
        assert_eq!(c.database.port, 3306);
        assert_eq!(c.db.fs_type, FsType::Ext4);
    }

    #[test]
    fn values_override_defaults() {
        let c = Config::from_yaml(
            "role: web\ndb:\n  fs_type: xfs\n  probe_port: 61000\n  vm_names: {db-a: vm-db-a}\nweb:\n  site_title: Blog\n",
            "x.yaml",
        )
        .unwrap();
        assert_eq!(c.role, Some(Role::Web));
        assert_eq!(c.db.fs_type, FsType::Xfs);
        assert_eq!(c.db.probe_port, 61000);
        assert_eq!(c.db.drbd_port, 7789, "untouched keys keep their default");
        assert_eq!(c.db.vm_names["db-a"], "vm-db-a");
        assert_eq!(c.web.site_title, "Blog");
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_line() {
        let e = Config::from_yaml("db:\n  drbd_port: 7789\n  colour: blue\n", "/etc/hainit/hainit.yaml").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Input);
        let msg = e.to_string();
        assert!(msg.contains("/etc/hainit/hainit.yaml") && msg.contains("colour") && msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn bad_values_are_input_errors() {
        for text in [
            "db:\n  fs_type: btrfs\n",
            "db:\n  drbd_port: 70000\n",
            "role: cache\n",
            "- a\n- b\n",
            "db:\n  timing_profile: quick\n",
        ] {
            let e = Config::from_yaml(text, "c.yaml").unwrap_err();
            assert_eq!(e.kind, ErrorKind::Input, "{text}");
            assert!(e.to_string().starts_with("c.yaml: "), "{e}");
        }
    }

    #[test]
    fn image_defaults_are_overridden_by_the_config_file() {
        let files = |p: &str| {
            Ok(match p {
                IMAGE_DEFAULTS_PATH => Some("web:\n  wordpress_sha256: abc\n  site_title: Image\n".to_string()),
                DEFAULT_PATH => Some("web:\n  site_title: Mine\n".to_string()),
                _ => None,
            })
        };
        let c = Config::load(None, files).unwrap();
        assert_eq!(c.web.wordpress_sha256.as_deref(), Some("abc"));
        assert_eq!(c.web.site_title, "Mine");
        assert_eq!(c.web.table_prefix, "wp_");

        let bad = |p: &str| Ok((p == IMAGE_DEFAULTS_PATH).then(|| "web:\n  nope: 1\n".to_string()));
        let e = Config::load(None, bad).unwrap_err();
        assert!(e.to_string().contains(IMAGE_DEFAULTS_PATH) && e.to_string().contains("nope"), "{e}");
        assert_eq!(Config::load(None, |_| Ok(None)).unwrap().db.drbd_port, 7789);
    }

    #[test]
    fn secret_sources() {
        let none = |_: &str| Ok(None);
        let secret = "s".repeat(40);
        let c = Config::from_yaml(&format!("secret: {secret}\n"), "c").unwrap();
        assert!(c.shared_secret(none).is_ok());

        let c = Config::from_yaml("secret_file: /etc/hainit/secret\n", "c").unwrap();
        let file = |p: &str| Ok((p == "/etc/hainit/secret").then(|| format!("{secret}\n")));
        assert!(c.shared_secret(file).is_ok());
        let e = c.shared_secret(none).unwrap_err();
        assert!(e.to_string().contains("/etc/hainit/secret does not exist"), "{e}");

        let c = Config::from_yaml(&format!("secret: {secret}\nsecret_file: /x\n"), "c").unwrap();
        assert!(c.shared_secret(none).unwrap_err().to_string().contains("not both"));
        assert!(Config::default().shared_secret(none).unwrap_err().to_string().contains("no shared secret"));
    }
}

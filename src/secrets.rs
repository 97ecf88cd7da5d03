//! The shared secret and everything derived from it.
//!
//! Every password and key is `hex(HMAC-SHA256(key = secret, message = "hainit/" + purpose))`,
//! 64 lowercase hex characters. Reproduce one with openssl:
//!
//! ```text
//! printf '%s' 'hainit/mariadb-root' | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1
//! ```
//!
//! Hex keeps the values free of quotes and backslashes, so they can go into PHP strings, SQL
//! literals and `chpasswd` input without escaping.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// Shortest shared secret accepted (the design asks for ≥ 32 bytes).
pub const MIN_SECRET_LEN: usize = 32;

/// Text that must never be printed: Debug and Display redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What stands in for a secret in plans, argv and logs.
pub const REDACTED: &str = "<redacted>";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The clear text, for the few places that hand it to the machine (stdin, 0600 files).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Every derived value has one purpose string; changing one changes the derived value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    HaclusterPassword,
    MariadbRoot,
    WordpressDb,
    WordpressAdmin,
    /// One of WordPress's eight keys and salts, by constant name (`AUTH_KEY`, …).
    WordpressSalt(&'static str),
    /// The corosync authkey, identical on both db nodes, so a replaced node can rejoin.
    CorosyncAuthkey,
    /// DRBD's `shared-secret` (cram-hmac-alg): only the two db nodes may connect as peers.
    DrbdSharedSecret,
}

impl Purpose {
    pub fn label(self) -> String {
        match self {
            Purpose::HaclusterPassword => "hacluster".into(),
            Purpose::MariadbRoot => "mariadb-root".into(),
            Purpose::WordpressDb => "wordpress-db".into(),
            Purpose::WordpressAdmin => "wordpress-admin".into(),
            Purpose::WordpressSalt(name) => format!("wordpress-salt/{name}"),
            Purpose::CorosyncAuthkey => "corosync-authkey".into(),
            Purpose::DrbdSharedSecret => "drbd-shared-secret".into(),
        }
    }
}

/// The validated shared secret.
#[derive(Clone)]
pub struct SharedSecret(Secret);

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl SharedSecret {
    /// `source` names where it came from, for the error message (never the value).
    pub fn try_new(value: &str, source: &str) -> Result<Self> {
        let value = value.trim_end_matches(['\n', '\r']);
        if value.len() < MIN_SECRET_LEN {
            return Err(Error::input(format!(
                "{source}: the shared secret is {} bytes long, at least {MIN_SECRET_LEN} are required",
                value.len()
            )));
        }
        Ok(SharedSecret(Secret::new(value)))
    }

    #[allow(clippy::expect_used)] // invariant: HMAC takes keys of any length
    pub fn derive(&self, purpose: Purpose) -> Secret {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(b"hainit/");
        mac.update(purpose.label().as_bytes());
        Secret::new(hex(&mac.finalize().into_bytes()))
    }
}

impl SharedSecret {
    /// `len` raw bytes for binary keys: HMAC blocks over `"hainit/" + purpose + "/" + n`,
    /// n = 0, 1, … concatenated (reproducible with `openssl dgst -binary`).
    #[allow(clippy::expect_used)] // invariant: HMAC takes keys of any length
    pub fn derive_bytes(&self, purpose: Purpose, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut n = 0u32;
        while out.len() < len {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes()).expect("HMAC accepts keys of any length");
            mac.update(format!("hainit/{}/{n}", purpose.label()).as_bytes());
            out.extend_from_slice(&mac.finalize().into_bytes());
            n += 1;
        }
        out.truncate(len);
        out
    }
}

/// What a node holds: the master secret (db nodes, and web nodes configured before tiers), or only
/// the values its tier needs (web nodes: `web_secrets`), so that root on an internet-facing web VM
/// does not open the db tier (hacluster, corosync authkey, MariaDB root).
#[derive(Debug, Clone)]
pub enum Secrets {
    Master(SharedSecret),
    Scoped(ScopedSecrets),
}

/// Pre-derived values of one tier, by purpose label (`hainit secrets --tier web` prints them).
#[derive(Clone)]
pub struct ScopedSecrets {
    values: BTreeMap<String, Secret>,
}

impl fmt::Debug for ScopedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl From<SharedSecret> for Secrets {
    fn from(master: SharedSecret) -> Self {
        Secrets::Master(master)
    }
}

impl ScopedSecrets {
    /// `values` (label → value) must hold exactly `purposes`, each a derived value (64 lowercase
    /// hex digits); `source` names where they came from, for errors (never a value).
    pub fn try_new(values: &BTreeMap<String, String>, purposes: &[Purpose], source: &str) -> Result<Self> {
        let labels: Vec<String> = purposes.iter().map(|p| p.label()).collect();
        if let Some(extra) = values.keys().find(|k| !labels.contains(k)) {
            return Err(Error::input(format!(
                "{source}: {extra:?} is not a secret of this tier (it takes {})",
                labels.join(", ")
            )));
        }
        let mut out = BTreeMap::new();
        for label in labels {
            let value = values.get(&label).ok_or_else(|| {
                Error::input(format!("{source}: no {label:?}; `hainit secrets --tier web` prints every one"))
            })?;
            if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(Error::input(format!(
                    "{source}: {label:?} is not a derived value (64 lowercase hex digits, {} characters given)",
                    value.len()
                )));
            }
            out.insert(label, Secret::new(value.clone()));
        }
        Ok(ScopedSecrets { values: out })
    }
}

impl Secrets {
    /// The value for `purpose`. A scoped node was checked to hold every purpose its role derives
    /// (`roles::tier_purposes`) before any step ran, and a test runs every web step on scoped
    /// secrets, so a missing purpose is a bug in hainit, not input.
    #[allow(clippy::expect_used)] // invariant: validated when loaded, see above
    pub fn derive(&self, purpose: Purpose) -> Secret {
        match self {
            Secrets::Master(master) => master.derive(purpose),
            Secrets::Scoped(scoped) => scoped
                .values
                .get(&purpose.label())
                .cloned()
                .expect("a scoped node holds every purpose its role derives (checked when the config was loaded)"),
        }
    }

    /// The master secret; a scoped node has none to give (exit 2).
    pub fn master(&self) -> Result<&SharedSecret> {
        match self {
            Secrets::Master(master) => Ok(master),
            Secrets::Scoped(_) => Err(Error::input(
                "this node holds only its tier's secrets (web_secrets), and this needs the master secret (secret or \
                 secret_file)",
            )),
        }
    }
}

/// The values `purposes` take under `master`, as a JSON object on one line (also a YAML flow
/// mapping): what `hainit secrets --tier web` prints and `web_secrets` takes.
pub fn tier_json(master: &SharedSecret, purposes: &[Purpose]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = purposes
        .iter()
        .map(|p| (p.label(), serde_json::Value::String(master.derive(*p).expose().to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn derivation_matches_the_documented_openssl_recipe() {
        // printf '%s' 'hainit/mariadb-root' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -r
        let s = SharedSecret::try_new(S, "test").unwrap();
        assert_eq!(
            s.derive(Purpose::MariadbRoot).expose(),
            "7934634a79cfd2a1c5c6885c0702d40a189aeefd742d470030bb46a1817c03cb"
        );
    }

    #[test]
    fn purposes_give_different_values_and_same_secret_same_value() {
        let a = SharedSecret::try_new(S, "test").unwrap();
        let b = SharedSecret::try_new(&format!("{S}\n"), "test").unwrap();
        assert_eq!(a.derive(Purpose::WordpressDb), b.derive(Purpose::WordpressDb));
        assert_ne!(a.derive(Purpose::WordpressDb), a.derive(Purpose::MariadbRoot));
        let other = SharedSecret::try_new(&S.replace('0', "1"), "test").unwrap();
        assert_ne!(a.derive(Purpose::WordpressDb), other.derive(Purpose::WordpressDb));
        assert_eq!(a.derive(Purpose::HaclusterPassword).expose().len(), 64);
    }

    #[test]
    fn derived_bytes_are_stable_and_long_enough() {
        let s = SharedSecret::try_new(S, "test").unwrap();
        let key = s.derive_bytes(Purpose::CorosyncAuthkey, 256);
        assert_eq!(key.len(), 256);
        assert_eq!(key, s.derive_bytes(Purpose::CorosyncAuthkey, 256));
        // printf '%s' 'hainit/corosync-authkey/0' | openssl dgst -sha256 -hmac 0123…cdef -r
        assert_eq!(hex(&key[..32]), "b80dec6e01d5930791d397273855135d3388bdeefd714acc532020d2deab96b1");
    }

    #[test]
    fn short_secret_is_input_error_without_the_value() {
        let e = SharedSecret::try_new("tooshort-value", "config secret").unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Input);
        assert!(e.to_string().contains("14 bytes"), "{e}");
        assert!(!e.to_string().contains("tooshort-value"));
    }

    fn web_purposes() -> Vec<Purpose> {
        vec![Purpose::WordpressDb, Purpose::WordpressSalt("AUTH_KEY")]
    }

    #[test]
    fn scoped_secrets_serve_the_values_the_master_derives_and_nothing_else() {
        let master = SharedSecret::try_new(S, "test").unwrap();
        let printed: BTreeMap<String, String> = serde_json::from_str(&tier_json(&master, &web_purposes())).unwrap();
        assert_eq!(printed.keys().collect::<Vec<_>>(), ["wordpress-db", "wordpress-salt/AUTH_KEY"]);
        let scoped = Secrets::Scoped(ScopedSecrets::try_new(&printed, &web_purposes(), "web_secrets").unwrap());
        for p in web_purposes() {
            assert_eq!(scoped.derive(p), master.derive(p), "{p:?}");
        }
        assert!(!format!("{scoped:?}").contains(master.derive(Purpose::WordpressDb).expose()));
    }

    #[test]
    fn scoped_secrets_refuse_what_the_tier_was_not_given() {
        let master = SharedSecret::try_new(S, "test").unwrap();
        let good: BTreeMap<String, String> = serde_json::from_str(&tier_json(&master, &web_purposes())).unwrap();
        let mut extra = good.clone();
        extra.insert("mariadb-root".into(), master.derive(Purpose::MariadbRoot).expose().into());
        let mut missing = good.clone();
        missing.remove("wordpress-salt/AUTH_KEY");
        let mut short = good.clone();
        short.insert("wordpress-db".into(), "abc".into());
        for (values, want) in [
            (extra, "\"mariadb-root\" is not a secret of this tier"),
            (missing, "no \"wordpress-salt/AUTH_KEY\""),
            (short, "\"wordpress-db\" is not a derived value (64 lowercase hex digits, 3 characters given)"),
        ] {
            let e = ScopedSecrets::try_new(&values, &web_purposes(), "web_secrets").unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Input);
            assert!(e.to_string().starts_with("web_secrets: ") && e.to_string().contains(want), "{e}");
            assert!(!e.to_string().contains(master.derive(Purpose::MariadbRoot).expose()));
        }
    }

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }
}

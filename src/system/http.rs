//! HTTP on the real machine: fetching a pinned download, and local health requests.

use std::time::Duration;

use ureq::Agent;

use super::archive::sha256_hex;
use crate::error::{Error, Result};

/// Fetch `url` to `path`, but only if its sha256 is `sha256`; nothing is written otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSpec {
    pub url: String,
    pub sha256: String,
    pub path: String,
}

/// What a plain GET answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

const DOWNLOAD_LIMIT: u64 = 1 << 30;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(900);
const BODY_LIMIT: u64 = 4 << 20;

/// Download into memory (bounded) and verify; the caller writes the verified bytes.
pub fn fetch_verified(spec: &DownloadSpec) -> Result<Vec<u8>> {
    // Proxies from the environment are honoured: a download may legitimately need one.
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DOWNLOAD_TIMEOUT))
        .user_agent("hainit")
        .build()
        .into();
    let mut response =
        agent.get(&spec.url).call().map_err(|e| Error::step(format!("downloading {}: {e}", spec.url)))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Error::step(format!("downloading {}: HTTP {status}", spec.url)));
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(DOWNLOAD_LIMIT)
        .read_to_vec()
        .map_err(|e| Error::step(format!("downloading {}: {e}", spec.url)))?;
    let got = sha256_hex(&bytes);
    if !got.eq_ignore_ascii_case(&spec.sha256) {
        return Err(Error::step(format!(
            "downloaded {} has sha256 {got}, but {} is pinned; nothing was written",
            spec.url, spec.sha256
        )));
    }
    Ok(bytes)
}

/// One GET without proxy or redirects (health checks talk to this machine).
pub fn get(url: &str, timeout: Duration) -> Result<HttpReply> {
    let agent: Agent = Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .user_agent("hainit")
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| Error::step(format!("GET {url}: {e}")))?;
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.body_mut().with_config().limit(BODY_LIMIT).read_to_string().unwrap_or_default();
    Ok(HttpReply { status, location, body })
}

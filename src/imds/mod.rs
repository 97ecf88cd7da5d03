//! Azure Instance Metadata Service client: `Metadata: true`, never through a proxy, pinned
//! api-version, bounded retries with backoff on the statuses IMDS documents as transient.

mod model;

pub use model::{decode_base64, InstanceDoc, Tag};

use std::time::Duration;

use tracing::{debug, warn};
use ureq::Agent;

use crate::error::{Error, Result};
use crate::retry::{is_retryable, Backoff};

/// First api-version that has everything hainit reads (tagsList, userData, computerName).
pub const API_VERSION: &str = "2021-02-01";
/// The managed-identity token endpoint's api-version.
pub const IDENTITY_API_VERSION: &str = "2018-02-01";
pub const DEFAULT_URL: &str = "http://169.254.169.254";
/// One attempt never waits longer than this for an answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies larger than this are not an IMDS document.
const BODY_LIMIT: u64 = 1 << 20;

pub struct ImdsClient {
    base_url: String,
    agent: Agent,
    backoff: Backoff,
}

/// What an HTTP status means for one endpoint.
enum Verdict {
    Done(bool),
    Retry,
    Refuse,
}

/// What one HTTP exchange produced.
enum Reply {
    Status(u16, String),
    Failed(String),
}

impl ImdsClient {
    /// `deadline` bounds all attempts together; after it the call is a timeout (exit 3).
    pub fn new(base_url: &str, deadline: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .proxy(None) // IMDS must never be reached through a proxy, whatever the environment says
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent("hainit")
            .build()
            .into();
        ImdsClient { base_url: base_url.trim_end_matches('/').to_string(), agent, backoff: Backoff::new(deadline) }
    }

    pub fn fetch_instance(&self) -> Result<InstanceDoc> {
        let path = format!("/metadata/instance?api-version={API_VERSION}");
        let (_, body) = self.get(&path, |status| match status {
            200 => Verdict::Done(true),
            s if is_retryable(s) => Verdict::Retry,
            _ => Verdict::Refuse,
        })?;
        InstanceDoc::from_json(&body)
    }

    /// Whether the VM has a managed identity: true when the identity endpoint hands out an ARM
    /// token (discarded), false only on the answers IMDS documents for "no identity" (400-403).
    /// "IMDS is updating" (404 on this endpoint), throttling, 5xx and no answer are retried until
    /// the deadline (then exit 3); anything else is an error (exit 2). Never a guess.
    pub fn has_managed_identity(&self) -> Result<bool> {
        let path = format!(
            "/metadata/identity/oauth2/token?api-version={IDENTITY_API_VERSION}&resource=https://management.azure.com/"
        );
        let (ok, body) = self.get(&path, |status| match status {
            200 => Verdict::Done(true),
            400..=403 => Verdict::Done(false),
            s if s == 404 || is_retryable(s) => Verdict::Retry,
            _ => Verdict::Refuse,
        })?;
        if ok && !model::is_token(&body) {
            return Err(Error::input(format!(
                "IMDS {}{path} answered HTTP 200 without an access_token; body starts with {:?}",
                self.base_url,
                body.chars().take(60).collect::<String>()
            )));
        }
        Ok(ok)
    }

    /// GET with retries; `judge` says what each HTTP status means for this endpoint.
    fn get(&self, path: &str, judge: impl Fn(u16) -> Verdict) -> Result<(bool, String)> {
        let url = format!("{}{path}", self.base_url);
        let mut attempts = self.backoff.start();
        let mut tries = 0u32;
        loop {
            tries += 1;
            let timeout = attempts.remaining().min(ATTEMPT_TIMEOUT).max(Duration::from_millis(100));
            let last = match self.attempt(&url, timeout) {
                Reply::Status(status, body) => match judge(status) {
                    Verdict::Done(ok) => return Ok((ok, body)),
                    Verdict::Refuse => {
                        return Err(Error::input(format!(
                            "IMDS {url} answered HTTP {status}: {}",
                            body.chars().take(300).collect::<String>().trim()
                        )))
                    }
                    Verdict::Retry => format!("HTTP {status}"),
                },
                Reply::Failed(why) => why,
            };
            debug!(url = %url, attempt = tries, error = %last, "IMDS attempt failed");
            if !attempts.wait() {
                return Err(Error::timeout(format!(
                    "IMDS {url} gave no usable answer within {:.0} s ({tries} attempts, last: {last})",
                    self.backoff.deadline.as_secs_f64()
                )));
            }
            if tries == 3 {
                warn!(url = %url, error = %last, "IMDS not answering yet, still retrying");
            }
        }
    }

    fn attempt(&self, url: &str, timeout: Duration) -> Reply {
        let response =
            self.agent.get(url).header("Metadata", "true").config().timeout_global(Some(timeout)).build().call();
        match response {
            Ok(mut r) => {
                let status = r.status().as_u16();
                match r.body_mut().with_config().limit(BODY_LIMIT).read_to_string() {
                    Ok(body) => Reply::Status(status, body),
                    Err(e) => Reply::Failed(format!("reading the body: {e}")),
                }
            }
            Err(e) => Reply::Failed(e.to_string()),
        }
    }
}

//! Callbacks: the outcome of a deploy or destroy, posted as signed JSON to
//! the `callback_url` a dispatch named, if the allowlist permits it.

use crate::http::{self, snippet};
use crate::policy::CallbackPolicy;
use crate::resolve::{AllowlistResolver, ResolveError};
use crate::signature::signature_header;
use crate::{Secret, USER_AGENT};
use std::time::Duration;

/// The header carrying `sha256=<hex HMAC-SHA256(secret, body)>`, the scheme
/// of GitHub's `X-Hub-Signature-256`, so receivers reuse their checker.
pub const SIGNATURE_HEADER: &str = "X-Previewd-Signature-256";
/// The header carrying the message's idempotency key; a receiver that sees
/// a key twice is seeing a redelivery.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// What a callback reports on, and what it says: core's types, since
/// `previewd_core::outbox_report::plan` decides them.
pub use previewd_core::outbox_report::{Action as CallbackAction, CallbackBody};

#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// The HMAC key shared with the receivers.
    pub secret: Secret,
    pub policy: CallbackPolicy,
    /// Per request, connecting included.
    pub timeout: Duration,
    pub user_agent: String,
}

impl CallbackConfig {
    pub fn new(secret: Secret, policy: CallbackPolicy) -> Self {
        CallbackConfig {
            secret,
            policy,
            timeout: crate::client::DEFAULT_TIMEOUT,
            user_agent: USER_AGENT.to_owned(),
        }
    }
}

/// A callback that was not delivered, named for the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The allowlist refuses the URL, or every address its host resolves
    /// to.
    #[error("callback_url: {0}")]
    NotAllowed(String),
    /// An argument or setting breaks a rule; `field` names it.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("encoding the callback body: {0}")]
    Encode(#[source] serde_json::Error),
    /// No response: refused connection, DNS, TLS, timeout. The error
    /// carries no URL (a callback's query may hold a token).
    #[error("sending the callback: {0}")]
    Send(#[source] reqwest::Error),
    /// A 4xx (or a redirect, which is never followed): the receiver does not
    /// want this message, and repeating it will not change that.
    #[error("callback refused with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// A 5xx, 408 or 429: the receiver may take it later.
    #[error("callback receiver unavailable (HTTP {status}): {message}")]
    Unavailable {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl CallbackError {
    pub fn is_retryable(&self) -> bool {
        match self {
            CallbackError::Send(e) => !(e.is_builder() || e.is_redirect()),
            CallbackError::Unavailable { .. } => true,
            CallbackError::NotAllowed(_)
            | CallbackError::Invalid { .. }
            | CallbackError::HttpClient(_)
            | CallbackError::Encode(_)
            | CallbackError::Refused { .. } => false,
        }
    }

    /// The receiver's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallbackError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The failed step, for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CallbackError::NotAllowed(_) => "not_allowed",
            CallbackError::Invalid { .. } => "invalid",
            CallbackError::HttpClient(_) => "http_client",
            CallbackError::Encode(_) => "encode",
            CallbackError::Send(_) => "send",
            CallbackError::Refused { .. } => "refused",
            CallbackError::Unavailable { .. } => "unavailable",
        }
    }
}

/// Posts callbacks. Host names are resolved through the allowlist (see
/// [`CallbackPolicy`]): only the addresses it permits are connected to.
/// Redirects are not followed: the allowlist judged the URL, not wherever
/// a receiver points next. No proxy is used. Logs and errors name the
/// callback's host, never its URL.
pub struct CallbackClient {
    http: reqwest::Client,
    secret: Secret,
    policy: CallbackPolicy,
}

impl CallbackClient {
    pub fn new(config: CallbackConfig) -> Result<Self, CallbackError> {
        if config.secret.is_empty() {
            return Err(CallbackError::Invalid {
                field: "callback_secret",
                rule: "must not be empty: receivers check the HMAC made with it".into(),
            });
        }
        // Names resolve through the allowlist, and never through a proxy:
        // a proxy would resolve the name itself, past the allowlist.
        let http = http::builder(&config.user_agent, config.timeout, false)
            .no_proxy()
            .dns_resolver(AllowlistResolver::new(config.policy.clone()))
            .build()
            .map_err(|e| CallbackError::HttpClient(e.without_url()))?;
        Ok(CallbackClient {
            http,
            secret: config.secret,
            policy: config.policy,
        })
    }

    /// The allowlist, for the API to vet a `callback_url` up front
    /// ([`CallbackPolicy::vet`]).
    pub fn policy(&self) -> &CallbackPolicy {
        &self.policy
    }

    /// Posts `body` to `url`, signed, with `idempotency_key` (the same on
    /// every retry of one message). 2xx is delivered; see
    /// [`CallbackError::is_retryable`] for the rest.
    #[tracing::instrument(name = "callback.post", skip_all,
        fields(host = %host_of(url), branch = %body.branch, state = %body.state))]
    pub async fn post(
        &self,
        url: &str,
        body: &CallbackBody,
        idempotency_key: &str,
    ) -> Result<(), CallbackError> {
        self.policy.allows(url).map_err(CallbackError::NotAllowed)?;
        if idempotency_key.is_empty() || !idempotency_key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(CallbackError::Invalid {
                field: "idempotency_key",
                rule: "must be non-empty printable ASCII without spaces".into(),
            });
        }
        // Signed and sent as the same bytes: re-serialising could differ.
        let bytes = serde_json::to_vec(body).map_err(CallbackError::Encode)?;
        let signature = signature_header(self.secret.expose().as_bytes(), &bytes);
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(IDEMPOTENCY_HEADER, idempotency_key)
            .body(bytes)
            .send()
            .await
            .map_err(send_error)?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers(), chrono::Utc::now().timestamp());
        // Only the host of a redirect's target: its query may hold a token.
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| match reqwest::Url::parse(l) {
                Ok(u) => format!("host {}", u.host_str().unwrap_or("none")),
                Err(_) => "a relative path".to_owned(),
            });
        if (200..300).contains(&status) {
            tracing::debug!(status, "callback delivered");
            return Ok(());
        }
        // The body only explains a failure; an unreadable one is no reason
        // to lose the status.
        let text = response
            .bytes()
            .await
            .map(|b| snippet(&b, 300))
            .unwrap_or_default();
        Err(match status {
            300..=399 => CallbackError::Refused {
                status,
                message: format!(
                    "redirects are not followed (Location: {})",
                    location.as_deref().unwrap_or("none")
                ),
            },
            408 | 429 | 500.. => CallbackError::Unavailable {
                status,
                message: text,
                retry_after,
            },
            _ => CallbackError::Refused {
                status,
                message: text,
            },
        })
    }
}

/// The host of a callback URL, for logs: never the path or query.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "(invalid)".to_owned())
}

/// A request that got no response. When the allowlist resolver refused
/// every address of the host, that is the allowlist's answer, not the
/// network's; otherwise the error, without its URL.
fn send_error(e: reqwest::Error) -> CallbackError {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolveError>()
            && r.is_refusal()
        {
            return CallbackError::NotAllowed(r.to_string());
        }
        source = s.source();
    }
    CallbackError::Send(e.without_url())
}

//! previewd's outbound reports and GitHub checks.
//!
//! ```text
//!  outbox worker ──▶ GithubClient ──▶ POST /repos/{o}/{r}/deployments[/{id}/statuses]
//!                │        └─ Auth::Token, or Auth::App: RS256 JWT ─▶ installation token (cached)
//!                └─▶ CallbackClient ─▶ callback_url (allowlisted, resolved by us, HMAC-signed, Idempotency-Key)
//!  webhook route ──▶ verify_signature + parse_event ─▶ WebhookEvent (destroy on close/delete)
//! ```
//!
//! Every error says whether a retry can help (`is_retryable`) and how long
//! the other side asked to wait (`retry_after`); the delivery worker turns
//! that into its backoff. Secrets are [`Secret`]s and never print.
//!
//! TLS is rustls on ring (no aws-lc): the clients install ring as the
//! process's rustls provider when none is set ([`install_ring_provider`]).
#![forbid(unsafe_code)]

pub mod app_auth;
pub mod callback;
pub mod client;
pub mod comments;
pub mod deployment;
pub mod error;
mod http;
pub mod policy;
pub mod reporter;
mod resolve;
pub mod secret;
pub mod signature;
mod special;
pub mod webhook;

pub use app_auth::KeyError;
pub use callback::{
    CallbackAction, CallbackBody, CallbackClient, CallbackConfig, CallbackError,
    IDEMPOTENCY_HEADER, SIGNATURE_HEADER,
};
pub use client::{Auth, DEFAULT_API_URL, GithubClient, GithubConfig, USER_AGENT};
pub use comments::CommentId;
pub use deployment::{
    DeploymentId, DeploymentState, StatusOpts, environment_for_branch, github_description,
};
pub use error::{ApiError, GithubError};
pub use http::install_ring_provider;
pub use policy::CallbackPolicy;
pub use reporter::GithubReporter;
pub use secret::Secret;
pub use signature::{signature_header, verify_signature};
pub use webhook::{HANDLED_EVENTS, PullRequestChange, WebhookError, WebhookEvent, parse_event};

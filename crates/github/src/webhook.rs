//! The GitHub webhook events previewd acts on, read from a delivery's
//! `X-GitHub-Event` header and JSON body. Check the body's signature with
//! [`crate::verify_signature`] before parsing it.

use chrono::{DateTime, Utc};
use previewd_core::pull_request::PrChange;
use serde::Deserialize;

/// The `X-GitHub-Event` values previewd reads; any other delivery is
/// refused before its body is read.
pub const HANDLED_EVENTS: [&str; 3] = ["ping", "pull_request", "delete"];

/// What a webhook delivery asks of previewd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A pull request was closed, merged or not; its head branch's preview
    /// should go. `repo` is `owner/name` of the repository holding `branch`.
    PullRequestClosed {
        repo: String,
        branch: String,
        merged: bool,
        /// When it was closed (`pull_request.closed_at`): a close older
        /// than the preview's last deploy is a replay or a late delivery.
        closed_at: Option<DateTime<Utc>>,
    },
    /// A pull request of the repository itself was opened, reopened,
    /// labelled, unlabelled or pushed to: what it means for a labelled
    /// preview is `previewd_core::pull_request::intent`'s to decide.
    PullRequestChanged(PullRequestChange),
    /// A branch was deleted; its preview should go.
    BranchDeleted { repo: String, branch: String },
    /// GitHub checking a new hook; answer 200.
    Ping,
    /// Anything else, described for logs (`push`, `pull_request.opened`,
    /// `delete.tag`, `pull_request.closed from fork alice/shop`).
    Other(String),
}

/// A pull-request delivery that may start, move or stop a labelled preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestChange {
    /// `owner/name` of the repository holding the pull request and `branch`.
    pub repo: String,
    pub number: u64,
    pub change: PrChange,
    /// The head branch.
    pub branch: String,
    /// The head commit: what a preview of the pull request deploys.
    pub head_sha: String,
    /// The pull request's labels as the delivery lists them.
    pub labels: Vec<String>,
    /// The label a `labeled` / `unlabeled` delivery is about.
    pub label: Option<String>,
    /// `pull_request.updated_at`: when this change happened.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A delivery that cannot be read. Redelivering the same bytes fails the
/// same way, so none of these is retryable.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("X-GitHub-Event: missing or empty")]
    MissingEvent,
    #[error("{event} payload: {source}")]
    Payload {
        event: String,
        #[source]
        source: serde_json::Error,
    },
}

impl WebhookError {
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// A short name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            WebhookError::MissingEvent => "missing_event",
            WebhookError::Payload { .. } => "payload",
        }
    }
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    #[serde(default)]
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
    /// The label a `labeled` / `unlabeled` delivery is about.
    #[serde(default)]
    label: Option<Label>,
}

#[derive(Deserialize)]
struct PullRequest {
    // Null on some payloads of unmerged PRs; absent means not merged.
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: Vec<Label>,
    head: Head,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "ref")]
    ref_name: String,
    #[serde(default)]
    sha: String,
    // Null once a fork is deleted.
    repo: Option<Repository>,
}

#[derive(Deserialize)]
struct DeletePayload {
    #[serde(rename = "ref")]
    ref_name: String,
    ref_type: String,
    repository: Repository,
}

/// Reads one delivery. `event_header` is the `X-GitHub-Event` value.
///
/// # Caveats
/// A pull request from a fork has its head branch in the fork: closing it
/// says nothing about a branch of the same name in the base repository, so
/// it comes back as [`WebhookEvent::Other`], never as a destroy.
pub fn parse_event(event_header: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let event = event_header.trim();
    let payload_error = |source| WebhookError::Payload {
        event: event.to_owned(),
        source,
    };
    match event {
        "" => Err(WebhookError::MissingEvent),
        "ping" => Ok(WebhookEvent::Ping),
        "pull_request" => {
            let p: PullRequestPayload = serde_json::from_slice(body).map_err(payload_error)?;
            let Ok(change) = p.action.parse::<PrChange>() else {
                return Ok(WebhookEvent::Other(format!("pull_request.{}", p.action)));
            };
            let head_repo = p.pull_request.head.repo.map(|r| r.full_name);
            if head_repo.as_deref() != Some(p.repository.full_name.as_str()) {
                let from = head_repo.unwrap_or_else(|| "a deleted repository".into());
                return Ok(WebhookEvent::Other(format!(
                    "pull_request.{change} from fork {from}"
                )));
            }
            if change == PrChange::Closed {
                return Ok(WebhookEvent::PullRequestClosed {
                    repo: p.repository.full_name,
                    branch: p.pull_request.head.ref_name,
                    merged: p.pull_request.merged.unwrap_or(false),
                    closed_at: p.pull_request.closed_at,
                });
            }
            Ok(WebhookEvent::PullRequestChanged(PullRequestChange {
                repo: p.repository.full_name,
                number: p.number,
                change,
                branch: p.pull_request.head.ref_name,
                head_sha: p.pull_request.head.sha,
                labels: p.pull_request.labels.into_iter().map(|l| l.name).collect(),
                label: p.label.map(|l| l.name),
                updated_at: p.pull_request.updated_at,
            }))
        }
        "delete" => {
            let d: DeletePayload = serde_json::from_slice(body).map_err(payload_error)?;
            if d.ref_type != "branch" {
                return Ok(WebhookEvent::Other(format!("delete.{}", d.ref_type)));
            }
            Ok(WebhookEvent::BranchDeleted {
                repo: d.repository.full_name,
                branch: d.ref_name,
            })
        }
        other => Ok(WebhookEvent::Other(other.to_owned())),
    }
}

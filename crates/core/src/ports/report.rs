//! The reporting port: GitHub deployments, the sticky pull-request
//! comment and the QA tool's callback, in previewd's words.

use async_trait::async_trait;
use std::time::Duration;

/// A report that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReportError {
    /// Throttling, 5xx, timeouts: try again later.
    pub retryable: bool,
    /// When the other side said when (Retry-After, rate-limit reset).
    pub retry_after: Option<Duration>,
    pub message: String,
}

/// GitHub deployments, the sticky pull-request comment and the QA tool's
/// callback.
#[async_trait]
pub trait Reporter: Send + Sync {
    /// False when no GitHub credentials are configured: statuses are skipped.
    fn reports_to_github(&self) -> bool;
    /// The reporter for the repository of `project`, when the projects'
    /// reports go to different repositories; `None`: this one serves it.
    fn for_project(&self, project: &str) -> Option<&dyn Reporter> {
        let _ = project;
        None
    }
    /// Creates a GitHub deployment of `commit_sha` for the branch's preview
    /// environment; returns its id.
    async fn create_deployment(
        &self,
        branch: &str,
        commit_sha: &str,
        description: &str,
    ) -> Result<i64, ReportError>;
    async fn deployment_status(
        &self,
        deployment_id: i64,
        step: &crate::outbox_report::StatusStep,
    ) -> Result<(), ReportError>;
    /// POSTs the signed body; the key lets the receiver drop a redelivery.
    async fn callback(
        &self,
        url: &str,
        body: &crate::outbox_report::CallbackBody,
        idempotency_key: &str,
    ) -> Result<(), ReportError>;
    /// The number of the open pull request whose head is `branch`, if any.
    async fn open_pull_request(&self, branch: &str) -> Result<Option<i64>, ReportError> {
        let _ = branch;
        Err(unsupported())
    }
    /// Writes `body` as the comment carrying `marker` on pull request
    /// `number`: edits the one found by the marker, or posts it when none
    /// is and `may_create` holds. Returns whether a comment was written.
    async fn write_comment(
        &self,
        number: i64,
        marker: &str,
        body: &str,
        may_create: bool,
    ) -> Result<bool, ReportError> {
        let _ = (number, marker, body, may_create);
        Err(unsupported())
    }
}

/// What a reporter without pull-request comments answers: refused for
/// good, so the message is dropped rather than retried.
fn unsupported() -> ReportError {
    ReportError {
        retryable: false,
        retry_after: None,
        message: "this reporter writes no pull-request comments".into(),
    }
}

//! The `Reporter` port of previewd-core on this crate's clients: GitHub
//! deployments and statuses, the sticky pull-request comment, and the
//! signed callback.

use crate::{CallbackClient, DeploymentId, GithubClient, StatusOpts};
use async_trait::async_trait;
use previewd_core::outbox_report::{CallbackBody, StatusStep};
use previewd_core::ports::{ReportError, Reporter};

/// Either side may be absent: without GitHub credentials no statuses are
/// posted; without a callback secret a callback cannot be signed.
pub struct GithubReporter {
    pub github: Option<GithubClient>,
    pub callbacks: Option<CallbackClient>,
    /// With several projects, each project's repository (`owner/name`,
    /// lower case) → its client; a project not in here reports through
    /// `github`.
    pub by_project: std::collections::BTreeMap<String, GithubReporter>,
}

fn report_error(
    retryable: bool,
    retry_after: Option<std::time::Duration>,
    message: String,
) -> ReportError {
    ReportError {
        retryable,
        retry_after,
        message,
    }
}

fn not_configured(what: &str) -> ReportError {
    report_error(false, None, format!("{what} is not configured"))
}

#[async_trait]
impl Reporter for GithubReporter {
    fn reports_to_github(&self) -> bool {
        self.github.is_some()
    }

    fn for_project(&self, project: &str) -> Option<&dyn Reporter> {
        self.by_project
            .get(&project.to_ascii_lowercase())
            .map(|r| r as &dyn Reporter)
    }

    async fn create_deployment(
        &self,
        branch: &str,
        commit_sha: &str,
        description: &str,
    ) -> Result<i64, ReportError> {
        let gh = self
            .github
            .as_ref()
            .ok_or_else(|| not_configured("GitHub"))?;
        let environment = crate::environment_for_branch(branch);
        let id = gh
            .create_deployment(
                commit_sha,
                &environment,
                &crate::github_description(description),
            )
            .await
            .map_err(|e| report_error(e.is_retryable(), e.retry_after(), e.to_string()))?;
        i64::try_from(id.0)
            .map_err(|_| report_error(false, None, format!("deployment id {} out of range", id.0)))
    }

    async fn deployment_status(
        &self,
        deployment_id: i64,
        step: &StatusStep,
    ) -> Result<(), ReportError> {
        let gh = self
            .github
            .as_ref()
            .ok_or_else(|| not_configured("GitHub"))?;
        let description = crate::github_description(&step.description);
        let opts = match &step.environment_url {
            Some(url) => StatusOpts::ready(url, &description),
            None => StatusOpts::described(&description),
        };
        let id = DeploymentId(u64::try_from(deployment_id).unwrap_or_default());
        gh.create_status(id, step.state, &opts)
            .await
            .map_err(|e| report_error(e.is_retryable(), e.retry_after(), e.to_string()))
    }

    async fn callback(
        &self,
        url: &str,
        body: &CallbackBody,
        idempotency_key: &str,
    ) -> Result<(), ReportError> {
        let cb = self
            .callbacks
            .as_ref()
            .ok_or_else(|| not_configured("the callback secret (PREVIEWD_CALLBACK_SECRET)"))?;
        cb.post(url, body, idempotency_key)
            .await
            .map_err(|e| report_error(e.is_retryable(), e.retry_after(), e.to_string()))
    }

    async fn open_pull_request(&self, branch: &str) -> Result<Option<i64>, ReportError> {
        let gh = self
            .github
            .as_ref()
            .ok_or_else(|| not_configured("GitHub"))?;
        let found = gh
            .open_pull_request(branch)
            .await
            .map_err(|e| report_error(e.is_retryable(), e.retry_after(), e.to_string()))?;
        found
            .map(|n| {
                i64::try_from(n).map_err(|_| {
                    report_error(false, None, format!("pull request {n} out of range"))
                })
            })
            .transpose()
    }

    async fn write_comment(
        &self,
        number: i64,
        marker: &str,
        body: &str,
        may_create: bool,
    ) -> Result<bool, ReportError> {
        let gh = self
            .github
            .as_ref()
            .ok_or_else(|| not_configured("GitHub"))?;
        let number = u64::try_from(number).map_err(|_| {
            report_error(false, None, format!("pull request {number} out of range"))
        })?;
        gh.write_comment(number, marker, body, may_create)
            .await
            .map_err(|e| report_error(e.is_retryable(), e.retry_after(), e.to_string()))
    }
}

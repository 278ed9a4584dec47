//! How a GitHub call fails, and whether trying again can help.

use crate::app_auth::KeyError;
use crate::http::{rate_limit_wait, snippet};
use reqwest::header::HeaderMap;
use std::time::Duration;

/// One HTTP exchange with GitHub that did not give the answer wanted.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No response: refused connection, DNS, TLS, timeout.
    #[error("no response: {0}")]
    Transport(#[source] reqwest::Error),
    /// A primary or secondary rate limit; `retry_after` is GitHub's word.
    #[error("rate limited (HTTP {status}), retry in {}s: {message}", retry_after.as_secs())]
    RateLimited {
        status: u16,
        retry_after: Duration,
        message: String,
    },
    /// Any other unwanted status, with GitHub's message.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retryable: bool,
    },
    /// A success whose body is not what GitHub documents. Not retried: the
    /// call may have taken effect, and a retry would create a duplicate.
    #[error("unexpected response body: {0}")]
    Decode(#[source] serde_json::Error),
}

impl ApiError {
    pub fn is_retryable(&self) -> bool {
        match self {
            // A request that could not even be built, or a redirect loop,
            // fails the same way next time; everything else on the wire may not.
            ApiError::Transport(e) => !(e.is_builder() || e.is_redirect()),
            ApiError::RateLimited { .. } => true,
            ApiError::Status { retryable, .. } => *retryable,
            ApiError::Decode(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::RateLimited { status, .. } | ApiError::Status { status, .. } => Some(*status),
            ApiError::Transport(e) => e.status().map(|s| s.as_u16()),
            ApiError::Decode(_) => None,
        }
    }

    /// Classifies a non-2xx response. `now` is epoch seconds (for
    /// `x-ratelimit-reset`); `renewable_auth` says a 401 may pass once the
    /// installation token is renewed.
    pub(crate) fn from_response(
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        renewable_auth: bool,
    ) -> Self {
        let message = github_message(body);
        if let Some(retry_after) = rate_limit_wait(status, headers, &message, now) {
            return ApiError::RateLimited {
                status,
                retry_after,
                message,
            };
        }
        // 409: GitHub's "conflict" on deployments passes once the commit's
        // state settles; 408 and 5xx are GitHub's own trouble.
        let retryable =
            status >= 500 || status == 408 || status == 409 || (status == 401 && renewable_auth);
        ApiError::Status {
            status,
            message,
            retryable,
        }
    }
}

/// GitHub's error text: `message`, then each entry of `errors` (strings or
/// objects with `message`, or `code` and `field`), e.g. `Validation
/// Failed: No ref found for: abc123`. A body that is not GitHub's JSON is
/// quoted, shortened.
pub(crate) fn github_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return snippet(body, 300);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
        parts.push(m.to_owned());
    }
    for e in v
        .get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
    {
        let text = match e {
            serde_json::Value::String(s) => Some(s.clone()),
            obj => obj
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    let code = obj.get("code").and_then(|c| c.as_str())?;
                    let field = obj.get("field").and_then(|f| f.as_str()).unwrap_or("?");
                    Some(format!("{field} {code}"))
                }),
        };
        parts.extend(text);
    }
    if parts.is_empty() {
        return snippet(body, 300);
    }
    let head = parts.remove(0);
    if parts.is_empty() {
        head
    } else {
        format!("{head}: {}", parts.join("; "))
    }
}

/// A failed GitHub operation, named for the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The client's configuration breaks a rule; `field` names it.
    #[error("{field}: {rule}")]
    Config { field: &'static str, rule: String },
    #[error("building the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("GitHub App private key: {0}")]
    AppKey(#[source] KeyError),
    #[error("getting a GitHub App installation token: {0}")]
    InstallationToken(#[source] ApiError),
    #[error("creating the deployment: {0}")]
    CreateDeployment(#[source] ApiError),
    #[error("creating the deployment status: {0}")]
    CreateStatus(#[source] ApiError),
    #[error("listing the environment's deployments: {0}")]
    ListDeployments(#[source] ApiError),
    #[error("finding the branch's pull request: {0}")]
    FindPullRequest(#[source] ApiError),
    #[error("listing the pull request's comments: {0}")]
    ListComments(#[source] ApiError),
    #[error("creating the pull request comment: {0}")]
    CreateComment(#[source] ApiError),
    #[error("editing the pull request comment: {0}")]
    UpdateComment(#[source] ApiError),
}

impl GithubError {
    /// Whether the same call may succeed later (rate limit, 5xx, timeout,
    /// GitHub's 202 and 409 on deployments, a 401 an App token renewal may
    /// cure); false for bad configuration, bad keys and other 4xx.
    pub fn is_retryable(&self) -> bool {
        self.api().is_some_and(ApiError::is_retryable)
    }

    /// How long GitHub asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(ApiError::retry_after)
    }

    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.api().and_then(ApiError::status)
    }

    /// The failed step, for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GithubError::Config { .. } => "config",
            GithubError::HttpClient(_) => "http_client",
            GithubError::AppKey(_) => "app_key",
            GithubError::InstallationToken(_) => "installation_token",
            GithubError::CreateDeployment(_) => "create_deployment",
            GithubError::CreateStatus(_) => "create_status",
            GithubError::ListDeployments(_) => "list_deployments",
            GithubError::FindPullRequest(_) => "find_pull_request",
            GithubError::ListComments(_) => "list_comments",
            GithubError::CreateComment(_) => "create_comment",
            GithubError::UpdateComment(_) => "update_comment",
        }
    }

    fn api(&self) -> Option<&ApiError> {
        match self {
            GithubError::InstallationToken(e)
            | GithubError::CreateDeployment(e)
            | GithubError::CreateStatus(e)
            | GithubError::ListDeployments(e)
            | GithubError::FindPullRequest(e)
            | GithubError::ListComments(e)
            | GithubError::CreateComment(e)
            | GithubError::UpdateComment(e) => Some(e),
            GithubError::Config { .. } | GithubError::HttpClient(_) | GithubError::AppKey(_) => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_message_joins_validation_errors() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"Deployment","code":"custom","message":"No ref found for: abc123"},{"resource":"DeploymentStatus","field":"state","code":"invalid"},"plain"],"documentation_url":"https://docs.github.com"}"#;
        assert_eq!(
            github_message(body),
            "Validation Failed: No ref found for: abc123; state invalid; plain"
        );
        assert_eq!(github_message(br#"{"message":"Not Found"}"#), "Not Found");
        assert_eq!(
            github_message(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
    }

    #[test]
    fn statuses_split_into_retryable_and_terminal() {
        let h = HeaderMap::new();
        let retryable = |s, renew| ApiError::from_response(s, &h, b"{}", 0, renew).is_retryable();
        for s in [500, 502, 503, 504, 408, 409, 429] {
            assert!(retryable(s, false), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 422] {
            assert!(!retryable(s, false), "{s}");
        }
        assert!(retryable(401, true), "an App token may be renewed");
    }
}

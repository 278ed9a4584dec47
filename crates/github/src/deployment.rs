//! The vocabulary of GitHub deployments as previewd uses it, and the JSON
//! bodies it sends; pure, so the rules are tested without a server.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

/// GitHub's limit on a deployment status description, in characters.
pub const DESCRIPTION_MAX: usize = 140;
/// GitHub's limit on an environment name, in characters.
pub const ENVIRONMENT_MAX: usize = 255;

/// A deployment's id in its repository, as GitHub returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub u64);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The states a deployment status can take: core's, since the outbox
/// report and the callback speak them too.
pub use previewd_core::outbox_report::DeploymentState;

/// The optional parts of a deployment status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusOpts {
    /// Where the preview is served; the QA tool reads it on `success`.
    pub environment_url: Option<String>,
    /// GitHub's successor of `target_url` (it echoes it back as both).
    pub log_url: Option<String>,
    /// Trimmed with [`github_description`] before sending.
    pub description: Option<String>,
    /// GitHub marks older deployments of the environment inactive unless
    /// this is false; `None` sends nothing, except on `success`, where the
    /// contract wants `false` and previewd sends it.
    pub auto_inactive: Option<bool>,
}

impl StatusOpts {
    /// A `success` status for a preview served at `preview_url`, as the
    /// contract wants it: both URLs set and `auto_inactive: false`.
    pub fn ready(preview_url: impl Into<String>, description: impl Into<String>) -> Self {
        let url = preview_url.into();
        StatusOpts {
            environment_url: Some(url.clone()),
            log_url: Some(url),
            description: Some(description.into()),
            auto_inactive: Some(false),
        }
    }

    /// Just a description, for `queued`, `failure`, `error`, `inactive`.
    pub fn described(description: impl Into<String>) -> Self {
        StatusOpts {
            description: Some(description.into()),
            ..StatusOpts::default()
        }
    }
}

/// The GitHub environment for a branch: `qanote/issue-42` becomes
/// `preview/qanote-issue-42`. Slashes become dashes so the name has one
/// fixed prefix; GitHub's 255-character limit is kept.
///
/// # Caveats
/// `feature/foo` and `feature-foo` share an environment. That only merges
/// their deployment lists on GitHub: statuses are posted per deployment id.
pub fn environment_for_branch(branch: &str) -> String {
    let name = format!("preview/{}", branch.replace('/', "-"));
    name.chars().take(ENVIRONMENT_MAX).collect()
}

/// A description GitHub accepts: whitespace runs (newlines included) become
/// one space, control characters go, and anything over
/// [`DESCRIPTION_MAX`] characters is cut on a character boundary, at a word
/// break when one is near, and ends in `…`. The head is kept because
/// previewd's messages put the failed step, the error code and the IAM
/// action first and the request details last.
pub fn github_description(text: &str) -> String {
    let flat = text
        .split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= DESCRIPTION_MAX {
        return flat;
    }
    let budget = DESCRIPTION_MAX - 1; // one character for the ellipsis
    let head: String = flat.chars().take(budget).collect();
    // A word break within the last 20 characters reads better than a cut
    // word; further back it would throw away too much.
    let head = match head.rfind(' ') {
        Some(i) if head[..i].chars().count() + 20 >= budget => &head[..i],
        _ => head.as_str(),
    };
    format!("{}…", head.trim_end())
}

/// The body of `POST /repos/{o}/{r}/deployments`.
pub(crate) fn deployment_body(commit_sha: &str, environment: &str, description: &str) -> Value {
    json!({
        "ref": commit_sha,
        "environment": environment,
        // A preview goes away; GitHub may mark it inactive then.
        "transient_environment": true,
        "production_environment": false,
        // Never let GitHub merge the default branch into a preview branch.
        "auto_merge": false,
        // The preview is wanted whatever the commit's checks say.
        "required_contexts": [],
        "description": github_description(description),
    })
}

/// The body of `POST /repos/{o}/{r}/deployments/{id}/statuses`.
pub(crate) fn status_body(state: DeploymentState, opts: &StatusOpts) -> Value {
    let mut body = json!({ "state": state.as_str() });
    let fields = [
        ("environment_url", opts.environment_url.as_deref()),
        ("log_url", opts.log_url.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            body[name] = json!(v);
        }
    }
    if let Some(d) = &opts.description {
        body["description"] = json!(github_description(d));
    }
    let auto_inactive = match (state, opts.auto_inactive) {
        (DeploymentState::Success, None) => Some(false),
        (_, given) => given,
    };
    if let Some(a) = auto_inactive {
        body["auto_inactive"] = json!(a);
    }
    body
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;

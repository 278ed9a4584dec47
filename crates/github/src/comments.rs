//! The sticky pull-request comment (opt-in, `github.pr_comment`), the way
//! Vercel's bot keeps one: found by a hidden marker, edited in place, never
//! posted twice; and the deployments of an environment, for a `once`
//! destroy that has no table to remember them in.
//!
//! # Guarantees
//! - A comment is created only after every page of the pull request's
//!   comments was read and none carries the marker.
//! - The marker lives in the comment's own text, so a restarted daemon (or
//!   another replica) finds the same comment again.
//!
//! # Caveats
//! Two writers racing on the same pull request could each find no comment
//! and both create one. previewd delivers a preview's reports one at a
//! time, in order, so its own writers never race.

use crate::client::{GithubClient, Step};
use crate::deployment::DeploymentId;
use crate::error::{ApiError, GithubError};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// GitHub's page size limit for these listings.
const PAGE: usize = 100;
/// A pull request with more comments than this many pages is read no
/// further (10,000 comments): a bound, not an expectation.
const MAX_PAGES: usize = 100;

/// A comment's id in its repository, as GitHub returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommentId(pub u64);

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct Deployment {
    id: u64,
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl GithubClient {
    /// GETs `path` and decodes a JSON list.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        step: Step,
    ) -> Result<Vec<T>, GithubError> {
        let (status, headers, bytes) = self.call_with(Method::GET, path, None, step).await?;
        let bytes = self.check(status, &headers, bytes).map_err(step)?;
        serde_json::from_slice(&bytes)
            .map_err(ApiError::Decode)
            .map_err(step)
    }

    /// The number of the open pull request whose head is `branch` of this
    /// repository (not a fork's branch of the same name), if there is one.
    #[tracing::instrument(name = "github.pull_request_of", skip_all,
        fields(repo = %self.full_name()))]
    pub async fn open_pull_request(&self, branch: &str) -> Result<Option<u64>, GithubError> {
        let head = format!("{}:{branch}", self.owner());
        let path = format!(
            "{}/pulls?state=open&head={}&per_page=1",
            self.repo_path(),
            encode(&head)
        );
        let found: Vec<PullRequest> = self.list(&path, GithubError::FindPullRequest).await?;
        Ok(found.first().map(|p| p.number))
    }

    /// The first comment on pull request `number` whose text contains
    /// `marker`, reading every page.
    #[tracing::instrument(name = "github.find_comment", skip_all,
        fields(repo = %self.full_name(), number))]
    pub async fn find_comment(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<CommentId>, GithubError> {
        for page in 1..=MAX_PAGES {
            let path = format!(
                "{}/issues/{number}/comments?per_page={PAGE}&page={page}",
                self.repo_path()
            );
            let comments: Vec<Comment> = self.list(&path, GithubError::ListComments).await?;
            let hit = comments
                .iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)));
            if let Some(c) = hit {
                return Ok(Some(CommentId(c.id)));
            }
            if comments.len() < PAGE {
                break;
            }
        }
        Ok(None)
    }

    /// Posts a new comment on pull request `number`.
    #[tracing::instrument(name = "github.create_comment", skip_all,
        fields(repo = %self.full_name(), number))]
    pub async fn create_comment(&self, number: u64, body: &str) -> Result<CommentId, GithubError> {
        let path = format!("{}/issues/{number}/comments", self.repo_path());
        let step: Step = GithubError::CreateComment;
        let payload = json!({ "body": body });
        let (status, headers, bytes) = self
            .call_with(Method::POST, &path, Some(&payload), step)
            .await?;
        let bytes = self.check(status, &headers, bytes).map_err(step)?;
        let c: Comment = serde_json::from_slice(&bytes)
            .map_err(ApiError::Decode)
            .map_err(step)?;
        Ok(CommentId(c.id))
    }

    /// Replaces the text of comment `id`.
    #[tracing::instrument(name = "github.update_comment", skip_all,
        fields(repo = %self.full_name(), id = id.0))]
    pub async fn update_comment(&self, id: CommentId, body: &str) -> Result<(), GithubError> {
        let path = format!("{}/issues/comments/{}", self.repo_path(), id.0);
        let step: Step = GithubError::UpdateComment;
        let payload = json!({ "body": body });
        let (status, headers, bytes) = self
            .call_with(Method::PATCH, &path, Some(&payload), step)
            .await?;
        self.check(status, &headers, bytes).map_err(step)?;
        Ok(())
    }

    /// Keeps one comment carrying `marker` on the open pull request of
    /// `branch`, with `body` as its text (which must contain the marker).
    /// Returns false when the branch has no open pull request.
    pub async fn upsert_comment(
        &self,
        branch: &str,
        marker: &str,
        body: &str,
    ) -> Result<bool, GithubError> {
        let Some(number) = self.open_pull_request(branch).await? else {
            return Ok(false);
        };
        self.write_comment(number, marker, body, true).await
    }

    /// Writes `body` (which must contain `marker`) as the comment carrying
    /// `marker` on pull request `number`: edits the one found, or posts it
    /// when none is found and `may_create`. Returns whether it wrote one.
    pub async fn write_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
        may_create: bool,
    ) -> Result<bool, GithubError> {
        debug_assert!(body.contains(marker), "the body must carry its marker");
        match self.find_comment(number, marker).await? {
            Some(id) => self.update_comment(id, body).await?,
            None if may_create => {
                self.create_comment(number, body).await?;
            }
            None => return Ok(false),
        }
        Ok(true)
    }

    /// The deployments of `environment`, newest first (GitHub's order),
    /// the first page of 100: a `once` destroy, which has no table, finds
    /// the branch's deployments this way to mark them inactive.
    #[tracing::instrument(name = "github.list_deployments", skip_all,
        fields(repo = %self.full_name(), environment))]
    pub async fn list_deployments(
        &self,
        environment: &str,
    ) -> Result<Vec<DeploymentId>, GithubError> {
        let path = format!(
            "{}/deployments?environment={}&per_page={PAGE}",
            self.repo_path(),
            encode(environment)
        );
        let found: Vec<Deployment> = self.list(&path, GithubError::ListDeployments).await?;
        Ok(found.into_iter().map(|d| DeploymentId(d.id)).collect())
    }
}

//! The GitHub REST client previewd reports through: deployments and their
//! statuses, authenticated by a token or as a GitHub App installation.

use crate::app_auth::{AppSigner, InstallationToken};
use crate::deployment::{DeploymentId, DeploymentState, StatusOpts, deployment_body, status_body};
use crate::error::{ApiError, GithubError};
use crate::{Secret, http};
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;

pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// `User-Agent` on every request; GitHub refuses requests without one.
pub const USER_AGENT: &str = concat!("previewd/", env!("CARGO_PKG_VERSION"));
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const API_VERSION: &str = "2022-11-28";

/// How previewd proves who it is to GitHub.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A personal access token or an Actions `GITHUB_TOKEN`.
    Token(Secret),
    /// A GitHub App installed on the repository. `private_key_pem` is the
    /// key GitHub generated for the App (PKCS#1; PKCS#8 is accepted too).
    App {
        app_id: u64,
        installation_id: u64,
        private_key_pem: Secret,
    },
}

/// Everything a [`GithubClient`] needs; [`GithubConfig::new`] fills in the
/// defaults.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub
    /// Enterprise Server.
    pub api_url: String,
    pub owner: String,
    pub repo: String,
    pub user_agent: String,
    /// Per request, connecting included.
    pub timeout: Duration,
    pub auth: Auth,
}

impl GithubConfig {
    pub fn new(owner: impl Into<String>, repo: impl Into<String>, auth: Auth) -> Self {
        GithubConfig {
            api_url: DEFAULT_API_URL.to_owned(),
            owner: owner.into(),
            repo: repo.into(),
            user_agent: USER_AGENT.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            auth,
        }
    }
}

enum AuthState {
    Token(Secret),
    App(Box<AppState>),
}

struct AppState {
    signer: AppSigner,
    installation_id: u64,
    /// The current installation token. The lock is held across a renewal
    /// so that concurrent calls wait for one exchange instead of each
    /// minting a token of their own.
    cached: Mutex<Option<InstallationToken>>,
}

/// Talks to one repository's deployments API. Share it behind an `Arc`:
/// the App installation token it caches is meant to be reused.
///
/// # Caveats
/// Creating a deployment is not idempotent on GitHub's side: if a
/// `create_deployment` times out after GitHub acted, a retry makes a second
/// deployment. Keep the returned id and post statuses to it.
pub struct GithubClient {
    http: reqwest::Client,
    /// Without a trailing slash.
    api_url: String,
    owner: String,
    repo: String,
    auth: AuthState,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Which step a request belongs to, to name it in the error.
pub(crate) type Step = fn(ApiError) -> GithubError;

impl GithubClient {
    /// Checks the configuration (URL, names, key) and builds the client;
    /// no request is made.
    pub fn new(config: GithubConfig) -> Result<Self, GithubError> {
        let api_url = check_api_url(&config.api_url)?;
        check_name("owner", &config.owner)?;
        check_name("repo", &config.repo)?;
        let auth = match config.auth {
            Auth::Token(token) if token.is_empty() => {
                return Err(config_error("auth.token", "must not be empty"));
            }
            Auth::Token(token) => AuthState::Token(token),
            Auth::App {
                app_id,
                installation_id,
                private_key_pem,
            } => AuthState::App(Box::new(AppState {
                signer: AppSigner::new(app_id, &private_key_pem).map_err(GithubError::AppKey)?,
                installation_id,
                cached: Mutex::new(None),
            })),
        };
        let http = http::client(&config.user_agent, config.timeout, true)
            .map_err(GithubError::HttpClient)?;
        Ok(GithubClient {
            http,
            api_url,
            owner: config.owner,
            repo: config.repo,
            auth,
        })
    }

    /// `owner/repo`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// Creates a deployment of `commit_sha` to `environment` (see
    /// [`crate::environment_for_branch`]): transient, not production, never
    /// auto-merged, with no required status checks.
    ///
    /// GitHub's 202 (it merged the default branch first) and 409 come back
    /// as retryable errors; 422 (unknown ref, bad field) is terminal and
    /// carries GitHub's message.
    #[tracing::instrument(name = "github.create_deployment", skip_all,
        fields(repo = %self.full_name(), environment = environment))]
    pub async fn create_deployment(
        &self,
        commit_sha: &str,
        environment: &str,
        description: &str,
    ) -> Result<DeploymentId, GithubError> {
        let path = format!("/repos/{}/{}/deployments", self.owner, self.repo);
        let body = deployment_body(commit_sha, environment, description);
        let step: Step = GithubError::CreateDeployment;
        let (status, headers, bytes) = self.call(&path, &body, step).await?;
        if status == 202 {
            let message = crate::error::github_message(&bytes);
            return Err(step(ApiError::Status {
                status,
                message,
                retryable: true,
            }));
        }
        let bytes = self.check(status, &headers, bytes).map_err(step)?;
        let created: Created = serde_json::from_slice(&bytes)
            .map_err(ApiError::Decode)
            .map_err(step)?;
        tracing::debug!(deployment_id = created.id, "deployment created");
        Ok(DeploymentId(created.id))
    }

    /// Posts a status to a deployment. For `success` use
    /// [`StatusOpts::ready`]; `auto_inactive` defaults to false there.
    #[tracing::instrument(name = "github.create_status", skip_all,
        fields(repo = %self.full_name(), deployment_id = deployment_id.0, state = %state))]
    pub async fn create_status(
        &self,
        deployment_id: DeploymentId,
        state: DeploymentState,
        opts: &StatusOpts,
    ) -> Result<(), GithubError> {
        let path = format!(
            "/repos/{}/{}/deployments/{}/statuses",
            self.owner, self.repo, deployment_id
        );
        let body = status_body(state, opts);
        let step: Step = GithubError::CreateStatus;
        let (status, headers, bytes) = self.call(&path, &body, step).await?;
        self.check(status, &headers, bytes).map_err(step)?;
        tracing::debug!("deployment status created");
        Ok(())
    }

    /// The token for the next call: the configured one, or a cached
    /// installation token, renewed when it is within five minutes of dying.
    async fn bearer(&self) -> Result<Secret, GithubError> {
        let app = match &self.auth {
            AuthState::Token(token) => return Ok(token.clone()),
            AuthState::App(app) => app,
        };
        let mut cached = app.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(Utc::now())) {
            return Ok(t.token.clone());
        }
        let step: Step = GithubError::InstallationToken;
        let jwt = app.signer.jwt(Utc::now()).map_err(GithubError::AppKey)?;
        let path = format!("/app/installations/{}/access_tokens", app.installation_id);
        let (status, headers, bytes) = self
            .post(&path, &jwt, &serde_json::json!({}))
            .await
            .map_err(step)?;
        // Not `check`: a 401 here means a wrong App id or key, which no
        // renewal cures.
        let bytes = if (200..300).contains(&status) {
            bytes
        } else {
            let now = Utc::now().timestamp();
            return Err(step(ApiError::from_response(
                status, &headers, &bytes, now, false,
            )));
        };
        let fresh: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(ApiError::Decode)
            .map_err(step)?;
        tracing::debug!(expires_at = %fresh.expires_at, "installation token renewed");
        let token = InstallationToken {
            token: Secret::new(fresh.token),
            expires_at: fresh.expires_at,
        };
        *cached = Some(token.clone());
        Ok(token.token)
    }

    /// Sends one JSON POST with GitHub's headers; any answer is returned.
    async fn post(
        &self,
        path: &str,
        bearer: &Secret,
        body: &serde_json::Value,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ApiError> {
        self.send(Method::POST, path, bearer, Some(body)).await
    }

    /// Sends one request with GitHub's headers (`path` may carry a query);
    /// any answer is returned.
    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: &Secret,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .bearer_auth(bearer.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(ApiError::Transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(ApiError::Transport)?;
        tracing::debug!(status, path, "github answered");
        Ok((status, headers, bytes.to_vec()))
    }

    /// One authenticated POST. A 401 under App auth drops the cached
    /// token, so the retry mints a new one.
    async fn call(
        &self,
        path: &str,
        body: &serde_json::Value,
        step: Step,
    ) -> Result<(u16, HeaderMap, Vec<u8>), GithubError> {
        self.call_with(Method::POST, path, Some(body), step).await
    }

    /// One authenticated call of any method, as [`GithubClient::call`].
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        step: Step,
    ) -> Result<(u16, HeaderMap, Vec<u8>), GithubError> {
        let bearer = self.bearer().await?;
        let answer = self.send(method, path, &bearer, body).await.map_err(step)?;
        if let (401, AuthState::App(app)) = (answer.0, &self.auth) {
            *app.cached.lock().await = None;
        }
        Ok(answer)
    }

    /// `/repos/{owner}/{repo}`, the prefix of every repository path.
    pub(crate) fn repo_path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.repo)
    }

    /// The repository owner, as a pull request's `head` filter wants it.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// Passes a 2xx body through; classifies anything else.
    pub(crate) fn check(
        &self,
        status: u16,
        headers: &HeaderMap,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, ApiError> {
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let renewable = matches!(self.auth, AuthState::App(_));
        let now = Utc::now().timestamp();
        Err(ApiError::from_response(
            status, headers, &bytes, now, renewable,
        ))
    }
}

fn config_error(field: &'static str, rule: impl Into<String>) -> GithubError {
    GithubError::Config {
        field,
        rule: rule.into(),
    }
}

fn check_api_url(raw: &str) -> Result<String, GithubError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| config_error("api_url", format!("not a URL ({e}): {raw:?}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error("api_url", "must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error("api_url", "must have no query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Owner and repository names go into URL paths: GitHub's own character
/// set keeps them from adding segments or queries.
fn check_name(field: &'static str, name: &str) -> Result<(), GithubError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(config_error(
            field,
            format!("must be a GitHub name of letters, digits, '-', '_' and '.' (found {name:?})"),
        ))
    }
}

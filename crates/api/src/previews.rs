//! `GET/DELETE /v1/previews/...` and `/readyz`.

use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use previewd_core::command::Command;
use previewd_core::key::PreviewKey;
use previewd_core::model::*;
use serde::{Deserialize, Serialize};

/// A preview as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewView {
    pub project: String,
    pub branch: String,
    pub slug: String,
    pub host: String,
    pub desired: Desired,
    pub phase: Phase,
    pub url: Option<String>,
    pub message: Option<String>,
    pub generation: i64,
    pub observed_generation: i64,
    pub commit_sha: Option<String>,
    pub ai_run_id: Option<String>,
    pub conditions: Conditions,
    pub last_error: Option<LastError>,
    pub rule_priority: Option<i32>,
    /// The listener of the pool the preview is placed on, once it is.
    pub listener_arn: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub next_reconcile_at: Timestamp,
    pub status_url: String,
    /// Asked to sleep (`sleep.enabled`): scaled to zero, or on its way
    /// there; a `Sleeping` preview that is not asleep is waking.
    #[serde(default)]
    pub asleep: bool,
}

/// Everything but RFC 3986's unreserved characters is escaped, `/` too,
/// so a branch is one path segment.
pub(crate) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn status_url(branch: &str) -> String {
    format!("/v1/previews/{}", utf8_percent_encode(branch, SEGMENT))
}

/// A preview's status URL, naming its project when several are served
/// (a branch alone is then ambiguous).
pub fn status_url_of(key: &PreviewKey, with_project: bool) -> String {
    let url = status_url(&key.branch);
    if with_project {
        format!(
            "{url}?project={}",
            utf8_percent_encode(&key.project, SEGMENT)
        )
    } else {
        url
    }
}

/// The view of `p` as `state` shows it: its project's domain, and a
/// status URL naming the project when several are served.
fn view(state: &AppState, p: Preview) -> PreviewView {
    let with_project = state.several();
    let key = p.key.clone();
    let mut v = PreviewView::new(p, &state.domain_of(&key.project));
    v.status_url = status_url_of(&key, with_project);
    v
}

impl PreviewView {
    pub fn new(p: Preview, domain: &str) -> Self {
        Self {
            host: format!("{}.{domain}", p.host_label),
            status_url: status_url(&p.key.branch),
            project: p.key.project,
            branch: p.key.branch,
            slug: p.slug,
            desired: p.desired,
            phase: p.status.phase,
            url: p.status.url,
            message: p.status.message,
            generation: p.generation,
            observed_generation: p.status.observed_generation,
            commit_sha: p.spec.commit_sha,
            ai_run_id: p.spec.ai_run_id,
            conditions: p.status.conditions,
            last_error: p.status.last_error,
            rule_priority: p.rule_priority,
            listener_arn: p.listener_arn,
            created_at: p.created_at,
            updated_at: p.updated_at,
            expires_at: p.expires_at,
            next_reconcile_at: p.next_reconcile_at,
            asleep: p.asleep,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    phase: Option<String>,
    project: Option<String>,
    desired: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<PreviewView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let phase = q
        .phase
        .map(|p| {
            p.parse::<Phase>()
                .map_err(|e| ApiError::invalid("phase", e))
        })
        .transpose()?;
    let desired = q
        .desired
        .map(|d| {
            d.parse::<Desired>()
                .map_err(|e| ApiError::invalid("desired", e))
        })
        .transpose()?;
    if q.limit.is_some_and(|l| !(1..=10_000).contains(&l)) {
        return Err(ApiError::invalid("limit", "must be between 1 and 10000"));
    }
    // One project: its previews. Several: all, or those of `?project=`.
    let pool = state.pool();
    let project = match q.project.as_deref() {
        Some(name) => Some(pool.get(name).map(|p| p.name.clone()).ok_or_else(|| {
            ApiError::invalid("project", format!("{name:?} is not a configured project"))
        })?),
        None if state.several() => None,
        None => pool.iter().next().map(|p| p.name.clone()),
    };
    let filter = ListFilter {
        project,
        phase,
        desired,
        expired_at: None,
        limit: q.limit,
    };
    let rows = state.store.list(&filter).await?;
    Ok(Json(rows.into_iter().map(|p| view(&state, p)).collect()))
}

/// `?project=` on one preview's routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    pub(crate) project: Option<String>,
}

/// The key of `branch` in the project `?project=` names, or in the only
/// project. A retired project's previews can still be read and destroyed.
pub(crate) fn key_in(
    state: &AppState,
    project: Option<&str>,
    branch: &str,
) -> Result<PreviewKey, ApiError> {
    let pool = state.pool();
    let name = match project.map(str::trim).filter(|p| !p.is_empty()) {
        Some(asked) => pool.get(asked).map(|p| p.name.clone()).ok_or_else(|| {
            ApiError::invalid("project", format!("{asked:?} is not a configured project"))
        })?,
        None => pool.resolve(None)?.name.clone(),
    };
    PreviewKey::new(&name, branch).map_err(ApiError::key)
}

fn project_query(
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<Option<String>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    Ok(q.project)
}

pub async fn get_one(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<Json<PreviewView>, ApiError> {
    let Path(branch) = path.map_err(|e| ApiError::invalid("branch", e.body_text()))?;
    let key = key_in(&state, project_query(query)?.as_deref(), &branch)?;
    let p = state
        .store
        .get(&key)
        .await?
        .ok_or(ApiError::NotFound(branch))?;
    Ok(Json(view(&state, p)))
}

pub async fn destroy(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProjectQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<PreviewView>), ApiError> {
    let Path(branch) = path.map_err(|e| ApiError::invalid("branch", e.body_text()))?;
    let key = key_in(&state, project_query(query)?.as_deref(), &branch)?;
    let out = state
        .store
        .apply(&Command::Destroy(key), Utc::now())
        .await?
        .into_outcome()
        .ok_or(ApiError::NotFound(branch))?;
    Ok((StatusCode::ACCEPTED, Json(view(&state, out.preview))))
}

/// Ready when the store answers.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let probe = ListFilter {
        limit: Some(1),
        ..Default::default()
    };
    match state.store.list(&probe).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            // Logged here, once; the probe's reply says only what failed.
            tracing::warn!(error = %e, "readiness probe: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

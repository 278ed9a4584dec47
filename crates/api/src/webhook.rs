//! `POST /v1/github/webhook`: GitHub tells us a PR closed or a branch was
//! deleted, and the preview goes.
//!
//! The signature is checked (in constant time) before anything is read;
//! each `X-GitHub-Delivery` id is acted on once, so a replayed body is
//! dropped; events for other repositories are ignored.

use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use previewd_core::key::PreviewKey;
use previewd_github::{WebhookEvent, parse_event, verify_signature};
use serde_json::{Value, json};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::Unavailable(
            "no webhook secret is configured (PREVIEWD_GITHUB_WEBHOOK_SECRET)".into(),
        ));
    };
    let signature = header(&headers, "x-hub-signature-256").unwrap_or("");
    if !verify_signature(secret.as_bytes(), &body, signature) {
        return Err(ApiError::BadSignature);
    }
    let delivery = header(&headers, "x-github-delivery")
        .ok_or_else(|| ApiError::invalid("X-GitHub-Delivery", "header is required"))?;
    let event = header(&headers, "x-github-event")
        .ok_or_else(|| ApiError::invalid("X-GitHub-Event", "header is required"))?;
    let parsed = parse_event(event, &body).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let seen = previewd_core::ports::Delivery::of_body(delivery, event, &body);
    if !state
        .store
        .remember_delivery(&seen, chrono::Utc::now())
        .await?
    {
        tracing::info!(delivery, event, "webhook delivery seen before; dropped");
        return Ok((StatusCode::OK, Json(json!({ "duplicate": true }))));
    }
    let (repo, branch) = match parsed {
        WebhookEvent::Ping => return Ok((StatusCode::OK, Json(json!({ "pong": true })))),
        WebhookEvent::PullRequestClosed { repo, branch, .. }
        | WebhookEvent::BranchDeleted { repo, branch } => (repo, branch),
        WebhookEvent::Other(what) => {
            return Ok((StatusCode::ACCEPTED, Json(json!({ "ignored": what }))));
        }
    };
    if !repo.eq_ignore_ascii_case(&state.project) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "ignored": format!("repository {repo} is not {}", state.project) })),
        ));
    }
    let Ok(key) = PreviewKey::new(&state.project, &branch) else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "ignored": "not a valid branch name" })),
        ));
    };
    let out = state.store.apply_destroy(&key, chrono::Utc::now()).await?;
    if out.as_ref().is_some_and(|o| o.changed) {
        state.wake.notify_one();
    }
    tracing::info!(%key, event, found = out.is_some(), "webhook: destroying preview");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "branch": branch, "found": out.is_some() })),
    ))
}

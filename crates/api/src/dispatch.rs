//! `POST /v1/dispatch`: the QA tool's workflow contract, verbatim.

use crate::previews::status_url;
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, PreviewSpec};
use serde::Deserialize;
use serde_json::{Value, json};

/// Exactly the workflow's `workflow_dispatch` inputs. GitHub sends unset
/// optional inputs as empty strings, so `""` means absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    pub action: String,
    pub branch: String,
    #[serde(default)]
    pub ai_run_id: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub commit_sha: Option<String>,
}

fn present(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Parses a body, naming the field that is wrong, missing or unknown.
fn parse(body: &[u8]) -> Result<DispatchRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadJson(format!("body is not valid JSON: {inner}"));
        }
        let path = e.path().to_string();
        let message = inner.to_string();
        let field = if path == "." {
            message.split('`').nth(1).unwrap_or("body").to_owned()
        } else {
            path
        };
        let rule = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::invalid(field, rule)
    })
}

fn validate_commit(sha: &str) -> Result<String, ApiError> {
    let ok = (7..=40).contains(&sha.len()) && sha.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::invalid(
            "commit_sha",
            "must be 7 to 40 hexadecimal characters",
        ));
    }
    Ok(sha.to_ascii_lowercase())
}

fn validate_callback(url: &str) -> Result<(), ApiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or("");
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ApiError::invalid(
            "callback_url",
            "must be an http:// or https:// URL with a host, at most 2048 characters",
        ));
    }
    Ok(())
}

fn validate_run_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 256 || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "ai_run_id",
            "must be at most 256 characters with no control characters",
        ));
    }
    Ok(())
}

pub async fn dispatch(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = parse(&body)?;
    let key = PreviewKey::new(&state.project, &req.branch).map_err(|e| match e {
        previewd_core::key::KeyError::Branch(rule) => ApiError::invalid("branch", rule.to_string()),
        previewd_core::key::KeyError::Project(rule) => {
            ApiError::invalid("project", rule.to_string())
        }
    })?;
    let now = Utc::now();
    let (changed, preview) = match req.action.as_str() {
        "deploy" => {
            let commit = present(&req.commit_sha).ok_or_else(|| {
                ApiError::invalid("commit_sha", "is required for action \"deploy\"")
            })?;
            let commit = validate_commit(&commit)?;
            let callback_url = present(&req.callback_url);
            if let Some(url) = &callback_url {
                validate_callback(url)?;
                let policy = state.callback_policy.as_deref();
                if let Err(why) = policy.map_or(
                    Err("no callback hosts are allowed (callbacks.allowed_hosts)".to_string()),
                    |p| p.allows(url),
                ) {
                    return Err(ApiError::invalid("callback_url", why));
                }
            }
            let ai_run_id = present(&req.ai_run_id);
            if let Some(id) = &ai_run_id {
                validate_run_id(id)?;
            }
            let spec = PreviewSpec {
                commit_sha: Some(commit),
                ai_run_id,
                callback_url,
                ..Default::default()
            };
            // TTL from this deploy, but never past the preview's maximum
            // lifetime counted from when it was first created.
            let created = match state.store.get(&key).await? {
                Some(p) if p.status.phase != previewd_core::Phase::Deleted => p.created_at,
                _ => now,
            };
            let ttl = chrono::Duration::from_std(state.ttl).unwrap_or(chrono::Duration::MAX);
            let max =
                chrono::Duration::from_std(state.max_lifetime).unwrap_or(chrono::Duration::MAX);
            let expires_at = [now.checked_add_signed(ttl), created.checked_add_signed(max)]
                .into_iter()
                .flatten()
                .min();
            let out = state
                .store
                .apply_deploy(
                    &DeployRequest {
                        key: key.clone(),
                        spec,
                        expires_at,
                    },
                    &state.naming,
                    now,
                )
                .await?;
            (out.changed, Some(out.preview))
        }
        "destroy" => match state.store.apply_destroy(&key, now).await? {
            Some(out) => (out.changed, Some(out.preview)),
            None => (false, None),
        },
        _ => {
            return Err(ApiError::invalid(
                "action",
                "must be \"deploy\" or \"destroy\"",
            ));
        }
    };
    if changed {
        state.wake.notify_one();
    }
    tracing::info!(%key, action = %req.action, changed, "dispatch accepted");
    let body = json!({
        "project": key.project,
        "branch": key.branch,
        "action": req.action,
        "changed": changed,
        "found": preview.is_some(),
        "generation": preview.as_ref().map(|p| p.generation),
        "phase": preview.as_ref().map(|p| p.status.phase),
        "url": preview.as_ref().map(|p| format!("{}://{}.{}", state.url_scheme, p.host_label, state.naming.domain)),
        "status_url": status_url(&key.branch),
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let field = |body: &str| match parse(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"action":"deploy"}"#), "branch");
        assert_eq!(
            field(r#"{"action":"deploy","branch":"a","colour":"red"}"#),
            "colour"
        );
        assert_eq!(field(r#"{"action":"deploy","branch":7}"#), "branch");
        assert!(matches!(parse(b"{not json"), Err(ApiError::BadJson(_))));
    }
}

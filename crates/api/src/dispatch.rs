//! `POST /v1/dispatch`: the QA tool's workflow contract, verbatim.

use crate::previews::status_url;
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use previewd_core::decide::expires_at;
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
        // An unknown key `""` is still a refusal of the body.
        let field = if field.is_empty() {
            "body".to_owned()
        } else {
            field
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

/// A dispatch that passed every rule that needs no IO.
#[derive(Debug)]
pub(crate) enum Checked {
    Deploy { key: PreviewKey, spec: PreviewSpec },
    Destroy { key: PreviewKey },
}

/// Every rule of the contract that needs neither the store nor DNS; the
/// error names the field it is about.
pub(crate) fn check(req: &DispatchRequest, project: &str) -> Result<Checked, ApiError> {
    let key = PreviewKey::new(project, &req.branch).map_err(ApiError::key)?;
    match req.action.as_str() {
        "deploy" => {
            let commit = present(&req.commit_sha).ok_or_else(|| {
                ApiError::invalid("commit_sha", "is required for action \"deploy\"")
            })?;
            let commit = validate_commit(&commit)?;
            let callback_url = present(&req.callback_url);
            if let Some(url) = &callback_url {
                validate_callback(url)?;
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
            Ok(Checked::Deploy { key, spec })
        }
        "destroy" => Ok(Checked::Destroy { key }),
        _ => Err(ApiError::invalid(
            "action",
            "must be \"deploy\" or \"destroy\"",
        )),
    }
}

pub async fn dispatch(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = parse(&body)?;
    let checked = check(&req, &state.project)?;
    let now = Utc::now();
    let (key, changed, preview) = match checked {
        Checked::Deploy { key, spec } => {
            if let Some(url) = &spec.callback_url {
                // Resolved now, so that a name pointing inside is refused
                // before anything is written; the delivery checks again
                // at connect time.
                let policy = state.callback_policy.as_deref();
                let verdict = match policy {
                    Some(p) => p.vet(url).await,
                    None => {
                        Err("no callback hosts are allowed (callbacks.allowed_hosts)".to_string())
                    }
                };
                verdict.map_err(|why| ApiError::invalid("callback_url", why))?;
            }
            // A Deleted row's lifetime is over: a deploy starts a new one.
            let created = match state.store.get(&key).await? {
                Some(p) if p.status.phase != previewd_core::Phase::Deleted => Some(p.created_at),
                _ => None,
            };
            let expires_at = expires_at(now, created, state.ttl, state.max_lifetime);
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
            (key, out.changed, Some(out.preview))
        }
        Checked::Destroy { key } => match state.store.apply_destroy(&key, now).await? {
            Some(out) => (key, out.changed, Some(out.preview)),
            None => (key, false, None),
        },
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

    /// The field a refusal names, or a panic naming the refusal that names
    /// none.
    fn field_of(e: &ApiError) -> String {
        match e {
            ApiError::BadJson(_) => "body".into(),
            ApiError::Invalid { field, .. } => field.clone(),
            other => panic!("a dispatch refusal of an unexpected kind: {other:?}"),
        }
    }

    fn judge(body: &[u8]) {
        match parse(body).and_then(|req| check(&req, "acme/shop")) {
            Ok(Checked::Deploy { key, spec }) => {
                // What passes is well formed: a valid key, a lowercase sha.
                assert!(previewd_core::key::validate_branch(&key.branch).is_ok());
                let sha = spec.commit_sha.unwrap();
                assert!(
                    sha.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                );
            }
            Ok(Checked::Destroy { key }) => {
                assert!(previewd_core::key::validate_branch(&key.branch).is_ok());
            }
            Err(e) => {
                let field = field_of(&e);
                assert!(!field.is_empty(), "{e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,30}".prop_map(Value::from),
            prop_oneof![
                Just("deploy"),
                Just("destroy"),
                Just("qanote/issue-1"),
                Just("abc1234")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            let key = prop_oneof![
                Just("action".to_string()),
                Just("branch".to_string()),
                Just("commit_sha".to_string()),
                Just("ai_run_id".to_string()),
                Just("callback_url".to_string()),
                "\\PC{0,8}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_every_refusal_names_a_field(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            judge(&body);
        }

        #[test]
        fn arbitrary_json_never_panics_and_every_refusal_names_a_field(value in any_json()) {
            judge(value.to_string().as_bytes());
        }
    }
}

//! `POST /v1/dispatch`: the QA tool's workflow contract, verbatim. The
//! body is parsed here; the command is built by the contract's rules in
//! core (`DispatchRequest::command`) and applied through the store's one
//! write path.

use crate::previews::status_url_of;
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use previewd_core::command::Command;
pub use previewd_core::command::DispatchRequest;
use serde_json::{Value, json};

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

/// Resolves a deploy's callback host now, so that a name pointing inside
/// is refused before anything is written; the delivery checks again at
/// connect time. The one IO step between building a command and applying
/// it, shared with `previewd once`.
pub async fn vet_callback(
    policy: Option<&previewd_github::CallbackPolicy>,
    command: &Command,
) -> Result<(), ApiError> {
    let Some(url) = command.callback_url() else {
        return Ok(());
    };
    let verdict = match policy {
        Some(p) => p.vet(url).await,
        None => Err("no callback hosts are allowed (callbacks.allowed_hosts)".to_string()),
    };
    verdict.map_err(|why| ApiError::invalid("callback_url", why))
}

pub async fn dispatch(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = parse(&body)?;
    let pool = state.pool();
    let project = pool.resolve_for(req.project.as_deref(), &req.action)?;
    let template = &project.template;
    let command = req.command(&project.name, &template.naming, project.lifetime)?;
    vet_callback(state.callback_policy.as_deref(), &command).await?;
    let key = command.key().clone();
    let effect = state.store.apply(&command, Utc::now()).await?;
    let changed = effect.changed();
    let preview = effect.into_outcome().map(|out| out.preview);
    tracing::info!(%key, action = %req.action, changed, "dispatch accepted");
    let body = json!({
        "project": key.project,
        "branch": key.branch,
        "action": req.action,
        "changed": changed,
        "found": preview.is_some(),
        "generation": preview.as_ref().map(|p| p.generation),
        "phase": preview.as_ref().map(|p| p.status.phase),
        "url": preview.as_ref().map(|p| format!("{}://{}.{}", template.url_scheme, p.host_label, template.naming.domain)),
        "status_url": status_url_of(&key, state.several()),
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
        let lifetime = previewd_core::Lifetime {
            ttl: std::time::Duration::from_secs(3600),
            max_lifetime: std::time::Duration::from_secs(7200),
        };
        let naming = previewd_core::NamingConfig::default();
        let command = |req: DispatchRequest| Ok(req.command("acme/shop", &naming, lifetime)?);
        match parse(body).and_then(command) {
            Ok(Command::Deploy { request, .. }) => {
                // What passes is well formed: a valid key, a lowercase sha.
                let (key, spec) = (request.key, request.spec);
                assert!(previewd_core::key::validate_branch(&key.branch).is_ok());
                let sha = spec.commit_sha.unwrap();
                assert!(
                    sha.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                );
            }
            Ok(Command::Destroy(key) | Command::DestroyFor { key, .. }) => {
                assert!(previewd_core::key::validate_branch(&key.branch).is_ok());
            }
            Ok(other) => panic!("a dispatch built {other:?}"),
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

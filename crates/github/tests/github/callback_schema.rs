//! The callback body as published in `docs/callback.schema.json`: every
//! body previewd can owe a receiver, as the callback client really sends it
//! to a server on 127.0.0.1, validates against the schema; bodies that
//! break the contract do not.

use crate::fake::{Fake, Reply};
use previewd_core::Phase;
use previewd_core::outbox_report::{Action, Report, plan};
use previewd_github::{CallbackClient, CallbackConfig, CallbackPolicy, Secret};
use serde_json::{Value, json};
use std::time::Duration;

const SCHEMA: &str = include_str!("../../../../docs/callback.schema.json");

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the published schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the published schema is a valid 2020-12 schema")
}

fn errors(v: &jsonschema::Validator, body: &Value) -> Vec<String> {
    v.iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every report with a callback that `outbox_report::plan` can produce: both
/// actions, every phase, with and without the optional inputs. A Ready
/// preview always has a URL (`decide` sets it), the others may not.
fn reports() -> Vec<Report> {
    let mut out = Vec::new();
    for action in [Action::Deploy, Action::Destroy] {
        for phase in Phase::ALL {
            for (commit_sha, ai_run_id, message) in [
                (
                    Some("3f786850e387550fdab836ed7e6dc881de23001b"),
                    Some("run-981"),
                    Some("preview is ready"),
                ),
                (Some("4f2a9c1"), None, None),
                (
                    None,
                    Some(""),
                    Some("CreateRule: AccessDenied: elasticloadbalancing:CreateRule"),
                ),
            ] {
                out.push(Report {
                    project: "acme/shop".into(),
                    branch: "qanote/issue-42".into(),
                    generation: 3,
                    action,
                    phase,
                    url: Some("https://issue-42-preview.preview.example.com".into()),
                    message: message.map(Into::into),
                    commit_sha: commit_sha.map(Into::into),
                    ai_run_id: ai_run_id.map(Into::into),
                    callback_url: Some("https://qa.example.com/hook".into()),
                    superseded: None,
                });
            }
        }
    }
    out
}

#[tokio::test]
async fn every_callback_previewd_sends_matches_the_published_schema() {
    let fake = Fake::start(|_| Reply::json(204, json!(null))).await;
    let mut config = CallbackConfig::new(
        Secret::new("callback-shared-secret"),
        CallbackPolicy::new(["127.0.0.1:*"]).unwrap(),
    );
    config.timeout = Duration::from_secs(5);
    let client = CallbackClient::new(config).unwrap();
    let v = validator();
    let mut sent = 0;
    for (i, r) in reports().iter().enumerate() {
        let Some((_, body)) = plan(r).callback else {
            continue;
        };
        client
            .post(&format!("{}/hook", fake.url), &body, &format!("report-{i}"))
            .await
            .unwrap();
        sent += 1;
    }
    let received = fake.requests();
    assert_eq!(received.len(), sent);
    // Ready and Failed for a deploy, Deleted and Failed for a destroy.
    assert_eq!(sent, 4 * 3, "every end state of both actions is covered");
    for r in received {
        let body = r.json();
        let errs = errors(&v, &body);
        assert!(errs.is_empty(), "{body}: {errs:?}");
    }
}

#[test]
fn bodies_that_break_the_contract_do_not_match() {
    let v = validator();
    let good = json!({
        "ai_run_id": "run-981", "branch": "qanote/issue-42",
        "commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b", "action": "deploy",
        "state": "success", "environment_url": "https://issue-42-preview.example.com",
        "description": "preview is ready",
    });
    assert_eq!(errors(&v, &good), Vec::<String>::new());
    let broken = |key: &str, value: Value| {
        let mut b = good.clone();
        if value == json!("<absent>") {
            b.as_object_mut().unwrap().remove(key);
        } else {
            b[key] = value;
        }
        b
    };
    for (why, body) in [
        ("a missing branch", broken("branch", json!("<absent>"))),
        ("an empty branch", broken("branch", json!(""))),
        (
            "a state no callback carries",
            broken("state", json!("in_progress")),
        ),
        (
            "a destroy's state on a deploy",
            broken("state", json!("inactive")),
        ),
        (
            "success without a URL",
            broken("environment_url", Value::Null),
        ),
        (
            "an uppercase commit",
            broken("commit_sha", json!("3F786850E")),
        ),
        ("an unknown action", broken("action", json!("redeploy"))),
        ("an unknown key", broken("extra", json!(1))),
        ("a failure with a URL", broken("state", json!("failure"))),
    ] {
        assert!(!errors(&v, &body).is_empty(), "{why} passed: {body}");
    }
}

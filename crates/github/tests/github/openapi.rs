//! The bodies previewd POSTs to GitHub, checked against the request-body
//! schemas of GitHub's OpenAPI description (vendored verbatim in
//! `tests/data/github-openapi`, see its README). The bodies are the ones
//! the client really sends, recorded by the fake; the validator is a small
//! one written for these schemas and tested below on bodies that must fail.

use crate::fake::{Fake, Reply, token_client};
use previewd_github::deployment::DESCRIPTION_MAX;
use previewd_github::{DeploymentId, DeploymentState, StatusOpts, environment_for_branch};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CREATE_DEPLOYMENT: &str =
    include_str!("../data/github-openapi/create-deployment.request.json");
const CREATE_STATUS: &str =
    include_str!("../data/github-openapi/create-deployment-status.request.json");

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
const PREVIEW_URL: &str = "https://qanote-issue-42.preview.example.com/";

fn schema(text: &str) -> Value {
    serde_json::from_str(text).expect("vendored schema is JSON")
}

/// The schema keywords [`validate`] understands. Any other keyword in a
/// schema fails the test, so a rule the validator would skip cannot let a
/// body through unchecked.
const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "items",
    "maxLength",
    "oneOf",
    "nullable",
    "default",
    "description",
];

/// Appends to `errors` every way `value` breaks `schema` (OpenAPI 3.0's
/// subset of JSON Schema, as far as these schemas use it).
fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let s = schema
        .as_object()
        .unwrap_or_else(|| panic!("{at}: schema is not an object: {schema}"));
    if let Some(k) = s.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        panic!("{at}: schema keyword {k:?} is not supported by this validator");
    }
    if value.is_null() && s.get("nullable") == Some(&json!(true)) {
        return;
    }
    if let Some(branches) = s.get("oneOf") {
        let branches = branches.as_array().expect("oneOf is an array");
        let matching = branches
            .iter()
            .filter(|b| schema_errors(b, value).is_empty())
            .count();
        if matching != 1 {
            let n = branches.len();
            errors.push(format!("{at}: matches {matching} of {n} oneOf branches"));
        }
    }
    if let Some(ty) = s.get("type") {
        let ty = ty.as_str().expect("type is a string");
        let ok = match ty {
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            other => panic!("{at}: unknown type {other:?}"),
        };
        if !ok {
            errors.push(format!("{at}: expected {ty}, found {value}"));
            return;
        }
    }
    let allowed = s
        .get("enum")
        .map(|e| e.as_array().expect("enum is an array"));
    if let Some(allowed) = allowed.filter(|a| !a.contains(value)) {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(max), Some(text)) = (s.get("maxLength"), value.as_str()) {
        let max = max.as_u64().expect("maxLength is a number") as usize;
        if text.chars().count() > max {
            errors.push(format!("{at}: longer than {max} characters"));
        }
    }
    if let Some(object) = value.as_object() {
        let required = s.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten() {
            let name = name.as_str().expect("required names are strings");
            if !object.contains_key(name) {
                errors.push(format!("{at}: required property {name:?} is missing"));
            }
        }
        let properties = s.get("properties").and_then(Value::as_object);
        for (name, v) in object {
            let here = format!("{at}.{name}");
            match (
                properties.and_then(|p| p.get(name)),
                s.get("additionalProperties"),
            ) {
                (Some(sub), _) => validate(sub, v, &here, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{here}: not allowed (additionalProperties: false)"));
                }
                (None, Some(extra @ Value::Object(_))) => validate(extra, v, &here, errors),
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (s.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn schema_errors(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(schema, value, "$", &mut errors);
    errors
}

/// Top-level keys the schema does not declare. GitHub's schemas leave
/// `additionalProperties` open, so a misspelt field would pass them and be
/// ignored by GitHub; previewd should send only fields GitHub documents.
fn undeclared(schema: &Value, body: &Value) -> Vec<String> {
    let declared = schema["properties"]
        .as_object()
        .expect("schema has properties");
    let keys = body.as_object().into_iter().flat_map(|o| o.keys());
    keys.filter(|k| !declared.contains_key(*k))
        .map(|k| format!("$.{k}: not declared by GitHub's schema"))
        .collect()
}

fn problems(schema: &Value, body: &Value) -> Vec<String> {
    let mut all = schema_errors(schema, body);
    all.extend(undeclared(schema, body));
    all
}

#[tokio::test]
async fn every_body_sent_to_github_matches_its_openapi_request_schema() {
    let fake = Fake::start(|r| {
        if r.path.ends_with("/deployments") {
            Reply::json(201, json!({ "id": 4242, "sha": SHA }))
        } else {
            Reply::json(201, json!({ "id": 1 }))
        }
    })
    .await;
    let client = token_client(&fake);

    let long = "step 3/5 failed:\n  AccessDenied on iam:PassRole\tfor the preview role ".repeat(6);
    let deep_branch = "feature/".repeat(40);
    let deployments = [
        ("qanote/issue-42", "previewd: qanote/issue-42"),
        ("main", ""),
        (deep_branch.as_str(), long.as_str()),
    ];
    for (branch, description) in deployments {
        let env = environment_for_branch(branch);
        client
            .create_deployment(SHA, &env, description)
            .await
            .unwrap();
    }

    let variants = [
        StatusOpts::default(),
        StatusOpts::described("Building preview"),
        StatusOpts::described(long.clone()),
        StatusOpts::ready(PREVIEW_URL, "Preview ready"),
        StatusOpts {
            environment_url: Some(PREVIEW_URL.into()),
            ..StatusOpts::default()
        },
        StatusOpts {
            environment_url: Some(PREVIEW_URL.into()),
            log_url: Some(format!("{PREVIEW_URL}logs")),
            description: Some(long.clone()),
            auto_inactive: Some(true),
        },
        StatusOpts {
            log_url: Some(format!("{PREVIEW_URL}logs")),
            description: Some("Torn down".into()),
            auto_inactive: Some(false),
            ..StatusOpts::default()
        },
    ];
    for state in DeploymentState::ALL {
        for opts in &variants {
            client
                .create_status(DeploymentId(4242), state, opts)
                .await
                .unwrap();
        }
    }

    let create_deployment = schema(CREATE_DEPLOYMENT);
    let create_status = schema(CREATE_STATUS);
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        deployments.len() + DeploymentState::ALL.len() * variants.len()
    );
    let (mut deployment_bodies, mut states, mut with_url, mut without_url) =
        (0, BTreeSet::new(), 0, 0);
    for r in &requests {
        assert_eq!(r.method, "POST");
        let body = r.json();
        let schema = match r.path.as_str() {
            "/repos/acme/shop/deployments" => {
                deployment_bodies += 1;
                &create_deployment
            }
            "/repos/acme/shop/deployments/4242/statuses" => {
                states.insert(body["state"].as_str().unwrap().to_owned());
                match body.get("environment_url") {
                    Some(_) => with_url += 1,
                    None => without_url += 1,
                }
                &create_status
            }
            other => panic!("unexpected request to {other}"),
        };
        let found = problems(schema, &body);
        assert!(
            found.is_empty(),
            "POST {}: {body:#} breaks GitHub's schema: {found:#?}",
            r.path
        );
        // The status schema states this limit in prose only.
        if let Some(d) = body.get("description").and_then(Value::as_str) {
            assert!(d.chars().count() <= DESCRIPTION_MAX, "{d:?}");
        }
    }
    // Every kind of body was seen, so no case passed by being absent.
    assert_eq!(deployment_bodies, deployments.len());
    let all: BTreeSet<String> = DeploymentState::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(states, all);
    assert!(with_url > 0 && without_url > 0, "{with_url} {without_url}");
}

#[test]
fn githubs_own_examples_pass() {
    // The request examples published next to the two schemas.
    let deployment = json!({
        "ref": "topic-branch",
        "auto_merge": false,
        "payload": "{ \"deploy\": \"migrate\" }",
        "description": "Deploy request from hubot",
        "required_contexts": ["ci/janky", "security/brakeman"],
    });
    let status = json!({
        "environment": "production",
        "state": "success",
        "log_url": "https://example.com/deployment/42/output",
        "description": "Deployment finished successfully.",
    });
    let found = problems(&schema(CREATE_DEPLOYMENT), &deployment);
    assert!(found.is_empty(), "{found:?}");
    let found = problems(&schema(CREATE_STATUS), &status);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn validator_rejects_a_state_outside_the_enum() {
    let body = json!({ "state": "done" });
    let errors = schema_errors(&schema(CREATE_STATUS), &body);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("$.state: \"done\" is not one of"),
        "{errors:?}"
    );
}

#[test]
fn validator_rejects_missing_required_fields() {
    let status = json!({ "environment_url": PREVIEW_URL });
    let errors = schema_errors(&schema(CREATE_STATUS), &status);
    assert_eq!(errors, ["$: required property \"state\" is missing"]);
    let deployment = json!({ "environment": "preview/x" });
    let errors = schema_errors(&schema(CREATE_DEPLOYMENT), &deployment);
    assert_eq!(errors, ["$: required property \"ref\" is missing"]);
}

#[test]
fn validator_rejects_wrong_types_and_honours_nullable() {
    let status = schema(CREATE_STATUS);
    let deployment = schema(CREATE_DEPLOYMENT);
    let bad = json!({ "state": "success", "auto_inactive": "false" });
    assert_eq!(
        schema_errors(&status, &bad),
        ["$.auto_inactive: expected boolean, found \"false\""]
    );
    let bad = json!({ "ref": SHA, "required_contexts": [1] });
    assert_eq!(
        schema_errors(&deployment, &bad),
        ["$.required_contexts[0]: expected string, found 1"]
    );
    // A deployment's description is nullable; a status's is not.
    assert!(schema_errors(&deployment, &json!({ "ref": SHA, "description": null })).is_empty());
    let null_description = json!({ "state": "queued", "description": null });
    assert_eq!(schema_errors(&status, &null_description).len(), 1);
}

#[test]
fn validator_checks_one_of() {
    let deployment = schema(CREATE_DEPLOYMENT);
    for payload in [json!({ "deploy": "migrate" }), json!("{}")] {
        let body = json!({ "ref": SHA, "payload": payload });
        assert!(schema_errors(&deployment, &body).is_empty(), "{body}");
    }
    let body = json!({ "ref": SHA, "payload": 5 });
    assert_eq!(
        schema_errors(&deployment, &body),
        ["$.payload: matches 0 of 2 oneOf branches"]
    );
}

#[test]
fn validator_enforces_additional_properties_false_and_max_length() {
    let closed = json!({
        "type": "object",
        "properties": { "name": { "type": "string", "maxLength": 3 } },
        "additionalProperties": false,
    });
    assert!(schema_errors(&closed, &json!({ "name": "été" })).is_empty());
    let mut errors = schema_errors(&closed, &json!({ "name": "abcd", "extra": 1 }));
    errors.sort();
    assert_eq!(
        errors,
        [
            "$.extra: not allowed (additionalProperties: false)",
            "$.name: longer than 3 characters",
        ]
    );
}

#[test]
fn undeclared_fields_are_caught_although_githubs_schema_allows_them() {
    // GitHub's schemas do not close the object: a typo passes the schema
    // (and GitHub would ignore it), so `problems` checks keys separately.
    let status = schema(CREATE_STATUS);
    let typo = json!({ "state": "success", "enviroment_url": PREVIEW_URL });
    assert!(schema_errors(&status, &typo).is_empty());
    assert_eq!(
        problems(&status, &typo),
        ["$.enviroment_url: not declared by GitHub's schema"]
    );
}

#[test]
#[should_panic(expected = "not supported by this validator")]
fn validator_refuses_keywords_it_does_not_check() {
    schema_errors(&json!({ "type": "string", "pattern": "^x" }), &json!("y"));
}

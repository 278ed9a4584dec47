//! The HTTP contract: validation, auth, and the previews resource.

use crate::*;
use previewd_sim::SimConfig;
use serde_json::json;

async fn field_of(app: &TestApp, body: serde_json::Value) -> (u16, String) {
    let (status, err) = app.api.post("/v1/dispatch", body).await;
    (status, err["field"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn bad_dispatches_are_refused_naming_the_field() {
    let app = spawn_app(SimConfig::default(), None).await;
    let cases = [
        (
            json!({"action": "deploy", "branch": "qanote/issue-1"}),
            "commit_sha",
        ),
        (
            json!({"action": "deploy", "branch": "a..b", "commit_sha": "abc1234"}),
            "branch",
        ),
        (
            json!({"action": "nuke", "branch": "main", "commit_sha": "abc1234"}),
            "action",
        ),
        (
            json!({"action": "deploy", "branch": "main", "commit_sha": "xyz"}),
            "commit_sha",
        ),
        (
            json!({"action": "deploy", "branch": "main", "commit_sha": "abc1234", "colour": "red"}),
            "colour",
        ),
        (
            json!({"action": "deploy", "branch": "main", "commit_sha": "abc1234", "callback_url": "ftp://x"}),
            "callback_url",
        ),
        (json!({"branch": "main"}), "action"),
    ];
    for (body, field) in cases {
        assert_eq!(
            field_of(&app, body.clone()).await,
            (422, field.to_owned()),
            "{body}"
        );
    }
    let (_, err) = app
        .api
        .post(
            "/v1/dispatch",
            json!({"action": "deploy", "branch": "a..b", "commit_sha": "abc1234"}),
        )
        .await;
    assert_eq!(err["error"], "branch: must not contain `..`");
    let resp = app
        .api
        .client
        .post(app.api.url("/v1/dispatch"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let (_, list) = app.api.get("/v1/previews").await;
    assert_eq!(list, json!([]), "nothing was half-written");
}

#[tokio::test]
async fn empty_optional_inputs_count_as_absent() {
    let app = spawn_app(SimConfig::default(), None).await;
    let body = json!({"action": "deploy", "branch": "main", "commit_sha": "abc1234", "ai_run_id": "", "callback_url": ""});
    let (status, _) = app.api.post("/v1/dispatch", body).await;
    assert_eq!(status, 202);
    let (_, p) = app.api.get("/v1/previews/main").await;
    assert_eq!(p["ai_run_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_api_wants_the_bearer_token() {
    let app = spawn_app(
        SimConfig::default(),
        Some("s3cret-token-for-the-e2e-tests-0001"),
    )
    .await;
    let url = app.api.url("/v1/previews");
    let none = app.api.client.get(&url).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let wrong = app
        .api
        .client
        .get(&url)
        .bearer_auth("s3cret-token-for-the-e2e-tests-000N")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let (status, _) = app.api.get("/v1/previews").await;
    assert_eq!(status, 200);
    let health = app
        .api
        .client
        .get(app.api.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "health needs no token");
    let ready = app
        .api
        .client
        .get(app.api.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn previews_are_listed_fetched_and_destroyed_by_branch() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-1", "abc1234"))
        .await;
    app.api
        .post("/v1/dispatch", deploy("feature/Foo", "abc1234"))
        .await;
    app.api
        .post("/v1/dispatch", deploy("feature-foo", "abc1234"))
        .await;
    let (_, list) = app.api.get("/v1/previews").await;
    let branches: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["branch"].as_str().unwrap())
        .collect();
    assert_eq!(branches, ["feature-foo", "feature/Foo", "qanote/issue-1"]);
    let slugs: std::collections::BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), 3, "look-alike branches get distinct slugs");
    // Raw slashes work as well as %2F.
    let (status, p) = app.api.get("/v1/previews/qanote/issue-1").await;
    assert_eq!(
        (status, p["host"].as_str()),
        (200, Some("issue-1-preview.preview.example.com"))
    );
    let (status, _) = app.api.get("/v1/previews/nope").await;
    assert_eq!(status, 404);
    let (status, _) = app.api.get("/v1/previews?phase=Bogus").await;
    assert_eq!(status, 422);
    let (status, p) = app.api.delete("/v1/previews/feature-foo").await;
    assert_eq!((status, p["desired"].as_str()), (202, Some("absent")));
    let (status, body) = app
        .api
        .post(
            "/v1/dispatch",
            json!({"action": "destroy", "branch": "never-deployed"}),
        )
        .await;
    assert_eq!((status, &body["found"]), (202, &json!(false)));
}

#[tokio::test]
async fn malformed_queries_get_the_json_error_shape() {
    let app = spawn_app(SimConfig::default(), None).await;
    for path in ["/v1/previews?limit=abc", "/v1/previews?colour=red"] {
        let (status, err) = app.api.get(path).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(err["field"], "query", "{path}: {err}");
    }
}

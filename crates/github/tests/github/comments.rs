//! The sticky pull-request comment and the deployment listing, against a
//! fake GitHub that keeps its comments like GitHub does: one comment per
//! pull request, found again by its marker, edited in place.

use crate::fake::{Fake, Recorded, Reply, assert_github_headers, token_client};
use axum::http::Method;
use previewd_github::{CommentId, DeploymentId, GithubError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const MARKER: &str = "<!-- previewd:preview acme/shop qanote/issue-42 -->";

/// Comments on pull request 7 of acme/shop, whose head is
/// `qanote/issue-42`; `others` unrelated comments come first, so finding
/// the marker takes paging once there are more than 100.
#[derive(Default)]
struct Thread {
    comments: Vec<(u64, String)>,
}

fn github(thread: Arc<Mutex<Thread>>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r| {
        let mut t = thread.lock().unwrap();
        match (r.method.clone(), r.path.as_str()) {
            (Method::GET, "/repos/acme/shop/pulls") => {
                if r.query.contains("head=acme%3Aqanote%2Fissue%2D42")
                    && r.query.contains("state=open")
                {
                    Reply::json(
                        200,
                        json!([{ "number": 7, "head": { "ref": "qanote/issue-42" } }]),
                    )
                } else {
                    Reply::json(200, json!([]))
                }
            }
            (Method::GET, "/repos/acme/shop/issues/7/comments") => {
                let page: usize = query(r, "page").parse().unwrap();
                let per: usize = query(r, "per_page").parse().unwrap();
                let list: Vec<Value> = t
                    .comments
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .map(|(id, body)| json!({ "id": id, "body": body, "user": { "login": "x" } }))
                    .collect();
                Reply::json(200, Value::Array(list))
            }
            (Method::POST, "/repos/acme/shop/issues/7/comments") => {
                let id = 1000 + t.comments.len() as u64;
                let body = r.json()["body"].as_str().unwrap().to_owned();
                t.comments.push((id, body.clone()));
                Reply::json(201, json!({ "id": id, "body": body }))
            }
            (Method::PATCH, path) if path.starts_with("/repos/acme/shop/issues/comments/") => {
                let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
                let body = r.json()["body"].as_str().unwrap().to_owned();
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = body.clone();
                        Reply::json(200, json!({ "id": id, "body": body }))
                    }
                    None => Reply::json(404, json!({ "message": "Not Found" })),
                }
            }
            _ => Reply::json(404, json!({ "message": "Not Found" })),
        }
    }
}

fn query(r: &Recorded, name: &str) -> String {
    r.query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing in {}", r.query))
        .to_owned()
}

fn body(phase: &str) -> String {
    format!("{MARKER}\n**Preview** {phase}")
}

#[tokio::test]
async fn one_comment_is_created_then_edited_in_place() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    let fake = Fake::start(github(thread.clone())).await;
    let client = token_client(&fake);
    assert!(
        client
            .upsert_comment("qanote/issue-42", MARKER, &body("Provisioning"))
            .await
            .unwrap()
    );
    assert!(
        client
            .upsert_comment("qanote/issue-42", MARKER, &body("Ready"))
            .await
            .unwrap()
    );
    // A new client (a restarted daemon) finds the same comment by its marker.
    let again = token_client(&fake);
    assert!(
        again
            .upsert_comment("qanote/issue-42", MARKER, &body("Deleted"))
            .await
            .unwrap()
    );

    let t = thread.lock().unwrap();
    assert_eq!(t.comments.len(), 1, "{:?}", t.comments);
    assert_eq!(t.comments[0].1, body("Deleted"));
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST)
        .count();
    assert_eq!(creates, 1);
    for r in fake.requests() {
        if r.method == Method::GET {
            assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
            assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
            assert_eq!(r.header("authorization"), Some("Bearer ghp_test"));
            assert!(r.body.is_empty(), "a GET carries no body");
        } else {
            assert_github_headers(&r, "ghp_test");
        }
    }
}

#[tokio::test]
async fn the_marker_is_found_past_the_first_page() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    {
        let mut t = thread.lock().unwrap();
        for i in 0..150 {
            t.comments.push((i, format!("LGTM #{i}")));
        }
        t.comments.push((150, body("Ready")));
    }
    let fake = Fake::start(github(thread.clone())).await;
    let client = token_client(&fake);
    assert_eq!(
        client.find_comment(7, MARKER).await.unwrap(),
        Some(CommentId(150))
    );
    assert!(
        client
            .upsert_comment("qanote/issue-42", MARKER, &body("Failed"))
            .await
            .unwrap()
    );
    let t = thread.lock().unwrap();
    assert_eq!(t.comments.len(), 151, "edited, not added");
    assert_eq!(t.comments[150].1, body("Failed"));
}

#[tokio::test]
async fn a_branch_without_an_open_pull_request_gets_no_comment() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    let fake = Fake::start(github(thread.clone())).await;
    let client = token_client(&fake);
    assert!(
        !client
            .upsert_comment("qanote/issue-43", MARKER, &body("Ready"))
            .await
            .unwrap()
    );
    assert!(thread.lock().unwrap().comments.is_empty());
    assert_eq!(fake.requests().len(), 1, "only the pull request lookup");
}

#[tokio::test]
async fn without_may_create_an_existing_comment_is_edited_but_none_is_posted() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    let fake = Fake::start(github(thread.clone())).await;
    let client = token_client(&fake);
    assert!(
        !client
            .write_comment(7, MARKER, &body("Deleted"), false)
            .await
            .unwrap(),
        "nothing to edit, and nothing posted"
    );
    assert!(thread.lock().unwrap().comments.is_empty());
    assert!(
        client
            .write_comment(7, MARKER, &body("Ready"), true)
            .await
            .unwrap()
    );
    assert!(
        client
            .write_comment(7, MARKER, &body("Deleted"), false)
            .await
            .unwrap()
    );
    let t = thread.lock().unwrap();
    assert_eq!(t.comments.len(), 1, "{:?}", t.comments);
    assert_eq!(t.comments[0].1, body("Deleted"));
}

#[tokio::test]
async fn a_refused_edit_is_an_error_naming_the_step() {
    let fake = Fake::start(|r: &Recorded| match r.method {
        Method::GET if r.path.ends_with("/pulls") => Reply::json(200, json!([{ "number": 7 }])),
        Method::GET => Reply::json(200, json!([{ "id": 5, "body": MARKER }])),
        _ => Reply::json(
            403,
            json!({ "message": "Resource not accessible by integration" }),
        ),
    })
    .await;
    let err = token_client(&fake)
        .upsert_comment("qanote/issue-42", MARKER, &body("Ready"))
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::UpdateComment(_)), "{err:?}");
    assert_eq!(err.label(), "update_comment");
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("Resource not accessible by integration"),
        "{err}"
    );
}

#[tokio::test]
async fn deployments_of_an_environment_are_listed_by_name() {
    let fake = Fake::start(|r: &Recorded| {
        if r.path == "/repos/acme/shop/deployments"
            && r.query
                .contains("environment=preview%2Fqanote%2Dissue%2D42")
        {
            Reply::json(
                200,
                json!([{ "id": 31, "environment": "preview/qanote-issue-42" }, { "id": 30 }]),
            )
        } else {
            Reply::json(200, json!([]))
        }
    })
    .await;
    let found = token_client(&fake)
        .list_deployments("preview/qanote-issue-42")
        .await
        .unwrap();
    assert_eq!(found, vec![DeploymentId(31), DeploymentId(30)]);
    assert_eq!(fake.only_request().method, Method::GET);
}

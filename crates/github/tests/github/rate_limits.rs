//! Rate limits, server errors and timeouts: what is retried and after how
//! long.

use crate::fake::{Fake, Reply, token_client};
use previewd_github::{
    Auth, DeploymentId, DeploymentState, GithubClient, GithubConfig, Secret, StatusOpts,
};
use serde_json::json;
use std::time::Duration;

async fn status_error(
    reply: impl Fn() -> Reply + Send + Sync + 'static,
) -> previewd_github::GithubError {
    let fake = Fake::start(move |_| reply()).await;
    token_client(&fake)
        .create_status(
            DeploymentId(1),
            DeploymentState::Queued,
            &StatusOpts::default(),
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn forbidden_with_retry_after_waits_that_long() {
    let err = status_error(|| {
        Reply::json(
            403,
            json!({ "message": "You have exceeded a secondary rate limit." }),
        )
        .header("retry-after", "30")
    })
    .await;
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(err.status(), Some(403));
}

#[tokio::test]
async fn exhausted_quota_waits_until_the_reset() {
    for status in [403, 429] {
        let reset = (chrono::Utc::now().timestamp() + 120).to_string();
        let err = status_error(move || {
            Reply::json(status, json!({ "message": "API rate limit exceeded" }))
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", reset.clone())
        })
        .await;
        assert!(err.is_retryable(), "{status}");
        let wait = err.retry_after().unwrap();
        assert!((115..=120).contains(&wait.as_secs()), "{status}: {wait:?}");
    }
}

#[tokio::test]
async fn too_many_requests_without_headers_waits_a_minute() {
    let err = status_error(|| Reply::json(429, json!({ "message": "slow down" }))).await;
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn a_permission_403_is_terminal() {
    let err = status_error(|| {
        Reply::json(
            403,
            json!({ "message": "Resource not accessible by integration" }),
        )
        .header("x-ratelimit-remaining", "4999")
    })
    .await;
    assert!(!err.is_retryable());
    assert_eq!(err.retry_after(), None);
    assert!(
        err.to_string()
            .contains("Resource not accessible by integration")
    );
}

#[tokio::test]
async fn not_found_is_terminal() {
    let err = status_error(|| Reply::json(404, json!({ "message": "Not Found" }))).await;
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn server_errors_are_retryable_without_a_delay() {
    for status in [500, 502, 503] {
        let err = status_error(move || Reply::json(status, json!({ "message": "oops" }))).await;
        assert!(err.is_retryable(), "{status}");
        assert_eq!(err.retry_after(), None);
        assert_eq!(err.status(), Some(status));
    }
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let fake =
        Fake::start(|_| Reply::json(201, json!({ "id": 1 })).after(Duration::from_secs(3))).await;
    let mut config = GithubConfig::new("acme", "shop", Auth::Token(Secret::new("t")));
    config.api_url = fake.url.clone();
    config.timeout = Duration::from_millis(200);
    let err = GithubClient::new(config)
        .unwrap()
        .create_deployment("abc", "preview/x", "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // A port that was just free: nobody listens there now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = GithubConfig::new("acme", "shop", Auth::Token(Secret::new("t")));
    config.api_url = format!("http://127.0.0.1:{port}");
    let err = GithubClient::new(config)
        .unwrap()
        .create_deployment("abc", "preview/x", "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

//! Callbacks: the signed request a receiver gets, the allowlist, and which
//! answers are retried.

use crate::fake::{Fake, Recorded, Reply};
use previewd_github::{
    CallbackAction, CallbackBody, CallbackClient, CallbackConfig, CallbackError, CallbackPolicy,
    DeploymentState, Secret, verify_signature,
};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "callback-shared-secret";

fn body() -> CallbackBody {
    CallbackBody {
        ai_run_id: Some("run-981".into()),
        branch: "qanote/issue-42".into(),
        commit_sha: Some("3f786850e387550fdab836ed7e6dc881de23001b".into()),
        action: CallbackAction::Deploy,
        state: DeploymentState::Success,
        environment_url: Some("https://issue-42-preview.example.com".into()),
        description: Some("Preview ready".into()),
    }
}

fn client(allow: &[&str], timeout: Duration) -> CallbackClient {
    let mut config = CallbackConfig::new(Secret::new(SECRET), CallbackPolicy::new(allow).unwrap());
    config.timeout = timeout;
    CallbackClient::new(config).unwrap()
}

/// The fake listens on 127.0.0.1 on a random port: `127.0.0.1` alone
/// would allow only 80 and 443.
fn loopback_client() -> CallbackClient {
    client(&["127.0.0.1:*"], Duration::from_secs(5))
}

/// The receiver's side: recompute the HMAC of the exact bytes received.
fn receiver_accepts(r: &Recorded) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let expected = format!("sha256={}", hex::encode(ring::hmac::sign(&key, &r.body)));
    let header = r.header("x-previewd-signature-256").unwrap();
    header == expected && verify_signature(SECRET.as_bytes(), &r.body, header)
}

#[tokio::test]
async fn a_callback_is_signed_json_with_the_idempotency_key() {
    let fake = Fake::start(|_| Reply::json(204, json!(null))).await;
    let url = format!("{}/hooks/qanote", fake.url);
    loopback_client()
        .post(&url, &body(), "report-17-3")
        .await
        .unwrap();

    let r = fake.only_request();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/qanote");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("report-17-3"));
    assert!(r.header("user-agent").unwrap().starts_with("previewd/"));
    assert!(receiver_accepts(&r), "signature matches the body");
    assert_eq!(
        r.json(),
        json!({
            "ai_run_id": "run-981",
            "branch": "qanote/issue-42",
            "commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b",
            "action": "deploy",
            "state": "success",
            "environment_url": "https://issue-42-preview.example.com",
            "description": "Preview ready",
        })
    );
}

#[tokio::test]
async fn a_destroy_failure_callback_has_nulls_where_nothing_is_known() {
    let fake = Fake::start(|_| Reply::json(200, json!({ "ok": true }))).await;
    let b = CallbackBody {
        ai_run_id: None,
        commit_sha: None,
        action: CallbackAction::Destroy,
        state: DeploymentState::Failure,
        environment_url: None,
        description: Some("DeleteRule: AccessDenied".into()),
        ..body()
    };
    loopback_client().post(&fake.url, &b, "k").await.unwrap();
    let r = fake.only_request();
    assert!(receiver_accepts(&r));
    assert_eq!(r.json()["action"], "destroy");
    assert_eq!(r.json()["state"], "failure");
    assert_eq!(r.json()["ai_run_id"], json!(null));
}

#[tokio::test]
async fn a_host_off_the_allowlist_is_never_called() {
    let fake = Fake::start(|_| Reply::json(200, json!({}))).await;
    let c = client(
        &["hooks.example.com", "*.qa.example.com"],
        Duration::from_secs(5),
    );
    let err = c.post(&fake.url, &body(), "k").await.unwrap_err();
    assert!(matches!(err, CallbackError::NotAllowed(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().starts_with("callback_url: "), "{err}");
    assert!(fake.requests().is_empty());
}

#[test]
fn the_allowlist_judges_scheme_host_and_address_range() {
    let p = CallbackPolicy::new([
        "hooks.example.com",
        "hooks.example.com:8080",
        "*.qa.example.org",
        "10.0.0.7:9000",
        "[::1]:9000",
        "localhost:3000",
    ])
    .unwrap();
    for ok in [
        "https://hooks.example.com/cb",
        "http://hooks.example.com:8080/cb",
        "https://HOOKS.example.com./cb",
        "https://a.qa.example.org/x",
        "https://a.b.qa.example.org/x",
        "http://10.0.0.7:9000/cb",
        "http://[::1]:9000/cb",
        "http://localhost:3000/cb",
    ] {
        assert_eq!(p.allows(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("https://qa.example.org/x", "not in the callback allowlist"),
        (
            "https://evil.com/hooks.example.com",
            "not in the callback allowlist",
        ),
        (
            "https://hooks.example.com.evil.com/",
            "not in the callback allowlist",
        ),
        ("ftp://hooks.example.com/", "http or https"),
        (
            "https://user:pw@hooks.example.com/",
            "user name or password",
        ),
        ("http://10.0.0.8/", "private"),
        ("http://127.0.0.1/", "private"),
        ("http://hooks.example.com:8081/", "port 8081 is not allowed"),
        ("http://10.0.0.7/", "port 80 is not allowed"),
        ("not a url", "not an absolute URL"),
    ] {
        let e = p.allows(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn a_wildcard_still_refuses_internal_addresses_unless_listed() {
    let p = CallbackPolicy::new(["*", "192.168.1.20"]).unwrap();
    assert_eq!(p.allows("https://anything.example.net/cb"), Ok(()));
    assert_eq!(p.allows("https://140.82.112.3/cb"), Ok(()));
    assert_eq!(p.allows("http://192.168.1.20/cb"), Ok(()));
    for internal in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/",
        "http://127.1/",
        "http://0x7f000001/",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fd12::1]/",
        "http://172.20.0.1/",
        "http://localhost/",
        "http://app.localhost/",
    ] {
        assert!(p.allows(internal).is_err(), "{internal}");
    }
    assert!(
        CallbackPolicy::default()
            .allows("https://hooks.example.com/")
            .is_err()
    );
}

async fn post_answered(
    reply: impl Fn() -> Reply + Send + Sync + 'static,
) -> (CallbackError, usize) {
    let fake = Fake::start(move |_| reply()).await;
    let err = loopback_client()
        .post(&fake.url, &body(), "k")
        .await
        .unwrap_err();
    (err, fake.requests().len())
}

#[tokio::test]
async fn client_errors_are_terminal_except_408_and_429() {
    for status in [400, 401, 404, 410, 422] {
        let (err, _) = post_answered(move || Reply::json(status, json!({ "error": "no" }))).await;
        assert!(
            matches!(err, CallbackError::Refused { .. }),
            "{status}: {err:?}"
        );
        assert!(!err.is_retryable(), "{status}");
    }
    let (err, _) = post_answered(|| Reply::json(408, json!({}))).await;
    assert!(err.is_retryable());
    let (err, _) = post_answered(|| Reply::json(429, json!({})).header("retry-after", "7")).await;
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn server_errors_are_retryable() {
    for status in [500, 502, 503] {
        let (err, _) = post_answered(move || Reply::json(status, json!({}))).await;
        assert!(
            matches!(err, CallbackError::Unavailable { .. }),
            "{status}: {err:?}"
        );
        assert!(err.is_retryable(), "{status}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (err, requests) =
        post_answered(|| Reply::json(302, json!({})).header("location", "http://169.254.169.254/"))
            .await;
    assert_eq!(requests, 1);
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("redirects are not followed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let fake = Fake::start(|_| Reply::json(200, json!({})).after(Duration::from_secs(3))).await;
    let c = client(&["127.0.0.1:*"], Duration::from_millis(200));
    let err = c.post(&fake.url, &body(), "k").await.unwrap_err();
    assert!(matches!(err, CallbackError::Send(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_bad_idempotency_key_or_empty_secret_is_refused() {
    let err = loopback_client()
        .post("http://127.0.0.1:9/", &body(), "has space")
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("idempotency_key: "), "{err}");
    let config = CallbackConfig::new(Secret::new(""), CallbackPolicy::default());
    assert!(CallbackClient::new(config).is_err());
}

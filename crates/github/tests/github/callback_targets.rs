//! Where a callback may go, end to end: a real receiver on 127.0.0.1, names
//! resolved through the allowlist (`localhost` via /etc/hosts), ports, and
//! URLs kept out of errors.

use crate::fake::{Fake, Reply};
use previewd_github::{
    CallbackAction, CallbackBody, CallbackClient, CallbackConfig, CallbackError, CallbackPolicy,
    DeploymentState, Secret,
};
use serde_json::json;
use std::time::Duration;

fn body() -> CallbackBody {
    CallbackBody {
        ai_run_id: None,
        branch: "qanote/issue-7".into(),
        commit_sha: None,
        action: CallbackAction::Deploy,
        state: DeploymentState::Success,
        environment_url: None,
        description: None,
    }
}

fn client(allow: &[String]) -> CallbackClient {
    let mut config = CallbackConfig::new(Secret::new("s"), CallbackPolicy::new(allow).unwrap());
    config.timeout = Duration::from_secs(5);
    CallbackClient::new(config).unwrap()
}

fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url).unwrap().port().unwrap()
}

#[tokio::test]
async fn a_loopback_receiver_is_called_only_when_its_port_is_listed() {
    let fake = Fake::start(|_| Reply::json(204, json!(null))).await;
    let port = port_of(&fake.url);
    let url = format!("{}/cb", fake.url);

    for refused in ["127.0.0.1".to_owned(), format!("127.0.0.1:{}", port ^ 1)] {
        let err = client(std::slice::from_ref(&refused))
            .post(&url, &body(), "k")
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallbackError::NotAllowed(_)),
            "{refused}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("port {port} is not allowed")),
            "{refused}: {err}"
        );
    }
    assert!(fake.requests().is_empty());

    for allowed in ["127.0.0.1:*".to_owned(), format!("127.0.0.1:{port}")] {
        client(&[allowed]).post(&url, &body(), "k").await.unwrap();
    }
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_called_only_when_its_ip_is_listed() {
    let fake = Fake::start(|_| Reply::json(204, json!(null))).await;
    let url = format!("http://localhost:{}/cb?token=s3cret", port_of(&fake.url));

    // The name passes the allowlist; every address it resolves to is
    // internal, so the resolver leaves reqwest nothing to connect to.
    let err = client(&["localhost:*".into()])
        .post(&url, &body(), "k")
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::NotAllowed(_)), "{err:?}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("host localhost resolves only to internal addresses (127.0.0.1"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
    assert!(fake.requests().is_empty());

    client(&["localhost:*".into(), "127.0.0.1".into()])
        .post(&url, &body(), "k")
        .await
        .unwrap();
    assert_eq!(fake.only_request().path, "/cb");
}

#[tokio::test]
async fn a_dispatch_time_vet_refuses_a_name_resolving_to_loopback() {
    let p = CallbackPolicy::new(["localhost:*"]).unwrap();
    let err = p.vet("http://localhost:8080/cb").await.unwrap_err();
    assert!(
        err.starts_with("host localhost resolves only to internal addresses (127.0.0.1"),
        "{err}"
    );
    let p = CallbackPolicy::new(["localhost:*", "127.0.0.1"]).unwrap();
    assert_eq!(p.vet("http://localhost:8080/cb").await, Ok(()));
}

#[tokio::test]
async fn a_send_error_names_neither_the_url_nor_its_token() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hooks/secret-path?token=s3cret");
    let err = client(&["127.0.0.1:*".into()])
        .post(&url, &body(), "k")
        .await
        .unwrap_err();
    assert!(matches!(err, CallbackError::Send(_)), "{err:?}");
    assert!(err.is_retryable());
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        texts.push(s.to_string());
        source = s.source();
    }
    for t in texts {
        assert!(!t.contains("s3cret") && !t.contains("secret-path"), "{t}");
    }
}

#[tokio::test]
async fn a_redirect_is_reported_by_its_host_only() {
    let fake = Fake::start(|_| {
        Reply::json(302, json!({})).header("location", "http://169.254.169.254/x?token=s3cret")
    })
    .await;
    let err = client(&["127.0.0.1:*".into()])
        .post(&fake.url, &body(), "k")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("redirects are not followed (Location: host 169.254.169.254)"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

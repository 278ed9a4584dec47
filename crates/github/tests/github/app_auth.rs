//! GitHub App auth: the JWT sent to the token exchange, the installation
//! token's reuse, renewal before expiry, and recovery from a revoked token.

use crate::fake::{Fake, Recorded, Reply, assert_github_headers};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{SecondsFormat, TimeDelta, Utc};
use previewd_github::app_auth::parse_private_key_pem;
use previewd_github::{
    Auth, DeploymentId, DeploymentState, GithubClient, GithubConfig, GithubError, Secret,
    StatusOpts,
};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const PKCS1: &str = include_str!("../data/TEST-ONLY-app-key.pkcs1.pem");
const PKCS8: &str = include_str!("../data/TEST-ONLY-app-key.pkcs8.pem");
const TOKEN_PATH: &str = "/app/installations/77/access_tokens";
const STATUS_PATH: &str = "/repos/acme/shop/deployments/5/statuses";

/// A fake GitHub whose n-th token exchange (from 1) returns `ghs_n`, valid
/// for `lifetime`; every other call answers 201.
async fn github_issuing_tokens(lifetime: TimeDelta) -> Fake {
    let issued = AtomicUsize::new(0);
    Fake::start(move |r: &Recorded| {
        if r.path == TOKEN_PATH {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            let expires_at = (Utc::now() + lifetime).to_rfc3339_opts(SecondsFormat::Secs, true);
            Reply::json(
                201,
                json!({ "token": format!("ghs_{n}"), "expires_at": expires_at }),
            )
        } else {
            Reply::json(201, json!({ "id": 1 }))
        }
    })
    .await
}

fn app_client(fake: &Fake, pem: &str) -> GithubClient {
    let auth = Auth::App {
        app_id: 12345,
        installation_id: 77,
        private_key_pem: Secret::new(pem),
    };
    let mut config = GithubConfig::new("acme", "shop", auth);
    config.api_url = fake.url.clone();
    GithubClient::new(config).unwrap()
}

async fn post_status(client: &GithubClient) -> Result<(), GithubError> {
    client
        .create_status(
            DeploymentId(5),
            DeploymentState::InProgress,
            &StatusOpts::default(),
        )
        .await
}

/// Checks the exchange's JWT: RS256 over header.claims, verified with the
/// test key's public half, claims as GitHub wants them.
fn assert_app_jwt(r: &Recorded) {
    let bearer = r
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let parts: Vec<&str> = bearer.split('.').collect();
    assert_eq!(parts.len(), 3, "{bearer}");
    let decode =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    assert_eq!(decode(parts[0]), json!({ "alg": "RS256", "typ": "JWT" }));
    let claims = decode(parts[1]);
    let now = Utc::now().timestamp();
    assert_eq!(claims["iss"], "12345");
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        (now - 65..=now - 55).contains(&iat),
        "iat {iat} vs now {now}"
    );
    assert_eq!(exp - iat, 600, "exp is nine minutes after now");
    let key = parse_private_key_pem(PKCS1).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public().as_ref())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the JWT signature verifies with the App's public key");
}

#[tokio::test]
async fn the_installation_token_is_fetched_once_and_reused() {
    let fake = github_issuing_tokens(TimeDelta::hours(1)).await;
    let client = app_client(&fake, PKCS1);
    post_status(&client).await.unwrap();
    post_status(&client).await.unwrap();

    let r = fake.requests();
    let paths: Vec<&str> = r.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [TOKEN_PATH, STATUS_PATH, STATUS_PATH]);
    assert_eq!(r[0].method, "POST");
    assert_eq!(r[0].header("accept"), Some("application/vnd.github+json"));
    assert_eq!(r[0].header("x-github-api-version"), Some("2022-11-28"));
    assert_app_jwt(&r[0]);
    assert_github_headers(&r[1], "ghs_1");
    assert_github_headers(&r[2], "ghs_1");
}

#[tokio::test]
async fn a_token_within_five_minutes_of_expiry_is_renewed() {
    let fake = github_issuing_tokens(TimeDelta::minutes(4)).await;
    let client = app_client(&fake, PKCS1);
    post_status(&client).await.unwrap();
    post_status(&client).await.unwrap();

    let r = fake.requests();
    let paths: Vec<&str> = r.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [TOKEN_PATH, STATUS_PATH, TOKEN_PATH, STATUS_PATH]);
    assert_github_headers(&r[1], "ghs_1");
    assert_github_headers(&r[3], "ghs_2");
}

#[tokio::test]
async fn concurrent_calls_share_one_exchange() {
    let fake = github_issuing_tokens(TimeDelta::hours(1)).await;
    let client = Arc::new(app_client(&fake, PKCS1));
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { post_status(&c).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let exchanges = fake
        .requests()
        .iter()
        .filter(|r| r.path == TOKEN_PATH)
        .count();
    assert_eq!(exchanges, 1);
}

#[tokio::test]
async fn a_pkcs8_key_works_too() {
    let fake = github_issuing_tokens(TimeDelta::hours(1)).await;
    post_status(&app_client(&fake, PKCS8)).await.unwrap();
    assert_app_jwt(&fake.requests()[0]);
}

#[tokio::test]
async fn a_revoked_token_is_dropped_and_the_retry_gets_a_new_one() {
    let issued = AtomicUsize::new(0);
    let fake = Fake::start(move |r: &Recorded| {
        if r.path == TOKEN_PATH {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            let expires_at =
                (Utc::now() + TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
            return Reply::json(
                201,
                json!({ "token": format!("ghs_{n}"), "expires_at": expires_at }),
            );
        }
        match r.header("authorization") {
            Some("Bearer ghs_1") => Reply::json(401, json!({ "message": "Bad credentials" })),
            _ => Reply::json(201, json!({ "id": 1 })),
        }
    })
    .await;
    let client = app_client(&fake, PKCS1);
    let err = post_status(&client).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.status(), Some(401));
    post_status(&client).await.unwrap();
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, [TOKEN_PATH, STATUS_PATH, TOKEN_PATH, STATUS_PATH]);
}

#[tokio::test]
async fn a_refused_jwt_is_terminal() {
    let fake = Fake::start(|_| {
        Reply::json(
            401,
            json!({ "message": "A JSON web token could not be decoded" }),
        )
    })
    .await;
    let err = post_status(&app_client(&fake, PKCS1)).await.unwrap_err();
    assert!(matches!(err, GithubError::InstallationToken(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(err.label(), "installation_token");
    assert_eq!(fake.requests().len(), 1, "no API call without a token");
}

#[test]
fn a_bad_private_key_is_refused_at_construction() {
    let auth = Auth::App {
        app_id: 1,
        installation_id: 2,
        private_key_pem: Secret::new("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n"),
    };
    let err = GithubClient::new(GithubConfig::new("acme", "shop", auth))
        .err()
        .unwrap();
    assert!(matches!(err, GithubError::AppKey(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!format!("{err:?}").contains("xx\n"));
}

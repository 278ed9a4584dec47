//! Deployments and deployment statuses: the exact requests, and how
//! GitHub's answers become ids or errors.

use crate::fake::{Fake, Reply, assert_github_headers, token_client};
use previewd_github::{
    Auth, DeploymentId, DeploymentState, GithubClient, GithubConfig, GithubError, Secret,
    StatusOpts, environment_for_branch,
};
use serde_json::json;

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";

#[tokio::test]
async fn create_deployment_posts_the_documented_body_and_headers() {
    let fake = Fake::start(|_| Reply::json(201, json!({ "id": 4242, "sha": SHA }))).await;
    let client = token_client(&fake);
    let env = environment_for_branch("qanote/issue-42");
    let id = client
        .create_deployment(SHA, &env, "previewd: qanote/issue-42")
        .await
        .unwrap();
    assert_eq!(id, DeploymentId(4242));

    let r = fake.only_request();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/repos/acme/shop/deployments");
    assert_github_headers(&r, "ghp_test");
    assert_eq!(
        r.json(),
        json!({
            "ref": SHA,
            "environment": "preview/qanote-issue-42",
            "transient_environment": true,
            "production_environment": false,
            "auto_merge": false,
            "required_contexts": [],
            "description": "previewd: qanote/issue-42",
        })
    );
}

#[tokio::test]
async fn github_202_merged_default_branch_is_retryable() {
    let msg = "Auto-merged main into qanote/issue-42 on deployment.";
    let fake = Fake::start(move |_| Reply::json(202, json!({ "message": msg }))).await;
    let err = token_client(&fake)
        .create_deployment(SHA, "preview/x", "d")
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::CreateDeployment(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(202));
    assert_eq!(err.retry_after(), None);
    assert!(err.to_string().contains(msg), "{err}");
}

#[tokio::test]
async fn conflict_409_is_retryable() {
    let fake = Fake::start(|_| {
        Reply::json(
            409,
            json!({ "message": "Conflict: Commit status checks failed for main." }),
        )
    })
    .await;
    let err = token_client(&fake)
        .create_deployment(SHA, "preview/x", "d")
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(409));
}

#[tokio::test]
async fn unprocessable_422_is_terminal_with_githubs_message() {
    let fake = Fake::start(|_| {
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [{ "resource": "Deployment", "code": "custom",
                             "message": "No ref found for: deadbeef" }],
                "documentation_url": "https://docs.github.com/rest/deployments/deployments",
            }),
        )
    })
    .await;
    let err = token_client(&fake)
        .create_deployment("deadbeef", "preview/x", "d")
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.label(), "create_deployment");
    assert_eq!(
        err.to_string(),
        "creating the deployment: HTTP 422: Validation Failed: No ref found for: deadbeef"
    );
}

#[tokio::test]
async fn every_state_posts_to_the_deployments_statuses() {
    let fake = Fake::start(|_| Reply::json(201, json!({ "id": 1 }))).await;
    let client = token_client(&fake);
    for state in DeploymentState::ALL {
        let opts = StatusOpts::described(format!("now {state}"));
        client
            .create_status(DeploymentId(4242), state, &opts)
            .await
            .unwrap();
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), DeploymentState::ALL.len());
    for (r, state) in requests.iter().zip(DeploymentState::ALL) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/repos/acme/shop/deployments/4242/statuses");
        assert_github_headers(r, "ghp_test");
        let mut expected =
            json!({ "state": state.as_str(), "description": format!("now {state}") });
        if state == DeploymentState::Success {
            expected["auto_inactive"] = json!(false);
        }
        assert_eq!(r.json(), expected, "{state}");
    }
    let names: Vec<String> = requests
        .iter()
        .map(|r| r.json()["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "queued",
            "in_progress",
            "success",
            "failure",
            "error",
            "inactive"
        ]
    );
}

#[tokio::test]
async fn success_carries_the_preview_url_and_auto_inactive_false() {
    let fake = Fake::start(|_| Reply::json(201, json!({ "id": 1 }))).await;
    let url = "https://issue-42-preview.example.com";
    token_client(&fake)
        .create_status(
            DeploymentId(7),
            DeploymentState::Success,
            &StatusOpts::ready(url, "Preview ready"),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.only_request().json(),
        json!({
            "state": "success",
            "environment_url": url,
            "log_url": url,
            "description": "Preview ready",
            "auto_inactive": false,
        })
    );
}

#[tokio::test]
async fn a_long_failure_description_is_trimmed_to_140_chars() {
    let fake = Fake::start(|_| Reply::json(201, json!({ "id": 1 }))).await;
    let text = "CreateRule: AccessDenied: elasticloadbalancing:CreateRule (User: \
        arn:aws:iam::123456789012:user/previewd is not authorized to perform: \
        elasticloadbalancing:CreateRule on resource: arn:aws:elasticloadbalancing:eu-west-1:\
        123456789012:listener-rule/app/shared/50dc6c495c0c9188/* because no identity-based \
        policy allows the elasticloadbalancing:CreateRule action)";
    token_client(&fake)
        .create_status(
            DeploymentId(7),
            DeploymentState::Failure,
            &StatusOpts::described(text),
        )
        .await
        .unwrap();
    let body = fake.only_request().json();
    let sent = body["description"].as_str().unwrap();
    assert!(
        sent.chars().count() <= 140,
        "{} chars",
        sent.chars().count()
    );
    assert!(sent.starts_with("CreateRule: AccessDenied: elasticloadbalancing:CreateRule"));
    assert!(sent.ends_with('…'));
    assert_eq!(body["state"], "failure");
}

#[tokio::test]
async fn enterprise_api_urls_keep_their_path_prefix() {
    let fake = Fake::start(|_| Reply::json(201, json!({ "id": 9 }))).await;
    let mut config = GithubConfig::new("acme", "shop", Auth::Token(Secret::new("t")));
    config.api_url = format!("{}/api/v3/", fake.url);
    let client = GithubClient::new(config).unwrap();
    client
        .create_deployment(SHA, "preview/main", "d")
        .await
        .unwrap();
    assert_eq!(
        fake.only_request().path,
        "/api/v3/repos/acme/shop/deployments"
    );
}

#[test]
fn bad_configuration_names_the_field() {
    let config = |owner: &str, url: &str, token: &str| {
        let mut c = GithubConfig::new(owner, "shop", Auth::Token(Secret::new(token)));
        c.api_url = url.into();
        GithubClient::new(c).err().map(|e| e.to_string())
    };
    let url = "https://api.github.com";
    assert!(config("acme", url, "t").is_none());
    assert!(
        config("acme/../x", url, "t")
            .unwrap()
            .starts_with("owner: ")
    );
    assert!(
        config("acme", "ftp://x", "t")
            .unwrap()
            .starts_with("api_url: ")
    );
    assert!(
        config("acme", "not a url", "t")
            .unwrap()
            .starts_with("api_url: ")
    );
    assert!(config("acme", url, "").unwrap().starts_with("auth.token: "));
}

#[test]
fn config_debug_never_shows_the_token() {
    let c = GithubConfig::new("acme", "shop", Auth::Token(Secret::new("ghp_supersecret")));
    let printed = format!("{c:?}");
    assert!(!printed.contains("ghp_supersecret"), "{printed}");
    assert!(printed.contains("[redacted]"));
}

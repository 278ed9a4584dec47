//! previewd waits for the preview's image (issue 16, item 2): a dispatch
//! that arrives before the build pushed it creates nothing and is Pending
//! until `PutImage`; an image that never comes fails the preview naming
//! it; a policy without `ecr:DescribeImages` fails naming that action.
//! GitHub and the callback receiver are the fake of `daemon::fake_github`.

use crate::daemon::fake_github;
use crate::harness::{Api, Daemon, Moto, find, ours};
use crate::{BRANCH, FAMILY, SHA1, register_target_when_ready};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The preview's image, in the `previews` repository `world.py` creates.
fn image(sha: &str) -> String {
    format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/previews:{sha}")
}

/// The daemon's environment: the ECR image pattern, the wait, and GitHub
/// and callbacks sent to the fake at `fake`.
fn env(fake: &str, wait_secs: &str) -> Vec<(String, String)> {
    [
        (
            "PREVIEWD_CONTAINER_IMAGE",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/previews:{commit_sha}".to_owned(),
        ),
        ("PREVIEWD_CONTAINER_IMAGE_WAIT_SECS", wait_secs.to_owned()),
        ("PREVIEWD_GITHUB_TOKEN", "ghp_moto_test_token".to_owned()),
        ("PREVIEWD_GITHUB_API_URL", format!("http://{fake}")),
        (
            "PREVIEWD_CALLBACK_SECRET",
            "moto-callback-secret".to_owned(),
        ),
        (
            "PREVIEWD_CALLBACKS_ALLOWED_HOSTS",
            r#"["127.0.0.1:*"]"#.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn deploy(fake: &str) -> Value {
    json!({
        "action": "deploy",
        "branch": BRANCH,
        "commit_sha": SHA1,
        "ai_run_id": "run-img",
        "callback_url": format!("http://{fake}/done"),
    })
}

/// The requests the fake has seen so far.
fn seen(fake: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    fake.lock().unwrap().clone()
}

/// Waits until the fake has a request matching `what`.
async fn request(fake: &Arc<Mutex<Vec<String>>>, what: impl Fn(&str) -> bool) -> String {
    for _ in 0..240 {
        if let Some(r) = seen(fake).into_iter().find(|r| what(r)) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let lines: Vec<String> = seen(fake)
        .iter()
        .map(|r| r.lines().next().unwrap_or("").to_owned())
        .collect();
    panic!("never seen; the fake got {lines:?}");
}

/// The JSON body of a request the fake kept.
fn body(request: &str) -> Value {
    let (_, body) = request.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn nothing_of_ours(snap: &Value) -> bool {
    ["target_groups", "log_groups", "services", "rules"]
        .iter()
        .all(|k| !snap[k].as_array().unwrap().iter().any(ours))
        && snap["task_definitions"].get(FAMILY).is_none()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_before_its_image_waits_creating_nothing_then_rolls_out_once_pushed() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let (fake, github) = fake_github();
    let env = env(&fake, "600");
    let daemon = Daemon::start(&moto, &world, ("testing", "testing"), &as_refs(&env));
    let api = Api::new(&daemon);

    api.dispatch_json(&deploy(&fake)).await;
    let waiting = format!("waiting for image {}", image(SHA1));
    let p = api
        .wait(BRANCH, "waiting for its image", |p| {
            p["phase"] == "Pending" && p["message"] == waiting.as_str()
        })
        .await;
    assert_eq!(p["observed_generation"], p["generation"], "{p:#}");
    let snap = moto.world(&["snapshot"]);
    assert!(
        find(&snap["services"], "name", FAMILY).is_none(),
        "a service before its image: {snap:#}"
    );
    assert!(nothing_of_ours(&snap), "created while waiting: {snap:#}");
    // GitHub hears it is queued, with the reason.
    let queued = request(&github, |r| {
        r.contains("/statuses") && r.contains(r#""state":"queued""#)
    })
    .await;
    assert_eq!(body(&queued)["description"], waiting.as_str(), "{queued}");

    moto.world(&["push-image", "previews", SHA1]);
    register_target_when_ready(&moto, || daemon.log_text()).await;
    let p = api
        .wait(BRANCH, "Ready", |p| {
            p["phase"] == "Ready" && p["observed_generation"] == p["generation"]
        })
        .await;
    assert_eq!(p["url"], "https://issue-42-preview.preview.example.com");
    let snap = moto.world(&["snapshot"]);
    let td = &snap["task_definitions"][FAMILY];
    assert_eq!(td["containerDefinitions"][0]["image"], image(SHA1));
    assert!(find(&snap["services"], "name", FAMILY).is_some());
    let done = request(&github, |r| r.starts_with("POST /done")).await;
    let done = body(&done);
    assert_eq!(done["state"], "success", "{done:#}");
    assert_eq!(done["ai_run_id"], "run-img");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_never_comes_fails_the_preview_naming_it_on_github_and_the_callback() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let (fake, github) = fake_github();
    let env = env(&fake, "2");
    let daemon = Daemon::start(&moto, &world, ("testing", "testing"), &as_refs(&env));
    let api = Api::new(&daemon);

    api.dispatch_json(&deploy(&fake)).await;
    let p = api
        .wait(BRANCH, "Failed", |p| {
            p["phase"] == "Failed" && p["observed_generation"] == p["generation"]
        })
        .await;
    let message = p["message"].as_str().unwrap_or_default();
    assert!(message.contains(&image(SHA1)), "{p:#}");
    assert!(message.contains("container.image_wait_secs"), "{p:#}");
    assert!(nothing_of_ours(&moto.world(&["snapshot"])));

    let failure = request(&github, |r| {
        r.contains("/statuses") && r.contains(r#""state":"failure""#)
    })
    .await;
    let description = body(&failure)["description"].as_str().unwrap().to_owned();
    assert!(description.contains(&image(SHA1)), "{failure}");
    let done = request(&github, |r| r.starts_with("POST /done")).await;
    let done = body(&done);
    assert_eq!(done["state"], "failure", "{done:#}");
    assert_eq!(done["ai_run_id"], "run-img");
    assert!(
        done["description"]
            .as_str()
            .is_some_and(|d| d.contains(&image(SHA1))),
        "{done:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_images_denied_fails_the_preview_naming_the_action() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let user = moto.world(&["iam-user-without", "ecr:DescribeImages"]);
    let keys = (
        user["key"].as_str().unwrap().to_owned(),
        user["secret"].as_str().unwrap().to_owned(),
    );
    // As in the ModifyRule test: Route53's GETs cannot pass moto's IAM
    // enforcement, so the zone lives in a moto of its own.
    let dns = Moto::start();
    world["hosted_zone_id"] = dns.world(&["zone"])["hosted_zone_id"].clone();
    let (fake, github) = fake_github();
    let mut env = env(&fake, "600");
    env.push(("AWS_ENDPOINT_URL_ROUTE_53".into(), dns.endpoint.clone()));
    moto.enforce_iam();
    let daemon = Daemon::start(&moto, &world, (&keys.0, &keys.1), &as_refs(&env));
    let api = Api::new(&daemon);

    api.dispatch_json(&deploy(&fake)).await;
    let p = api
        .wait(BRANCH, "Failed", |p| {
            p["phase"] == "Failed" && p["observed_generation"] == p["generation"]
        })
        .await;
    let message = p["message"].as_str().unwrap_or_default();
    assert!(message.contains("ecr:DescribeImages"), "{p:#}");
    assert_eq!(p["last_error"]["class"], "terminal", "{p:#}");
    // (moto now refuses the fixtures' own keys: no snapshot here.)
    let failure = request(&github, |r| {
        r.contains("/statuses") && r.contains(r#""state":"failure""#)
    })
    .await;
    assert!(failure.contains("ecr:DescribeImages"), "{failure}");
}

/// DescribeImages fails a whole request when one id in it is missing:
/// previews of one repository checked together must still be told apart.
#[tokio::test(flavor = "multi_thread")]
async fn previews_of_one_repository_are_told_apart_when_one_image_is_missing() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let (fake, _github) = fake_github();
    let env = env(&fake, "600");
    let shas = [
        SHA1,
        "3333333333333333333333333333333333333333",
        "4444444444444444444444444444444444444444",
    ];
    moto.world(&["push-image", "previews", shas[0]]);
    moto.world(&["push-image", "previews", shas[1]]);
    let daemon = Daemon::start(&moto, &world, ("testing", "testing"), &as_refs(&env));
    let api = Api::new(&daemon);
    let branches = ["qanote/issue-1", "qanote/issue-2", "qanote/issue-3"];
    for (branch, sha) in branches.iter().zip(shas) {
        api.dispatch("deploy", branch, Some(sha)).await;
    }
    for branch in &branches[..2] {
        api.wait(branch, "rolling out", |p| {
            p["phase"] == "Provisioning" || p["phase"] == "Ready"
        })
        .await;
    }
    let waiting = format!("waiting for image {}", image(shas[2]));
    api.wait(branches[2], "waiting for its image", |p| {
        p["phase"] == "Pending" && p["message"] == waiting.as_str()
    })
    .await;
    let snap = moto.world(&["snapshot"]);
    assert!(find(&snap["services"], "name", "pv-qanote-issue-1").is_some());
    assert!(find(&snap["services"], "name", "pv-qanote-issue-2").is_some());
    assert!(find(&snap["services"], "name", "pv-qanote-issue-3").is_none());
}

//! previewd waits for the preview's image (issue 16, item 2), on the sim:
//! nothing is created while it is missing, the rollout starts once it is
//! pushed, and an image that never comes fails the preview naming it.

use crate::*;
use previewd_core::render::Template;
use previewd_sim::SimConfig;

const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop";

fn ecr_template(wait_secs: u64) -> Template {
    Template {
        image: format!("{REPO}:{{commit_sha}}"),
        image_wait_secs: wait_secs,
        ..Template::default()
    }
}

#[tokio::test]
async fn a_preview_waits_for_its_image_creating_nothing_then_becomes_ready_once_pushed() {
    let app = spawn_app_templated(SimConfig::default(), None, |_| {}, ecr_template(600)).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-11", "abc1234"))
        .await;
    let waiting = format!("waiting for image {REPO}:abc1234");
    let p = app
        .api
        .wait_for("qanote/issue-11", WITHIN, |p| {
            phase_is("Pending", 1)(p) && p["message"] == waiting.as_str()
        })
        .await;
    assert_eq!(
        p["conditions"]["ready"]["reason"], "WaitingForImage",
        "{p:#}"
    );
    assert_eq!(
        p["conditions"]["synced"]["reason"], "WaitingForImage",
        "{p:#}"
    );
    let owned = app.sim.snapshot().owned_by(ID);
    assert!(owned.services.is_empty(), "a service before its image");
    assert!(owned.target_groups.is_empty() && owned.rules.is_empty());
    assert!(owned.log_groups.is_empty() && owned.records.is_empty());
    assert!(app.sim.calls()["ecr:DescribeImages"] >= 1);

    app.sim.push_image(&format!("{REPO}:abc1234"));
    let p = app
        .api
        .wait_for("qanote/issue-11", WITHIN, phase_is("Ready", 1))
        .await;
    assert_eq!(p["url"], "https://issue-11-preview.preview.example.com");
    assert_eq!(app.sim.snapshot().owned_by(ID).services.len(), 1);

    // A found image is remembered: a new generation of the same image
    // does not ask ECR again.
    app.sim.reset_calls();
    let mut again = deploy("qanote/issue-11", "abc1234");
    again["ai_run_id"] = "run-2".into();
    app.api.post("/v1/dispatch", again).await;
    app.api
        .wait_for("qanote/issue-11", WITHIN, phase_is("Ready", 2))
        .await;
    assert_eq!(app.sim.calls().get("ecr:DescribeImages"), None);
}

#[tokio::test]
async fn an_image_that_never_comes_fails_the_preview_naming_it() {
    let app = spawn_app_templated(SimConfig::default(), None, |_| {}, ecr_template(1)).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-12", "def5678"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-12", WITHIN, phase_is("Failed", 1))
        .await;
    let message = p["message"].as_str().unwrap();
    assert!(message.contains(&format!("{REPO}:def5678")), "{message}");
    assert!(message.contains("container.image_wait_secs"), "{message}");
    assert!(app.sim.snapshot().owned_by(ID).services.is_empty());
}

#[tokio::test]
async fn a_redeploy_whose_image_is_missing_leaves_the_running_service_alone() {
    let app = spawn_app_templated(
        SimConfig::default(),
        None,
        |sim| sim.push_image(&format!("{REPO}:aaa1111")),
        ecr_template(600),
    )
    .await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-13", "aaa1111"))
        .await;
    app.api
        .wait_for("qanote/issue-13", WITHIN, phase_is("Ready", 1))
        .await;
    let before = app.sim.snapshot().owned_by(ID).services;
    app.sim.reset_calls();
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-13", "bbb2222"))
        .await;
    app.api
        .wait_for("qanote/issue-13", WITHIN, |p| {
            phase_is("Pending", 2)(p)
                && p["message"] == format!("waiting for image {REPO}:bbb2222").as_str()
        })
        .await;
    assert_eq!(app.sim.snapshot().owned_by(ID).services, before);
    assert_eq!(app.sim.calls().get("ecs:UpdateService"), None);
    app.sim.push_image(&format!("{REPO}:bbb2222"));
    app.api
        .wait_for("qanote/issue-13", WITHIN, phase_is("Ready", 2))
        .await;
}

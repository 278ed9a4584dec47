//! The engine through the API: deploy, redeploy, destroy, capacity, IAM.

use crate::*;
use previewd_core::tags::{self, Tags};
use previewd_sim::SimConfig;

#[tokio::test]
async fn a_dispatched_preview_becomes_ready_with_its_url() {
    let app = spawn_app(SimConfig::default(), None).await;
    let (status, body) = app
        .api
        .post("/v1/dispatch", deploy("qanote/issue-42", "4f2a9c1"))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status_url"], "/v1/previews/qanote%2Fissue-42");
    let p = app
        .api
        .wait_for("qanote/issue-42", WITHIN, phase_is("Ready", 1))
        .await;
    assert_eq!(p["url"], "https://issue-42-preview.preview.example.com");
    assert_eq!(p["conditions"]["ready"]["status"], true);
    assert_eq!(p["conditions"]["synced"]["status"], true);
    let owned = app.sim.snapshot().owned_by(ID);
    assert_eq!(owned.services.len(), 1);
    assert_eq!(owned.target_groups.len(), 1);
    assert_eq!(owned.rules.len(), 1);
    assert_eq!(owned.log_groups.len(), 1);
    assert_eq!(owned.records.len(), 2, "alias A and ownership TXT");
    assert_eq!(
        owned.rules[0].hosts,
        ["issue-42-preview.preview.example.com"]
    );
}

#[tokio::test]
async fn a_rerun_modifies_in_place_with_no_second_service_or_rule() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-7", "aaaaaaa"))
        .await;
    app.api
        .wait_for("qanote/issue-7", WITHIN, phase_is("Ready", 1))
        .await;
    let before = app.sim.snapshot().owned_by(ID);
    let (_, body) = app
        .api
        .post("/v1/dispatch", deploy("qanote/issue-7", "bbbbbbb"))
        .await;
    assert_eq!(body["generation"], 2);
    app.api
        .wait_for("qanote/issue-7", WITHIN, phase_is("Ready", 2))
        .await;
    let after = app.sim.snapshot().owned_by(ID);
    let calls = app.sim.calls();
    assert_eq!(calls.get("ecs:CreateService"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("elbv2:CreateRule"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("elbv2:DeleteRule"), None, "{calls:?}");
    assert_eq!(calls.get("ecs:DeleteService"), None, "{calls:?}");
    assert_eq!(calls.get("ecs:UpdateService"), Some(&1), "{calls:?}");
    assert_eq!(
        before.rules[0].arn, after.rules[0].arn,
        "the rule is the same rule"
    );
    assert_ne!(
        before.services[0].task_definition,
        after.services[0].task_definition
    );
    assert!(
        after.services[0].task_definition.ends_with(":2"),
        "a new revision: {}",
        after.services[0].task_definition
    );
}

#[tokio::test]
async fn an_identical_resend_changes_nothing() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.api
        .post("/v1/dispatch", deploy("feature/login", "abc1234"))
        .await;
    app.api
        .wait_for("feature/login", WITHIN, phase_is("Ready", 1))
        .await;
    let (status, body) = app
        .api
        .post("/v1/dispatch", deploy("feature/login", "abc1234"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["changed"], false);
    assert_eq!(body["generation"], 1);
}

fn foreign_noise(sim: &previewd_sim::Sim) {
    let tg = sim.add_foreign_target_group("pv-feature-login", Tags::new());
    sim.add_foreign_rule_forwarding(10, "shop.example.com", &tg, Tags::new());
    sim.add_foreign_log_group("/ecs/pv-feature-login-old");
    sim.add_foreign_service("pv-feature-login-legacy");
}

#[tokio::test]
async fn destroy_removes_every_resource_and_nothing_foreign() {
    let app = spawn_app_with(SimConfig::default(), None, foreign_noise).await;
    let foreign_before = app.sim.snapshot().foreign_to(ID);
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-9", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-9", WITHIN, phase_is("Ready", 1))
        .await;
    let (status, _) = app.api.delete("/v1/previews/qanote%2Fissue-9").await;
    assert_eq!(status, 202);
    let p = app
        .api
        .wait_for("qanote/issue-9", WITHIN, phase_is("Deleted", 2))
        .await;
    assert_eq!(p["url"], serde_json::Value::Null);
    let snap = app.sim.snapshot();
    assert!(
        snap.owned_by(ID).is_empty(),
        "left behind: {:?}",
        snap.owned_by(ID)
    );
    assert_eq!(snap.foreign_to(ID), foreign_before);
}

#[tokio::test]
async fn a_look_alike_target_group_is_a_conflict_not_a_takeover() {
    let app = spawn_app_with(SimConfig::default(), None, foreign_noise).await;
    let foreign_before = app.sim.snapshot().foreign_to(ID);
    app.api
        .post("/v1/dispatch", deploy("feature/login", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("feature/login", WITHIN, phase_is("Failed", 1))
        .await;
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("target group pv-feature-login exists and is not managed by previewd"),
        "{message}"
    );
    assert_eq!(app.sim.snapshot().foreign_to(ID), foreign_before);
}

#[tokio::test]
async fn a_full_load_balancer_leaves_the_preview_pending_with_its_reason() {
    let fill = |sim: &previewd_sim::Sim| {
        for i in 0..100 {
            let tg = sim.add_foreign_target_group(&format!("team-{i}"), Tags::new());
            sim.add_foreign_rule_forwarding(
                i + 1,
                &format!("team-{i}.example.com"),
                &tg,
                Tags::new(),
            );
        }
    };
    let app = spawn_app_with(SimConfig::default(), None, fill).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-1", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-1", WITHIN, phase_is("Pending", 1))
        .await;
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("waiting for capacity") && message.contains("100 target groups"),
        "{message}"
    );
    assert!(
        app.sim.snapshot().owned_by(ID).is_empty(),
        "nothing is half-created"
    );
}

#[tokio::test]
async fn a_missing_permission_reaches_the_message_naming_the_action() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.sim.deny("elasticloadbalancing:CreateRule");
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-3", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-3", WITHIN, phase_is("Failed", 1))
        .await;
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("AccessDenied: elasticloadbalancing:CreateRule"),
        "{message}"
    );
    assert_eq!(p["last_error"]["code"], "AccessDenied");
    assert_eq!(p["last_error"]["class"], "terminal");
    // Level-triggered: once the permission is granted the next pass heals it.
    app.sim.allow("elasticloadbalancing:CreateRule");
    app.api
        .wait_for("qanote/issue-3", WITHIN, phase_is("Ready", 1))
        .await;
}

#[tokio::test]
async fn a_task_that_cannot_start_fails_the_preview_with_its_reason() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.sim.fail_tasks_of(
        "pv-qanote-issue-5",
        "CannotPullContainerError: image not found",
    );
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-5", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-5", WITHIN, phase_is("Failed", 1))
        .await;
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("CannotPullContainerError: image not found"),
        "{message}"
    );
}

#[tokio::test]
async fn priorities_skip_rules_we_do_not_own_and_stay_stable() {
    let app = spawn_app_with(SimConfig::default(), None, |sim| {
        sim.add_foreign_rule(1000, "prod.example.com", Tags::new());
    })
    .await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-11", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-11", WITHIN, phase_is("Ready", 1))
        .await;
    assert_eq!(p["rule_priority"], 1001);
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-11", "def5678"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-11", WITHIN, phase_is("Ready", 2))
        .await;
    assert_eq!(p["rule_priority"], 1001);
    let rule = app.sim.snapshot().owned_by(ID).rules.remove(0);
    assert_eq!(rule.priority, Some(1001));
    assert!(tags::is_owned(&rule.tags, ID));
}

#[tokio::test]
async fn hand_deleted_resources_are_recreated_by_the_resync() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-12", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-12", WITHIN, phase_is("Ready", 1))
        .await;
    use previewd_core::ports::Dns;
    let records = app.sim.snapshot().owned_by(ID).records;
    let deletes: Vec<_> = records
        .into_iter()
        .map(|record| previewd_core::render::DnsChange {
            action: previewd_core::render::DnsAction::Delete,
            record,
        })
        .collect();
    app.sim
        .change(&deletes)
        .await
        .expect("someone deletes the records by hand");
    assert!(app.sim.snapshot().owned_by(ID).records.is_empty());
    let deadline = tokio::time::Instant::now() + WITHIN;
    while app.sim.snapshot().owned_by(ID).records.len() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "drift was not repaired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

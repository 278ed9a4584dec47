//! Issue 16: a task that can never start fails the preview at once
//! (item 3), and a finished rollout deregisters the revisions it
//! superseded (item 5).

use crate::*;
use previewd_core::ports::Compute;
use previewd_sim::SimConfig;
use std::time::Duration;

const NOT_FOUND: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:abc1234: not found";

/// ECS as it is: a task that fails to start is relaunched, and the
/// circuit breaker gives up only after three of them. Relaunches are an
/// hour apart here, so only failing fast can end the rollout in a test.
fn slow_breaker() -> SimConfig {
    SimConfig {
        failed_task_relaunch_after: Duration::from_secs(3600),
        circuit_breaker_threshold: 3,
        ..SimConfig::default()
    }
}

/// Waits until the controller has described services `n` more times
/// (a pass describes its service at least once), so later passes have
/// happened; no clock involved.
async fn passes(sim: &previewd_sim::Sim, n: u64) {
    let count = || {
        sim.calls()
            .get("ecs:DescribeServices")
            .copied()
            .unwrap_or(0)
    };
    let start = count();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while count() < start + n {
        assert!(tokio::time::Instant::now() < deadline, "no passes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_task_that_can_never_start_fails_the_preview_at_once_and_scales_it_to_zero() {
    let app = spawn_app(slow_breaker(), None).await;
    let service = "pv-qanote-issue-16".to_string();
    app.sim.fail_tasks_of(&service, NOT_FOUND);
    let body = deploy("qanote/issue-16", "abc1234");
    app.api.post("/v1/dispatch", body.clone()).await;
    let p = app
        .api
        .wait_for("qanote/issue-16", WITHIN, phase_is("Failed", 1))
        .await;
    assert_eq!(p["message"], NOT_FOUND);

    // The pass that first saw the stopped task failed it: no pass before
    // it reported the task as progress, and only that pass (its look and
    // its confirming look) asked why the task stopped.
    let key = previewd_core::PreviewKey::new(previewd_tests::PROJECT, "qanote/issue-16").unwrap();
    let events = app.store.events(&key, 50).await.unwrap();
    assert!(
        !events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("a task stopped"))),
        "{events:?}"
    );
    assert!(
        app.sim.calls()["ecs:DescribeTasks"] <= 2,
        "{:?}",
        app.sim.calls()
    );

    // Desired count 0, before the circuit breaker ever tripped.
    let svc = &app
        .sim
        .services(std::slice::from_ref(&service))
        .await
        .unwrap()[0];
    assert_eq!(svc.desired_count, 0);
    let first = svc.primary().unwrap().clone();
    assert_ne!(
        first.rollout_state,
        previewd_core::observed::RolloutState::Failed
    );

    // Later passes over the failed generation leave it at zero.
    passes(&app.sim, 5).await;
    let svc = &app
        .sim
        .services(std::slice::from_ref(&service))
        .await
        .unwrap()[0];
    assert_eq!(svc.desired_count, 0);
    let (_, p) = app.api.get("/v1/previews/qanote%2Fissue-16").await;
    assert_eq!(
        (p["phase"].as_str(), p["message"].as_str()),
        (Some("Failed"), Some(NOT_FOUND))
    );

    // The identical dispatch is a new generation: scaled up again, a new
    // deployment, whose own task fails it again (the last attempt's
    // stopped task is not held against it: it failed on its own).
    app.api.post("/v1/dispatch", body.clone()).await;
    app.api
        .wait_for("qanote/issue-16", WITHIN, phase_is("Failed", 2))
        .await;
    let svc = &app
        .sim
        .services(std::slice::from_ref(&service))
        .await
        .unwrap()[0];
    assert_eq!(svc.desired_count, 0);
    assert_ne!(svc.primary().unwrap().id, first.id);

    // The image pushed, the identical dispatch again: Ready.
    app.sim.heal_tasks_of(&service);
    app.api.post("/v1/dispatch", body).await;
    app.api
        .wait_for("qanote/issue-16", WITHIN, phase_is("Ready", 3))
        .await;
    let svc = &app
        .sim
        .services(std::slice::from_ref(&service))
        .await
        .unwrap()[0];
    assert_eq!((svc.desired_count, svc.running_count), (1, 1));
}

#[tokio::test]
async fn a_task_that_may_heal_is_left_to_the_circuit_breaker() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.sim
        .fail_tasks_of("pv-qanote-issue-17", "Essential container in task exited");
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-17", "abc1234"))
        .await;
    let p = app
        .api
        .wait_for("qanote/issue-17", WITHIN, phase_is("Failed", 1))
        .await;
    // Failed by the breaker (the sim trips it at once by default), with
    // the service left as ECS left it.
    assert!(
        p["message"].as_str().unwrap().starts_with("rollout failed"),
        "{p}"
    );
    let svc = &app
        .sim
        .services(&["pv-qanote-issue-17".to_string()])
        .await
        .unwrap()[0];
    assert_eq!(svc.desired_count, 1);
}

fn active_revisions(app: &TestApp, family: &str) -> Vec<String> {
    app.sim
        .snapshot()
        .task_definitions
        .into_iter()
        .filter(|td| td.family == family)
        .map(|td| td.arn)
        .collect()
}

#[tokio::test]
async fn redeploys_leave_at_most_two_active_revisions_once_rolled_out() {
    let app = spawn_app(SimConfig::default(), None).await;
    let family = "pv-qanote-issue-18";
    let branch = "qanote/issue-18";
    for (generation, commit) in [(1, "aaa1111"), (2, "bbb2222"), (3, "ccc3333")] {
        app.api.post("/v1/dispatch", deploy(branch, commit)).await;
        app.api
            .wait_for(branch, WITHIN, phase_is("Ready", generation))
            .await;
    }
    let running = app.sim.snapshot().owned_by(ID).services[0]
        .task_definition
        .clone();
    let active = active_revisions(&app, family);
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(
        running.ends_with(":3") && active.contains(&running),
        "{active:?}"
    );
    assert!(
        active.iter().any(|a| a.ends_with(":2")),
        "the one before stays"
    );

    // Two quick redeploys, the second before the first is Ready.
    app.api
        .post("/v1/dispatch", deploy(branch, "ddd4444"))
        .await;
    app.api
        .post("/v1/dispatch", deploy(branch, "eee5555"))
        .await;
    app.api.wait_for(branch, WITHIN, phase_is("Ready", 5)).await;
    let running = app.sim.snapshot().owned_by(ID).services[0]
        .task_definition
        .clone();
    let active = active_revisions(&app, family);
    assert!(active.len() <= 2 && active.contains(&running), "{active:?}");
}

//! A pool of simulated ALBs at AWS's true limits, each with other teams'
//! rules and target groups, filled by a burst under many workers: no ALB
//! ever goes past its limits, the previews that find the pool full wait
//! with a reason, every record aliases its own ALB, and a destroy frees a
//! slot that a waiting preview takes.

use crate::{TestApp, spawn_app};
use previewd_controller::ControllerConfig;
use previewd_core::observed::RecordType;
use previewd_core::plan::MAX_TARGET_GROUPS_PER_ALB;
use previewd_core::pool::{Pool, PoolListener};
use previewd_core::ports::LoadBalancer;
use previewd_core::render::Template;
use previewd_sim::SimConfig;
use previewd_tests::{RunningController, fast_controller};
use std::sync::Arc;
use std::time::Duration;

/// Other teams' rules and target groups on each ALB: room for 4 previews.
const FOREIGN: usize = 96;

fn pool_of(app: &TestApp) -> Pool {
    let t = Template::default();
    Pool {
        listeners: app
            .sim
            .config()
            .albs
            .iter()
            .map(|a| PoolListener {
                arn: a.listener_arn.clone(),
                alb_dns_name: a.dns_name.clone(),
                alb_zone_id: a.zone_id.clone(),
                priority_band: t.priority_band,
                rule_quota: a.rule_quota,
                draining: false,
            })
            .collect(),
    }
}

async fn phases(app: &TestApp, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for i in 0..n {
        let (_, p) = app
            .api
            .get(&format!("/v1/previews/qanote%2Fissue-{}", 100 + i))
            .await;
        out.push(p);
    }
    out
}

/// Waits until `done` holds for the previews' views.
async fn until(app: &TestApp, n: usize, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
    for _ in 0..600 {
        let views = phases(app, n).await;
        if done(&views) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {what}: {:#?}", phases(app, n).await);
}

fn ready(p: &serde_json::Value) -> bool {
    p["phase"] == "Ready"
}

fn full(p: &serde_json::Value) -> bool {
    p["phase"] == "Pending"
        && p["message"]
            .as_str()
            .is_some_and(|m| m.contains("every listener of the pool is full"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_fills_a_pool_without_passing_any_limit_and_a_destroy_frees_room() {
    let mut app = spawn_app(SimConfig::default().with_albs(2, FOREIGN), None).await;
    // The default controller knows one listener: start one on the pool,
    // with many workers racing for the last slots.
    app.controller.take().unwrap().stop().await;
    let pool = Arc::new(pool_of(&app));
    let config = ControllerConfig {
        workers: 64,
        ..fast_controller("pool")
    };
    let controller = RunningController::start_pool(
        app.store.clone(),
        &app.sim,
        Arc::new(Template::default()),
        pool.clone(),
        config,
    );
    let n = 10;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..n {
        let api_url = app.api.url("/v1/dispatch");
        let client = app.api.client.clone();
        sends.spawn(async move {
            let body = crate::deploy(&format!("qanote/issue-{}", 100 + i), "c0ffee1");
            client
                .post(api_url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = sends.join_next().await {
        assert!(status.unwrap().is_success());
    }
    until(&app, n, "8 Ready and 2 waiting for room", |v| {
        v.iter().filter(|p| ready(p)).count() == 8 && v.iter().filter(|p| full(p)).count() == 2
    })
    .await;

    // Every ALB is exactly full, and never past it.
    for l in &pool.listeners {
        let state = app.sim.listener(&l.arn).await.unwrap();
        assert_eq!(
            state.alb_target_groups, MAX_TARGET_GROUPS_PER_ALB,
            "{}",
            l.arn
        );
        assert_eq!(state.alb_rules, 100, "{}", l.arn);
    }
    // Every Ready preview's alias points at the ALB its rule is on.
    let snap = app.sim.snapshot();
    for p in phases(&app, n).await.iter().filter(|p| ready(p)) {
        let listener = p["listener_arn"].as_str().unwrap();
        let alb = pool.get(listener).unwrap();
        let host = p["host"].as_str().unwrap();
        let alias = snap
            .records
            .iter()
            .find(|r| r.name == host && r.kind == RecordType::A)
            .and_then(|r| r.alias_target.clone())
            .expect("an alias record");
        assert_eq!(
            alias.dns_name,
            alb.alb_dns_name.to_ascii_lowercase(),
            "{host}"
        );
        let rule_base = listener.replacen(":listener/", ":listener-rule/", 1);
        let on_it = snap
            .rules
            .iter()
            .any(|r| r.hosts == [host.to_string()] && r.arn.starts_with(&rule_base));
        assert!(on_it, "{host}'s rule is on {listener}");
    }

    // A destroy frees a slot: one waiting preview takes it.
    let gone = phases(&app, n).await.into_iter().find(ready).unwrap();
    let (status, _) = app
        .api
        .post(
            "/v1/dispatch",
            serde_json::json!({"action": "destroy", "branch": gone["branch"]}),
        )
        .await;
    assert!((200..300).contains(&status), "{status}");
    until(&app, n, "a waiting preview placed in the freed slot", |v| {
        v.iter().filter(|p| ready(p)).count() == 8 && v.iter().filter(|p| full(p)).count() == 1
    })
    .await;
    for l in &pool.listeners {
        let state = app.sim.listener(&l.arn).await.unwrap();
        assert!(state.alb_target_groups <= MAX_TARGET_GROUPS_PER_ALB);
    }
    controller.stop().await;
}

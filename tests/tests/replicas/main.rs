//! Several replicas on the real PostgreSQL sharing one simulated AWS: the
//! work is split by leases, a replica killed or stopped mid-reconcile loses
//! nothing, writes wake the other replicas, sweeps run one at a time.

mod leases;
mod pg;
mod share;
mod wake;

use pg::{drop_database, fresh_database};
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, ListFilter, Phase, PreviewSpec};
use previewd_core::naming::NamingConfig;
use previewd_core::render::Template;
use previewd_sim::{Sim, SimConfig};
use previewd_tests::{PROJECT, RunningController, fast_controller};
use std::sync::Arc;
use std::time::Duration;

const ID: &str = "previewd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_work_and_survive_one_being_killed() {
    let (url, name) = fresh_database().await;
    // Each replica has its own pool, as separate processes would.
    let stores = [
        previewd_store::open(&url).await.unwrap(),
        previewd_store::open(&url).await.unwrap(),
        previewd_store::open(&url).await.unwrap(),
    ];
    // Slow enough that passes are in flight when the kill comes.
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(3),
        service_stable_after: Duration::from_millis(50),
        ..SimConfig::default()
    });
    let template = Arc::new(Template::default());
    let mut replicas: Vec<RunningController> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            RunningController::start(
                store.clone(),
                &sim,
                template.clone(),
                fast_controller(&format!("replica-{i}")),
            )
        })
        .collect();
    let writer = &stores[0];
    for i in 0..12 {
        let key = PreviewKey::new(PROJECT, &format!("qanote/issue-{i}")).unwrap();
        let spec = PreviewSpec {
            commit_sha: Some("abc1234".into()),
            ..Default::default()
        };
        writer
            .apply_deploy(
                &DeployRequest {
                    key,
                    spec,
                    expiry: previewd_core::Expiry::Never,
                },
                &NamingConfig::default(),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    // Kill replica 0 while it holds leases.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = writer.list(&ListFilter::default()).await.unwrap();
        if rows
            .iter()
            .any(|p| p.lease_owner.as_deref() == Some("replica-0"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica-0 never took work"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    replicas.remove(0).kill().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = writer.list(&ListFilter::default()).await.unwrap();
        if rows
            .iter()
            .all(|p| p.status.phase == Phase::Ready && p.status.observed_generation == p.generation)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all Ready: {:?}",
            rows.iter()
                .map(|p| (&p.key.branch, p.status.phase))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = sim.calls();
    for op in [
        "ecs:CreateService",
        "elbv2:CreateRule",
        "elbv2:CreateTargetGroup",
        "logs:CreateLogGroup",
        "ecs:RegisterTaskDefinition",
    ] {
        assert_eq!(calls.get(op), Some(&12), "{op} once per preview: {calls:?}");
    }
    let owned = sim.snapshot().owned_by(ID);
    assert_eq!(
        (
            owned.services.len(),
            owned.rules.len(),
            owned.target_groups.len()
        ),
        (12, 12, 12)
    );
    for r in replicas {
        r.stop().await;
    }
    for s in stores {
        drop(s);
    }
    drop_database(&name).await;
}

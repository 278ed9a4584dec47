//! The test knobs: IAM denials, throttling, faults, latency, call counts and
//! snapshots.

use crate::*;
use previewd_core::CloudError;
use previewd_core::observed::{DnsRecord, RecordType};
use previewd_core::ports::{Compute, Dns, LoadBalancer, Logs};
use previewd_core::render::{DnsAction, DnsChange};
use previewd_core::tags::{Tags, dns_owner_marker};
use previewd_sim::{Sim, SimConfig};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn denied_action_names_itself() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    sim.deny("elasticloadbalancing:ModifyRule");
    let err = sim
        .modify_rule(
            &made.rule_arn,
            &rule_spec(1000, "x.preview.example.com"),
            &made.tg_arn,
        )
        .await
        .unwrap_err();
    let CloudError::AccessDenied { action, message } = err else {
        panic!("expected AccessDenied, got {err:?}");
    };
    assert_eq!(action, "elasticloadbalancing:ModifyRule");
    assert!(message.starts_with(
        "User: arn:aws:sts::123456789012:assumed-role/previewd/i-1 is not authorized to perform: \
         elasticloadbalancing:ModifyRule on resource: "
    ));
    assert!(message.contains(&made.rule_arn));
    // Other ELB calls still work, and allowing it again restores it.
    sim.listener(LISTENER).await.unwrap();
    sim.allow("elbv2:ModifyRule");
    sim.modify_rule(
        &made.rule_arn,
        &rule_spec(1000, "x.preview.example.com"),
        &made.tg_arn,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn tag_on_create_needs_the_tagging_permission() {
    let sim = sim();
    sim.deny("elasticloadbalancing:AddTags");
    let err = sim.create_target_group(&tg_spec("pv-a")).await.unwrap_err();
    assert!(
        matches!(err, CloudError::AccessDenied { action, .. } if action == "elasticloadbalancing:AddTags")
    );
    assert!(sim.snapshot().target_groups.is_empty());
}

#[tokio::test(start_paused = true)]
async fn throttling_refuses_past_the_bucket() {
    let sim = sim();
    sim.set_throttling(true);
    // RegisterTaskDefinition: 20 burst, 1 per second.
    for _ in 0..20 {
        sim.register_task_definition(&task_def("a")).await.unwrap();
    }
    let err = sim
        .register_task_definition(&task_def("a"))
        .await
        .unwrap_err();
    assert_eq!(err, CloudError::Throttled("Rate exceeded".into()));
    tokio::time::advance(Duration::from_secs(1)).await;
    sim.register_task_definition(&task_def("a")).await.unwrap();
    assert_eq!(calls(&sim, "ecs:RegisterTaskDefinition"), 22);
    assert_eq!(
        sim.task_definition("pv-a").await.unwrap().unwrap().revision,
        21
    );
}

#[tokio::test(start_paused = true)]
async fn every_elb_call_spends_the_shared_account_bucket() {
    let sim = sim();
    sim.set_throttling(true);
    for _ in 0..40 {
        sim.target_groups("pv-").await.unwrap();
    }
    // The mutating bucket is full, but the account bucket is empty.
    let err = sim.create_target_group(&tg_spec("pv-a")).await.unwrap_err();
    assert!(matches!(err, CloudError::Throttled(_)));
    // Other services have their own buckets.
    sim.create_log_group("/ecs/pv-a", 14, &Tags::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn faults_are_seeded_and_replayable() {
    async fn run(seed: u64) -> Vec<bool> {
        let sim = Sim::new(SimConfig {
            seed,
            fault_rate: 0.5,
            ..SimConfig::default()
        });
        let mut out = Vec::new();
        for _ in 0..32 {
            out.push(sim.records().await.is_ok());
        }
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert!(a.contains(&true) && a.contains(&false));
    assert_ne!(a, run(8).await);
}

#[tokio::test]
async fn a_fault_before_apply_changes_nothing() {
    let sim = sim();
    sim.set_fault_rate(1.0);
    let err = sim.create_target_group(&tg_spec("pv-a")).await.unwrap_err();
    assert_eq!(err.code(), "InternalFailure");
    assert!(sim.snapshot().target_groups.is_empty());
}

#[tokio::test]
async fn a_lost_response_still_applies() {
    let sim = sim();
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    sim.set_fault_after_apply_rate(1.0);
    let err = sim
        .create_rule(&rule_spec(1000, "a.preview.example.com"), &tg)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Transient { .. }));
    // Reads never lose responses; the rule is there, and a blind retry collides.
    sim.listener(LISTENER).await.unwrap();
    sim.set_fault_after_apply_rate(0.0);
    let retry = sim
        .create_rule(&rule_spec(1000, "a.preview.example.com"), &tg)
        .await;
    assert_eq!(retry, Err(CloudError::PriorityInUse(1000)));
}

#[tokio::test]
async fn calls_count_refused_requests_and_reset() {
    let sim = sim();
    sim.deny("route53:ChangeResourceRecordSets");
    let _ = sim.change(&[]).await;
    sim.records().await.unwrap();
    assert_eq!(calls(&sim, "route53:ChangeResourceRecordSets"), 1);
    assert_eq!(sim.total_calls(), 2);
    sim.reset_calls();
    assert!(sim.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn latency_is_paid_per_request() {
    let sim = Sim::new(SimConfig {
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    });
    let names: Vec<String> = (0..25).map(|i| format!("pv-{i}")).collect();
    let start = tokio::time::Instant::now();
    sim.services(&names).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test]
async fn clones_share_one_account_behind_every_port() {
    let sim = sim();
    let compute: Arc<dyn Compute> = Arc::new(sim.clone());
    let logs: Arc<dyn Logs> = Arc::new(sim.clone());
    let _lb: Arc<dyn LoadBalancer> = Arc::new(sim.clone());
    let _dns: Arc<dyn Dns> = Arc::new(sim.clone());
    logs.create_log_group("/ecs/pv-a", 14, &Tags::new())
        .await
        .unwrap();
    compute
        .register_task_definition(&task_def("a"))
        .await
        .unwrap();
    let snap = sim.snapshot();
    assert_eq!((snap.log_groups.len(), snap.task_definitions.len()), (1, 1));
}

#[tokio::test]
async fn snapshot_tells_a_clean_teardown_from_a_leak() {
    let sim = sim();
    let prod = sim.add_foreign_target_group("prod", Tags::new());
    sim.add_foreign_rule_forwarding(1, "shop.example.com", &prod, Tags::new());
    sim.add_foreign_log_group("/ecs/prod");
    sim.add_foreign_service("prod");
    sim.add_foreign_record(DnsRecord {
        name: "shop.preview.example.com".into(),
        kind: RecordType::Cname,
        ttl: Some(300),
        values: vec!["shop.example.com".into()],
        alias_target: None,
    });
    let foreign = sim.snapshot().foreign_to(CONTROLLER);
    assert_eq!(foreign.len(), 6);

    let made = provision(&sim, "issue-1", 1000).await;
    let host = "issue-1-preview.preview.example.com";
    let marker = DnsRecord {
        name: host.into(),
        kind: RecordType::Txt,
        ttl: Some(300),
        values: vec![dns_owner_marker(CONTROLLER, "issue-1")],
        alias_target: None,
    };
    let change = |action| DnsChange {
        action,
        record: marker.clone(),
    };
    sim.change(&[change(DnsAction::Upsert)]).await.unwrap();
    assert_eq!(sim.snapshot().owned_by(CONTROLLER).len(), 6);

    // Teardown in the design's order leaves nothing of ours.
    let name = family("issue-1");
    sim.change(&[change(DnsAction::Delete)]).await.unwrap();
    sim.update_service(&name, &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    sim.delete_service(&name).await.unwrap();
    sim.delete_rule(&made.rule_arn).await.unwrap();
    sim.delete_target_group(&made.tg_arn).await.unwrap();
    sim.deregister_task_definitions(&name).await.unwrap();
    sim.delete_log_group(&format!("/ecs/{name}")).await.unwrap();
    let after = sim.snapshot();
    assert!(
        after.owned_by(CONTROLLER).is_empty(),
        "{:?}",
        after.owned_by(CONTROLLER)
    );
    assert_eq!(after.foreign_to(CONTROLLER), foreign);
}

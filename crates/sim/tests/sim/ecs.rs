//! ECS: services, deployments, task definitions.

use crate::*;
use previewd_core::CloudError;
use previewd_core::observed::RolloutState;
use previewd_core::ports::{Compute, LoadBalancer, Logs};
use previewd_sim::{LOG_GROUP_MISSING, Sim, SimConfig};
use std::time::Duration;

fn timed() -> Sim {
    Sim::new(SimConfig {
        service_stable_after: Duration::from_secs(30),
        target_healthy_after: Duration::from_secs(10),
        drain_after: Duration::from_secs(60),
        ..SimConfig::default()
    })
}

fn svc_name(slug: &str) -> Vec<String> {
    vec![family(slug)]
}

#[tokio::test(start_paused = true)]
async fn duplicate_create_service_is_an_error() {
    let sim = timed();
    let made = provision(&sim, "issue-1", 1000).await;
    let again = sim
        .create_service(&service_spec("issue-1"), &made.td_arn, Some(&made.tg_arn))
        .await;
    assert!(matches!(again, Err(CloudError::AlreadyExists(m)) if m.contains("not idempotent")));

    // Still refused while DRAINING, allowed again once INACTIVE.
    let name = family("issue-1");
    sim.update_service(&name, &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    sim.delete_service(&name).await.unwrap();
    let draining = sim
        .create_service(&service_spec("issue-1"), &made.td_arn, Some(&made.tg_arn))
        .await;
    assert!(matches!(draining, Err(CloudError::AlreadyExists(_))));
    tokio::time::advance(Duration::from_secs(60)).await;
    sim.create_service(&service_spec("issue-1"), &made.td_arn, Some(&made.tg_arn))
        .await
        .unwrap();
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(svc.status, "ACTIVE");
}

#[tokio::test(start_paused = true)]
async fn deleting_a_scaled_service_is_refused() {
    let sim = timed();
    provision(&sim, "issue-1", 1000).await;
    let err = sim.delete_service(&family("issue-1")).await.unwrap_err();
    assert_eq!(
        err,
        CloudError::ResourceInUse(
            "The service cannot be stopped while it is scaled above 0".into()
        )
    );
    // Gone already is success.
    sim.delete_service("pv-never-was").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn deleted_service_drains_then_turns_inactive() {
    let sim = timed();
    let made = provision(&sim, "issue-1", 1000).await;
    let name = family("issue-1");
    sim.update_service(&name, &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    sim.delete_service(&name).await.unwrap();
    assert_eq!(
        sim.services(&svc_name("issue-1")).await.unwrap()[0].status,
        "DRAINING"
    );
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        sim.services(&svc_name("issue-1")).await.unwrap()[0].status,
        "DRAINING"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        sim.services(&svc_name("issue-1")).await.unwrap()[0].status,
        "INACTIVE"
    );
    // Deleting again is still success.
    sim.delete_service(&name).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn updating_a_missing_or_inactive_service_is_not_found() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    let missing = sim
        .update_service("pv-nope", &made.td_arn, 1, &ours("nope"))
        .await;
    assert!(matches!(missing, Err(CloudError::NotFound(_))));
    let name = family("issue-1");
    sim.update_service(&name, &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    sim.delete_service(&name).await.unwrap();
    let inactive = sim
        .update_service(&name, &made.td_arn, 1, &ours("issue-1"))
        .await;
    assert!(matches!(inactive, Err(CloudError::NotFound(_))));
}

#[tokio::test]
async fn describe_services_costs_one_call_per_ten_names() {
    let sim = sim();
    sim.add_foreign_service("web");
    sim.add_foreign_service("api");
    let mut names: Vec<String> = (0..23).map(|i| format!("pv-missing-{i}")).collect();
    names.push("web".into());
    names.push("api".into());
    let found = sim.services(&names).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(calls(&sim, "ecs:DescribeServices"), 3);
}

#[tokio::test]
async fn task_definition_revisions_count_up_and_deregister_all() {
    let sim = sim();
    let one = sim
        .register_task_definition(&task_def("issue-1"))
        .await
        .unwrap();
    let two = sim
        .register_task_definition(&task_def("issue-1"))
        .await
        .unwrap();
    assert_eq!(
        one.arn,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/pv-issue-1:1"
    );
    assert_eq!(two.revision, 2);
    sim.add_foreign_task_definition("billing");
    assert_eq!(sim.task_definition("pv-issue-1").await.unwrap(), Some(two));
    assert_eq!(
        sim.task_definition_families("pv-").await.unwrap(),
        vec!["pv-issue-1"]
    );

    sim.deregister_task_definitions("pv-issue-1").await.unwrap();
    assert_eq!(calls(&sim, "ecs:DeregisterTaskDefinition"), 2);
    assert_eq!(sim.task_definition("pv-issue-1").await.unwrap(), None);
    assert!(
        sim.task_definition_families("pv-")
            .await
            .unwrap()
            .is_empty()
    );
    // Revision numbers never repeat.
    let three = sim
        .register_task_definition(&task_def("issue-1"))
        .await
        .unwrap();
    assert_eq!(three.revision, 3);
}

#[tokio::test]
async fn an_inactive_task_definition_cannot_start_a_service() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    sim.deregister_task_definitions("pv-issue-1").await.unwrap();
    let mut spec = service_spec("issue-1");
    spec.name = "pv-other".into();
    let err = sim
        .create_service(&spec, &made.td_arn, Some(&made.tg_arn))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudError::Invalid { code, message } if code == "ClientException" && message.contains("inactive"))
    );
}

#[tokio::test(start_paused = true)]
async fn rollout_completes_after_the_stable_delay_and_the_target_turns_healthy() {
    let sim = timed();
    let made = provision(&sim, "issue-1", 1000).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    let primary = svc.primary().unwrap();
    assert_eq!(
        (primary.rollout_state, svc.running_count),
        (RolloutState::InProgress, 0)
    );
    assert_eq!(svc.target_group_arn.as_deref(), Some(made.tg_arn.as_str()));

    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(
        svc.primary().unwrap().rollout_state,
        RolloutState::Completed
    );
    assert_eq!(svc.running_count, 1);
    let health = sim.target_health(&made.tg_arn).await.unwrap();
    assert_eq!((health.healthy, health.initial), (0, 1));

    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(sim.target_health(&made.tg_arn).await.unwrap().healthy, 1);
    let deployment = &svc.primary().unwrap().id;
    assert_eq!(
        sim.stopped_reason(&family("issue-1"), deployment)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn task_without_log_group_fails_with_reason() {
    let sim = timed();
    provision(&sim, "issue-1", 1000).await;
    sim.delete_log_group("/ecs/pv-issue-1").await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    let primary = svc.primary().unwrap();
    assert_eq!(primary.rollout_state, RolloutState::Failed);
    assert_eq!(primary.rollout_reason.as_deref(), Some(LOG_GROUP_MISSING));
    assert_eq!(svc.running_count, 0);
    let reason = sim
        .stopped_reason(&family("issue-1"), &primary.id)
        .await
        .unwrap();
    assert!(
        reason
            .unwrap()
            .contains("The specified log group does not exist.")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_rollout_is_retried_by_the_next_update() {
    let sim = timed();
    let made = provision(&sim, "issue-1", 1000).await;
    sim.fail_tasks_of(
        &family("issue-1"),
        "CannotPullContainerError: pull access denied",
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(svc.primary().unwrap().rollout_state, RolloutState::Failed);
    let deployment = &svc.primary().unwrap().id;
    let reason = sim
        .stopped_reason(&family("issue-1"), deployment)
        .await
        .unwrap();
    assert_eq!(
        reason.as_deref(),
        Some("CannotPullContainerError: pull access denied")
    );

    sim.heal_tasks_of(&family("issue-1"));
    sim.update_service(&family("issue-1"), &made.td_arn, 1, &ours("issue-1"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(
        svc.primary().unwrap().rollout_state,
        RolloutState::Completed
    );
    assert_eq!(svc.deployments.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_task_definition_replaces_the_old_deployment_once_it_completes() {
    let sim = timed();
    provision(&sim, "issue-1", 1000).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let two = sim
        .register_task_definition(&task_def("issue-1"))
        .await
        .unwrap();
    sim.update_service(&family("issue-1"), &two.arn, 1, &ours("issue-1"))
        .await
        .unwrap();

    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(svc.deployments.len(), 2);
    assert_eq!(svc.task_definition, two.arn);
    assert!(!svc.deployments[1].primary && svc.deployments[1].running_count == 1);
    assert_eq!(svc.running_count, 1);

    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(svc.deployments.len(), 1);
    assert_eq!(svc.deployments[0].task_definition, two.arn);
    assert_eq!(svc.running_count, 1);
}

#[tokio::test(start_paused = true)]
async fn scaling_to_zero_drops_tasks_and_targets() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    assert_eq!(sim.target_health(&made.tg_arn).await.unwrap().healthy, 1);
    sim.update_service(&family("issue-1"), &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!((svc.desired_count, svc.running_count), (0, 0));
    assert_eq!(
        sim.target_health(&made.tg_arn).await.unwrap(),
        Default::default()
    );
}

#[tokio::test]
async fn a_service_needs_a_target_group_behind_the_listener() {
    let sim = sim();
    sim.create_log_group("/ecs/pv-issue-1", 14, &ours("issue-1"))
        .await
        .unwrap();
    let td = sim
        .register_task_definition(&task_def("issue-1"))
        .await
        .unwrap();
    let nowhere = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/pv-issue-1/0";
    let missing = sim
        .create_service(&service_spec("issue-1"), &td.arn, Some(nowhere))
        .await;
    assert!(matches!(missing, Err(CloudError::NotFound(m)) if m.contains("TargetGroupNotFound")));

    let tg = sim
        .create_target_group(&tg_spec("pv-issue-1"))
        .await
        .unwrap();
    let detached = sim
        .create_service(&service_spec("issue-1"), &td.arn, Some(&tg.arn))
        .await;
    assert!(
        matches!(detached, Err(CloudError::Invalid { message, .. }) if message.contains("does not have an associated load balancer"))
    );
}

#[tokio::test]
async fn update_service_tags_only_when_they_change() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    sim.update_service(&family("issue-1"), &made.td_arn, 1, &ours("issue-1"))
        .await
        .unwrap();
    assert_eq!(calls(&sim, "ecs:TagResource"), 0);
    let mut tags = ours("issue-1");
    tags.insert("previewd:spec-hash".into(), "h2".into());
    sim.update_service(&family("issue-1"), &made.td_arn, 1, &tags)
        .await
        .unwrap();
    assert_eq!(calls(&sim, "ecs:TagResource"), 1);
    let svc = &sim.services(&svc_name("issue-1")).await.unwrap()[0];
    assert_eq!(svc.tags, tags);
}

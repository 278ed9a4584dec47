//! A task that cannot start, relaunched until the circuit breaker trips,
//! its stopped tasks known by deployment; revisions listed and
//! deregistered one at a time (issue 16, items 3 and 5).

use crate::*;
use previewd_core::observed::RolloutState;
use std::time::Duration;

const NOT_FOUND: &str = "CannotPullContainerError: failed to resolve ref shop:abc: not found";

fn slow_breaker() -> Sim {
    Sim::new(SimConfig {
        service_stable_after: Duration::from_secs(30),
        failed_task_relaunch_after: Duration::from_secs(60),
        circuit_breaker_threshold: 3,
        ..SimConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn a_task_that_cannot_start_is_relaunched_until_the_breaker_trips() {
    let sim = slow_breaker();
    provision(&sim, "issue-1", 1000).await;
    let name = family("issue-1");
    sim.fail_tasks_of(&name, NOT_FOUND);
    let look = || async {
        let svc = sim.services(std::slice::from_ref(&name)).await.unwrap();
        svc[0].primary().unwrap().clone()
    };
    tokio::time::advance(Duration::from_secs(30)).await;
    let primary = look().await;
    assert_eq!(primary.rollout_state, RolloutState::InProgress);
    let reason = sim.stopped_reason(&name, &primary.id).await.unwrap();
    assert_eq!(reason.as_deref(), Some(NOT_FOUND));
    // Another deployment launched none of them.
    assert_eq!(
        sim.stopped_reason(&name, "ecs-svc/other").await.unwrap(),
        None
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(look().await.rollout_state, RolloutState::InProgress);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(look().await.rollout_state, RolloutState::Failed);
}

#[tokio::test(start_paused = true)]
async fn scaling_to_zero_stops_the_relaunches_and_scaling_up_starts_a_new_deployment() {
    let sim = slow_breaker();
    let made = provision(&sim, "issue-1", 1000).await;
    let name = family("issue-1");
    sim.fail_tasks_of(&name, NOT_FOUND);
    tokio::time::advance(Duration::from_secs(30)).await;
    let first = sim.services(std::slice::from_ref(&name)).await.unwrap()[0]
        .primary()
        .unwrap()
        .clone();
    sim.update_service(&name, &made.td_arn, 0, &ours("issue-1"))
        .await
        .unwrap();
    // Long past the breaker's three relaunches: none happened.
    tokio::time::advance(Duration::from_secs(600)).await;
    let svc = &sim.services(std::slice::from_ref(&name)).await.unwrap()[0];
    assert_eq!((svc.desired_count, svc.running_count), (0, 0));
    assert_ne!(svc.primary().unwrap().rollout_state, RolloutState::Failed);

    sim.heal_tasks_of(&name);
    sim.update_service(&name, &made.td_arn, 1, &ours("issue-1"))
        .await
        .unwrap();
    let svc = &sim.services(std::slice::from_ref(&name)).await.unwrap()[0];
    let second = svc.primary().unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.rollout_state, RolloutState::InProgress);
    // The first deployment's stopped task is not the new one's.
    assert_eq!(sim.stopped_reason(&name, &second.id).await.unwrap(), None);
    tokio::time::advance(Duration::from_secs(30)).await;
    let svc = &sim.services(std::slice::from_ref(&name)).await.unwrap()[0];
    assert_eq!(svc.running_count, 1);
}

#[tokio::test]
async fn revisions_are_listed_by_exact_family_and_deregistered_one_at_a_time() {
    let sim = sim();
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(
            sim.register_task_definition(&task_def("issue-1"))
                .await
                .unwrap()
                .arn,
        );
    }
    // `familyPrefix` would list this one too: another preview's.
    let theirs = sim
        .register_task_definition(&task_def("issue-10"))
        .await
        .unwrap()
        .arn;
    assert_eq!(
        sim.active_revisions(&family("issue-1")).await.unwrap(),
        mine
    );

    sim.deregister_task_definition(&mine[0]).await.unwrap();
    assert_eq!(
        sim.active_revisions(&family("issue-1")).await.unwrap(),
        mine[1..]
    );
    assert_eq!(
        sim.active_revisions(&family("issue-10")).await.unwrap(),
        [theirs]
    );
    // An INACTIVE revision is still described, as ECS does.
    let old = sim.task_definition(&mine[0]).await.unwrap().unwrap();
    assert_eq!(old.revision, 1);
    let missing = sim
        .deregister_task_definition(&format!("{}:99", family("issue-1")))
        .await;
    assert!(missing.is_err());
}

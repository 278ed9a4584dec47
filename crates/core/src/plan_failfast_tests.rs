//! Failing fast on a task that can never start, holding the failed
//! generation at zero, and deregistering superseded revisions (issue 16,
//! items 3 and 5).

use super::*;

const NOT_FOUND: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:abc123: not found";

/// A rollout under way whose only task stopped for `reason`.
fn rolling(w: &Wanted, reason: &str) -> Observation {
    let mut o = converged(w);
    let svc = o.service.as_mut().unwrap();
    svc.running_count = 0;
    svc.deployments[0].rollout_state = RolloutState::InProgress;
    svc.deployments[0].running_count = 0;
    o.target_health = None;
    o.stopped_reason = Some(reason.into());
    o
}

/// What the service looks like once the failure scaled it to zero.
fn held(w: &Wanted) -> Observation {
    let mut o = converged(w);
    let svc = o.service.as_mut().unwrap();
    (svc.desired_count, svc.running_count) = (0, 0);
    svc.deployments[0].desired_count = 0;
    svc.deployments[0].running_count = 0;
    o.target_health = None;
    o
}

fn failed_at_generation(p: &mut Preview, why: &str) {
    p.status.phase = Phase::Failed;
    p.status.observed_generation = p.generation;
    p.status.message = Some(why.into());
}

fn scales_to(plan: &Plan) -> Vec<i32> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            Change::UpdateService { desired_count, .. } => Some(*desired_count),
            _ => None,
        })
        .collect()
}

#[test]
fn a_task_that_can_never_start_fails_at_once_and_scales_to_zero() {
    let (t, p, w) = setup(Desired::Present);
    let plan = plan(&t, &p, &w, &rolling(&w, NOT_FOUND), &BTreeSet::new());
    assert_eq!(plan.verdict, Verdict::Failed(NOT_FOUND.into()));
    assert_eq!(names(&plan), ["UpdateService"]);
    assert_eq!(scales_to(&plan), [0]);
}

#[test]
fn a_task_that_may_heal_leaves_the_rollout_to_the_circuit_breaker() {
    let (t, p, w) = setup(Desired::Present);
    let o = rolling(&w, "Essential container in task exited");
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(matches!(plan.verdict, Verdict::Progressing(_)));
    assert!(plan.changes.is_empty());
}

#[test]
fn later_passes_over_the_failed_generation_keep_it_at_zero() {
    let (t, mut p, w) = setup(Desired::Present);
    failed_at_generation(&mut p, NOT_FOUND);
    let o = held(&w);
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert_eq!(plan.verdict, Verdict::Failed(NOT_FOUND.into()));
    // Nor do they list revisions: a service at zero is never Ready.
    assert!(!needs_revisions(&p, o.service.as_ref(), true));
}

#[test]
fn a_new_generation_scales_the_held_service_back_up() {
    let (t, mut p, w) = setup(Desired::Present);
    failed_at_generation(&mut p, NOT_FOUND);
    // The identical dispatch that `command::deploy_step` turns into a retry.
    p.generation += 1;
    let plan = plan(&t, &p, &w, &held(&w), &BTreeSet::new());
    assert_eq!(scales_to(&plan), [w.service.desired_count]);
    assert_eq!(plan.verdict, Verdict::Working);
}

#[test]
fn the_pass_that_finds_ready_deregisters_what_the_rollout_superseded() {
    let (t, mut p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    let rev = |n: i64| format!("arn:td/{}:{n}", w.names.family);
    let svc = o.service.as_mut().unwrap();
    svc.task_definition = rev(3);
    svc.deployments[0].task_definition = rev(3);
    o.revisions = Some(vec![rev(1), rev(2), rev(3)]);
    assert!(needs_revisions(&p, o.service.as_ref(), true));
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(plan.verdict, Verdict::Ready);
    assert_eq!(
        plan.changes,
        [Change::DeregisterTaskDefinition { arn: rev(1) }]
    );
    // Running revision 2: only 1 and 2 can be ACTIVE, both kept.
    let svc = o.service.as_mut().unwrap();
    svc.task_definition = rev(2);
    assert!(!needs_revisions(&p, o.service.as_ref(), true));
    // Ready at this generation: the steady resync lists no revisions.
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    assert!(!needs_revisions(&p, o.service.as_ref(), true));
}

proptest! {
    /// However a pass finds a generation that failed and stands at zero,
    /// it never scales that generation up again; and a plan that fails
    /// fast scales to zero and does nothing else.
    #[test]
    fn a_failed_generation_is_never_scaled_back_up(
        o in arb_observation(&setup(Desired::Present).2),
        reason in prop::sample::select(&[NOT_FOUND, "Essential container in task exited", "AccessDenied: ecr:BatchGetImage"][..]),
        rolling_state in any::<bool>(),
    ) {
        let (t, mut p, w) = setup(Desired::Present);
        failed_at_generation(&mut p, reason);
        let mut o = o;
        if let Some(svc) = o.service.as_mut() {
            (svc.desired_count, svc.running_count) = (0, 0);
            if rolling_state {
                svc.deployments[0].rollout_state = RolloutState::InProgress;
            }
        }
        o.stopped_reason = Some(reason.into());
        let again = plan(&t, &p, &w, &o, &BTreeSet::new());
        prop_assert!(scales_to(&again).iter().all(|n| *n == 0), "{:?}", again.changes);

        let fresh = setup(Desired::Present).1;
        let fast = plan(&t, &fresh, &w, &rolling(&w, reason), &BTreeSet::new());
        if matches!(fast.verdict, Verdict::Failed(_)) {
            prop_assert_eq!(scales_to(&fast), vec![0]);
            prop_assert_eq!(fast.changes.len(), 1);
        }
    }
}

proptest! {
    /// Listing revisions is skipped only where the plan could deregister
    /// nothing: every revision it may deregister is older than the one
    /// before the running one, so none exists below revision 3.
    #[test]
    fn revisions_are_listed_whenever_one_could_be_superseded(running in 1u64..50, others in proptest::collection::vec(1u64..50, 0..8)) {
        let (t, p, w) = setup(Desired::Present);
        let mut o = converged(&w);
        let rev = |n: u64| format!("arn:td/{}:{n}", w.names.family);
        let svc = o.service.as_mut().unwrap();
        svc.task_definition = rev(running);
        svc.deployments[0].task_definition = rev(running);
        let mut all: Vec<u64> = others.into_iter().chain([running]).collect();
        all.sort_unstable();
        all.dedup();
        o.revisions = Some(all.iter().map(|n| rev(*n)).collect());
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        let deregisters = plan.changes.iter().any(|c| matches!(c, Change::DeregisterTaskDefinition { .. }));
        if deregisters {
            prop_assert!(needs_revisions(&p, o.service.as_ref(), true));
        }
        prop_assert_eq!(needs_revisions(&p, o.service.as_ref(), true), running > 2);
    }
}

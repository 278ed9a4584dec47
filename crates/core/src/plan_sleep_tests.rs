//! Sleep and wake as plans: the rule modified in place, the service at 0/1.

use super::*;

const WAKER: &str = "arn:tg/previewd-waker";

/// A converged, Ready preview on a load balancer with a waker.
fn awake() -> (Template, Preview, Wanted, Observation) {
    let (t, mut p, w) = setup(Desired::Present);
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    let mut o = converged(&w);
    o.listener.waker_target_group = Some(WAKER.into());
    (t, p, w, o)
}

/// AWS once the preview sleeps: at zero, its rule on the waker.
fn slept(o: &mut Observation) {
    let svc = o.service.as_mut().unwrap();
    svc.desired_count = 0;
    svc.running_count = 0;
    svc.deployments[0].desired_count = 0;
    svc.deployments[0].running_count = 0;
    o.listener.rules[0].target_group_arn = Some(WAKER.into());
    o.target_health = None;
}

fn rule_target(plan: &Plan) -> Option<(&str, Option<&str>)> {
    plan.changes.iter().find_map(|c| match c {
        Change::ModifyRule {
            arn,
            target_group_arn,
            ..
        } => Some((arn.as_str(), target_group_arn.as_deref())),
        _ => None,
    })
}

fn desired_count(plan: &Plan) -> Option<i32> {
    plan.changes.iter().find_map(|c| match c {
        Change::UpdateService { desired_count, .. } => Some(*desired_count),
        _ => None,
    })
}

#[test]
fn an_asleep_preview_moves_its_rule_to_the_waker_in_place_then_scales_to_zero() {
    let (t, mut p, w, o) = awake();
    p.asleep = true;
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(names(&plan), ["ModifyRule", "UpdateService"]);
    assert_eq!(rule_target(&plan), Some(("arn:rule/ours", Some(WAKER))));
    assert_eq!(desired_count(&plan), Some(0));
    assert_eq!(plan.verdict, Verdict::Working);
}

#[test]
fn an_asleep_preview_at_zero_on_the_waker_is_sleeping_and_changes_nothing() {
    let (t, mut p, w, mut o) = awake();
    p.asleep = true;
    slept(&mut o);
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(plan, Plan::done(Verdict::Sleeping));
}

#[test]
fn without_a_waker_on_its_load_balancer_a_preview_stays_awake() {
    let (t, mut p, w, mut o) = awake();
    p.asleep = true;
    o.listener.waker_target_group = None;
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(plan, Plan::done(Verdict::Ready));
}

#[test]
fn a_woken_preview_scales_up_first_and_keeps_the_waker_until_healthy() {
    let (t, mut p, w, mut o) = awake();
    p.status.phase = Phase::Sleeping;
    slept(&mut o);
    let plan1 = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(names(&plan1), ["UpdateService"]);
    assert_eq!(desired_count(&plan1), Some(1));

    // Scaled up, the task starting: the rule stays on the waker.
    let svc = o.service.as_mut().unwrap();
    svc.desired_count = 1;
    svc.deployments[0].desired_count = 1;
    let plan2 = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan2.changes.is_empty(), "{plan2:?}");
    assert!(matches!(plan2.verdict, Verdict::Progressing(_)));

    // Healthy: the same rule goes back to the preview's own group.
    let svc = o.service.as_mut().unwrap();
    svc.running_count = 1;
    svc.deployments[0].running_count = 1;
    o.target_health = Some(TargetHealth {
        healthy: 1,
        ..Default::default()
    });
    let plan3 = plan(&t, &p, &w, &o, &BTreeSet::new());
    let own = o.target_group.as_ref().unwrap().arn.clone();
    assert_eq!(
        rule_target(&plan3),
        Some(("arn:rule/ours", Some(own.as_str())))
    );
    assert_eq!(names(&plan3), ["ModifyRule"]);
}

#[test]
fn a_sleeping_preview_looks_up_no_target_health() {
    let (_, mut p, _, mut o) = awake();
    p.asleep = true;
    p.status.phase = Phase::Sleeping;
    slept(&mut o);
    assert!(!needs_target_health(&p, o.service.as_ref(), true));
}

proptest! {
    #[test]
    fn sleep_and_wake_never_recreate_a_rule_and_respect_the_counts(
        mut o in arb_observation(&awake().2),
        (asleep, on_waker, at_zero, sleeping_phase) in any::<(bool, bool, bool, bool)>(),
    ) {
        o.listener.waker_target_group = Some(WAKER.into());
        if on_waker && let Some(r) = o.listener.rules.first_mut() {
            r.target_group_arn = Some(WAKER.into());
        }
        if at_zero && let Some(s) = o.service.as_mut() {
            s.desired_count = 0;
        }
        let (t, mut p, w, _) = awake();
        p.asleep = asleep;
        if sleeping_phase {
            p.status.phase = Phase::Sleeping;
        }
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        let own = o.target_group.as_ref().map(|g| g.arn.as_str());
        let healthy = o.target_health.is_some_and(|h| h.healthy > 0);
        for c in &plan.changes {
            match c {
                Change::DeleteRule { .. } => prop_assert!(false, "a rule deleted: {c:?}"),
                Change::CreateRule { .. } => prop_assert!(o.listener.rules.iter().all(|r| r.arn != "arn:rule/ours"), "{c:?}"),
                Change::ModifyRule { arn, target_group_arn, .. } => {
                    prop_assert_eq!(arn.as_str(), "arn:rule/ours");
                    if asleep {
                        prop_assert_eq!(target_group_arn.as_deref(), Some(WAKER));
                    } else if target_group_arn.as_deref() == Some(WAKER) {
                        // Awake, the waker is kept only until healthy.
                        prop_assert!(!healthy);
                    } else {
                        prop_assert_eq!(target_group_arn.as_deref(), own);
                    }
                }
                Change::UpdateService { desired_count, .. } => {
                    prop_assert_eq!(*desired_count, if asleep { 0 } else { 1 });
                }
                Change::CreateService { spec, .. } => {
                    prop_assert_eq!(spec.desired_count, if asleep { 0 } else { 1 });
                }
                _ => {}
            }
        }
        if plan.verdict == Verdict::Sleeping {
            prop_assert!(asleep && plan.changes.is_empty());
        }
        if plan.verdict == Verdict::Ready {
            // Serving means the rule is on the preview's own group.
            prop_assert!(!asleep);
            prop_assert!(o.listener.rules.first().is_some_and(|r| r.target_group_arn.as_deref() != Some(WAKER)));
        }
    }
}

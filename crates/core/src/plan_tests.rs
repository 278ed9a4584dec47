use super::*;
use crate::error::CloudError;
use crate::key::PreviewKey;
use crate::model::*;
use crate::render::{Template, render};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn preview(desired: Desired) -> Preview {
    let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let key = PreviewKey::new("acme/shop", "qanote/issue-42").unwrap();
    let spec = PreviewSpec {
        commit_sha: Some("abc123".into()),
        ..Default::default()
    };
    let mut p = Preview::fresh(key, "qanote-issue-42", "issue-42-preview", spec, t0);
    p.desired = desired;
    p.rule_priority = Some(1000);
    p
}

/// Everything the preview wants, as AWS would show it once it runs.
fn converged(w: &Wanted) -> Observation {
    let td_arn = format!("arn:td/{}:1", w.names.family);
    let tg_arn = format!("arn:tg/{}", w.names.target_group);
    Observation {
        log_group: Some(ObservedLogGroup {
            name: w.names.log_group.clone(),
            retention_days: Some(14),
            tags: w.tags.clone(),
        }),
        task_definition: None,
        service: Some(ObservedService {
            name: w.names.service.clone(),
            arn: "arn:svc".into(),
            status: "ACTIVE".into(),
            task_definition: td_arn.clone(),
            desired_count: 1,
            running_count: 1,
            target_group_arn: Some(tg_arn.clone()),
            deployments: vec![Deployment {
                id: "ecs-svc/1".into(),
                primary: true,
                task_definition: td_arn,
                desired_count: 1,
                running_count: 1,
                rollout_state: RolloutState::Completed,
                rollout_reason: None,
            }],
            tags: w.service.tags.clone(),
        }),
        service_spec_hash: Some(w.task_definition.spec_hash.clone()),
        target_group: Some(ObservedTargetGroup {
            arn: tg_arn.clone(),
            name: w.names.target_group.clone(),
            port: 80,
            tags: w.tags.clone(),
        }),
        listener: ListenerState {
            rules: vec![ObservedRule {
                arn: "arn:rule/ours".into(),
                priority: Some(1000),
                hosts: vec![w.names.host.clone()],
                target_group_arn: Some(tg_arn),
                tags: w.tags.clone(),
                auth: None,
            }],
            alb_target_groups: 1,
            alb_rules: 1,
            waker_target_group: None,
        },
        records: w.dns_records.clone(),
        target_health: Some(TargetHealth {
            healthy: 1,
            ..Default::default()
        }),
        stopped_reason: None,
        image: ImageCheck::NotChecked,
        revisions: None,
        pool: Default::default(),
    }
}

fn names(plan: &Plan) -> Vec<&'static str> {
    plan.changes.iter().map(Change::name).collect()
}

fn foreign_rule(priority: i32, host: &str) -> ObservedRule {
    ObservedRule {
        arn: format!("arn:rule/foreign-{priority}"),
        priority: Some(priority),
        hosts: vec![host.into()],
        target_group_arn: Some("arn:tg/prod".into()),
        tags: Tags::new(),
        auth: None,
    }
}

fn setup(desired: Desired) -> (Template, Preview, Wanted) {
    let t = Template::default();
    let p = preview(desired);
    let w = render(&t, &p);
    (t, p, w)
}

#[test]
fn a_fresh_preview_is_created_in_dependency_order() {
    let (t, p, w) = setup(Desired::Present);
    let plan = plan(&t, &p, &w, &Observation::default(), &BTreeSet::new());
    assert_eq!(
        names(&plan),
        [
            "CreateLogGroup",
            "RegisterTaskDefinition",
            "CreateTargetGroup",
            "CreateRule",
            "CreateService",
            "ChangeResourceRecordSets"
        ]
    );
    assert_eq!(plan.verdict, Verdict::Working);
}

#[test]
fn a_converged_healthy_preview_needs_nothing_and_is_ready() {
    let (t, p, w) = setup(Desired::Present);
    let plan = plan(&t, &p, &w, &converged(&w), &BTreeSet::new());
    assert_eq!(
        plan,
        Plan {
            changes: vec![],
            verdict: Verdict::Ready
        }
    );
}

#[test]
fn rerun_with_a_new_commit_modifies_in_place() {
    let (t, mut p, w) = setup(Desired::Present);
    let mut observed = converged(&w);
    p.spec.commit_sha = Some("def456".into());
    p.generation = 2;
    let w2 = render(&t, &p);
    let plan = plan(&t, &p, &w2, &observed, &BTreeSet::new());
    assert_eq!(names(&plan), ["RegisterTaskDefinition", "UpdateService"]);
    // Back to the first commit: its revision is still the latest with that
    // hash, so no new revision, just the update.
    observed.service_spec_hash = Some(w2.task_definition.spec_hash.clone());
    observed.task_definition = Some(ObservedTaskDefinition {
        arn: "arn:td/1".into(),
        family: w.names.family.clone(),
        revision: 1,
        tags: w.task_definition.tags.clone(),
    });
    let back = super::plan(
        &t,
        &preview(Desired::Present),
        &w,
        &observed,
        &BTreeSet::new(),
    );
    assert_eq!(names(&back), ["UpdateService"]);
    assert!(!plan.changes.iter().any(|c| matches!(
        c,
        Change::DeleteRule { .. } | Change::CreateRule { .. } | Change::CreateService { .. }
    )));
}

#[test]
fn a_rule_pointing_elsewhere_is_modified_not_recreated() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    o.listener.rules[0].hosts = vec!["old-host.example.com".into()];
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(names(&plan), ["ModifyRule"]);
}

#[test]
fn a_full_load_balancer_leaves_the_preview_waiting_with_its_reason() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = Observation::default();
    o.listener.alb_target_groups = MAX_TARGET_GROUPS_PER_ALB;
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan.changes.is_empty());
    assert!(matches!(&plan.verdict, Verdict::Waiting(why) if why.contains("100 target groups")));
}

#[test]
fn the_rule_goes_on_the_listener_the_template_is_placed_on() {
    let (t, p, w) = setup(Desired::Present);
    let l = crate::pool::PoolListener {
        arn: "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/second/2/2".into(),
        alb_dns_name: "Second-ALB.elb.amazonaws.com".into(),
        alb_zone_id: "ZSECOND".into(),
        priority_band: (5000, 5099),
        rule_quota: 50,
        draining: false,
    };
    let placed = crate::pool::template_for(&t, &l);
    let w2 = crate::render::render(&placed, &p);
    let plan = plan(&placed, &p, &w2, &Observation::default(), &BTreeSet::new());
    let rule = plan.changes.iter().find_map(|c| match c {
        Change::CreateRule { spec, .. } => Some(spec.clone()),
        _ => None,
    });
    let rule = rule.expect("a rule is created");
    assert_eq!(
        (rule.listener_arn.as_str(), rule.priority),
        (l.arn.as_str(), 5000)
    );
    // The alias points at the preview's own ALB, not the first one.
    let alias = w2.dns_records[0].alias_target.clone().unwrap();
    assert_eq!(alias.dns_name, "second-alb.elb.amazonaws.com");
    assert_eq!(alias.hosted_zone_id, "ZSECOND");
    assert_ne!(
        w.dns_records[0].alias_target,
        w2.dns_records[0].alias_target
    );
}

#[test]
fn a_full_priority_band_waits_too() {
    let (mut t, mut p, w) = setup(Desired::Present);
    t.priority_band = (1, 2);
    p.rule_priority = None;
    let reserved = BTreeSet::from([1, 2]);
    let plan = plan(&t, &p, &w, &Observation::default(), &reserved);
    assert!(matches!(&plan.verdict, Verdict::Waiting(why) if why.contains("priority")));
}

#[test]
fn priority_skips_foreign_rules_and_other_rows() {
    let (t, mut p, w) = setup(Desired::Present);
    p.rule_priority = None;
    let mut o = Observation::default();
    o.listener.rules = vec![foreign_rule(1000, "prod.example.com")];
    let plan = plan(&t, &p, &w, &o, &BTreeSet::from([1001]));
    assert!(plan.changes.contains(&Change::ReservePriority(1002)));
    assert!(
        plan.changes
            .iter()
            .any(|c| matches!(c, Change::CreateRule { spec, .. } if spec.priority == 1002))
    );
}

#[test]
fn a_held_priority_taken_meanwhile_by_a_foreign_rule_is_replaced() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = Observation::default();
    o.listener.rules = vec![foreign_rule(1000, "prod.example.com")];
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan.changes.contains(&Change::ReservePriority(1001)));
}

#[test]
fn a_foreign_rule_for_our_host_is_a_conflict_and_nothing_is_touched() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    o.listener.rules.push(foreign_rule(5, &w.names.host));
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan.changes.is_empty());
    assert!(matches!(&plan.verdict, Verdict::Failed(why) if why.contains("does not own")));
}

#[test]
fn a_look_alike_target_group_without_our_tag_is_never_touched() {
    for desired in [Desired::Present, Desired::Absent] {
        let (t, p, w) = setup(desired);
        let o = Observation {
            target_group: Some(ObservedTargetGroup {
                arn: "arn:tg/x".into(),
                name: w.names.target_group.clone(),
                port: 80,
                tags: Tags::new(),
            }),
            ..Default::default()
        };
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        assert!(
            !plan.changes.iter().any(|c| matches!(
                c,
                Change::DeleteTargetGroup { .. } | Change::CreateTargetGroup(_)
            )),
            "{desired:?}"
        );
    }
}

#[test]
fn teardown_runs_in_reverse_order_and_scales_to_zero_first() {
    let (t, p, w) = setup(Desired::Absent);
    let mut o = converged(&w);
    o.task_definition = Some(ObservedTaskDefinition {
        arn: "arn:td".into(),
        family: w.names.family.clone(),
        revision: 1,
        tags: w.task_definition.tags.clone(),
    });
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(
        names(&plan),
        [
            "ChangeResourceRecordSets",
            "UpdateService",
            "DeleteService",
            "DeleteRule",
            "ReleasePriority",
            "DeleteTargetGroup",
            "DeregisterTaskDefinition",
            "DeleteLogGroup"
        ]
    );
    assert!(matches!(
        &plan.changes[1],
        Change::UpdateService {
            desired_count: 0,
            ..
        }
    ));
}

#[test]
fn teardown_of_nothing_is_gone_and_draining_waits() {
    let (t, mut p, w) = setup(Desired::Absent);
    p.rule_priority = None;
    assert_eq!(
        plan(&t, &p, &w, &Observation::default(), &BTreeSet::new()).verdict,
        Verdict::Gone
    );
    let mut o = Observation::default();
    let mut svc = converged(&w).service.unwrap();
    svc.status = "DRAINING".into();
    o.service = Some(svc);
    assert!(matches!(
        plan(&t, &p, &w, &o, &BTreeSet::new()).verdict,
        Verdict::Progressing(_)
    ));
}

#[test]
fn a_failed_rollout_fails_with_the_stopped_reason() {
    let (t, mut p, w) = setup(Desired::Present);
    p.status.observed_generation = p.generation;
    let mut o = converged(&w);
    let svc = o.service.as_mut().unwrap();
    svc.deployments[0].rollout_state = RolloutState::Failed;
    svc.deployments[0].running_count = 0;
    o.stopped_reason = Some("ResourceInitializationError: log group does not exist".into());
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(
        matches!(&plan.verdict, Verdict::Failed(why) if why.contains("log group does not exist"))
    );
}

#[test]
fn steady_state_needs_no_task_definition_or_health_lookup() {
    let (_, mut p, w) = setup(Desired::Present);
    let o = converged(&w);
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    assert!(!needs_task_definition(
        &p,
        &w.task_definition.spec_hash,
        o.service_spec_hash.as_deref()
    ));
    assert!(!needs_target_health(&p, o.service.as_ref(), true));
    assert!(!needs_stopped_reason(&p, o.service.as_ref()));
    p.generation += 1;
    assert!(needs_target_health(&p, o.service.as_ref(), true));
    // A new generation whose service still runs the old spec: the targets
    // are the old generation's, and their health is not asked for.
    assert!(!needs_target_health(&p, o.service.as_ref(), false));
    assert!(!needs_revisions(&p, o.service.as_ref(), false));
}

/// Any subset of a converged preview's resources, plus foreign noise.
fn arb_observation(w: &Wanted) -> impl Strategy<Value = Observation> {
    let full = converged(w);
    (any::<[bool; 6]>(), any::<bool>()).prop_map(move |(keep, noise)| {
        let mut o = full.clone();
        if !keep[0] {
            o.log_group = None;
        }
        if !keep[1] {
            o.service = None;
        }
        if !keep[2] {
            o.target_group = None;
        }
        if !keep[3] {
            o.listener.rules.clear();
        }
        if !keep[4] {
            o.records.clear();
        }
        if !keep[5] {
            o.target_health = None;
        }
        if noise {
            o.listener.rules.push(foreign_rule(1, "prod.example.com"));
        }
        o
    })
}

proptest! {
    #[test]
    fn plans_never_touch_foreign_resources(o in arb_observation(&setup(Desired::Present).2), absent in any::<bool>()) {
        let (t, p, w) = setup(if absent { Desired::Absent } else { Desired::Present });
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        for c in &plan.changes {
            if let Change::DeleteRule { arn } | Change::ModifyRule { arn, .. } = c {
                prop_assert!(!arn.contains("foreign"), "{c:?}");
            }
        }
    }

    #[test]
    fn present_plans_never_create_what_exists(o in arb_observation(&setup(Desired::Present).2)) {
        let (t, p, w) = setup(Desired::Present);
        let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
        for c in &plan.changes {
            match c {
                Change::CreateLogGroup { .. } => prop_assert!(o.log_group.is_none()),
                Change::CreateTargetGroup(_) => prop_assert!(o.target_group.is_none()),
                Change::CreateService { .. } => prop_assert!(o.service.is_none()),
                Change::CreateRule { .. } => prop_assert!(!o.listener.rules.iter().any(|r| r.arn == "arn:rule/ours")),
                Change::DeleteService { .. } | Change::DeleteTargetGroup { .. } | Change::DeleteLogGroup { .. } => {
                    prop_assert!(false, "a present plan deleted {c:?}")
                }
                _ => {}
            }
        }
    }
}

/// Regression (chaos seed 116): UpdateService succeeded, its TagResource
/// failed, and a later deploy of the earlier commit found the service tag
/// already saying "current". The running revision's own hash decides.
#[test]
fn a_stale_service_tag_does_not_hide_an_old_revision() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    o.service_spec_hash = Some("hash-of-another-commit".into());
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(names(&plan), ["RegisterTaskDefinition", "UpdateService"]);
}

#[path = "plan_failfast_tests.rs"]
mod failfast;

#[test]
fn a_failed_rollout_is_retried_once_by_a_new_generation() {
    let (t, mut p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    o.service.as_mut().unwrap().deployments[0].rollout_state = RolloutState::Failed;
    p.status.observed_generation = p.generation - 1;
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert_eq!(names(&plan), ["UpdateService"]);
}

#[test]
fn a_task_stopping_mid_rollout_is_progress_not_failure() {
    let (t, p, w) = setup(Desired::Present);
    let mut o = converged(&w);
    o.service.as_mut().unwrap().deployments[0].rollout_state = RolloutState::InProgress;
    o.stopped_reason = Some("Scaling activity initiated by deployment ecs-svc/1".into());
    assert!(matches!(
        plan(&t, &p, &w, &o, &BTreeSet::new()).verdict,
        Verdict::Progressing(_)
    ));
}

#[test]
fn a_foreign_txt_record_at_our_host_is_a_conflict() {
    let (t, p, w) = setup(Desired::Present);
    let o = Observation {
        records: vec![DnsRecord {
            name: w.names.host.clone(),
            kind: RecordType::Txt,
            ttl: Some(300),
            values: vec!["\"google-site-verification=abc\"".into()],
            alias_target: None,
        }],
        ..Default::default()
    };
    let plan = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(plan.changes.is_empty() && matches!(plan.verdict, Verdict::Failed(_)));
}

#[test]
fn a_superseded_revision_left_by_a_throttled_call_does_not_hold_back_ready() {
    let deregister = Change::DeregisterTaskDefinition {
        arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/pv-a:1".into(),
    };
    assert!(deregister.done_despite(&CloudError::Throttled("slow down".into())));
    assert!(deregister.done_despite(&CloudError::NotFound("gone".into())));
    let denied = CloudError::AccessDenied {
        action: "ecs:DeregisterTaskDefinition".into(),
        message: "not authorized".into(),
    };
    assert!(!deregister.done_despite(&denied));
}

#[test]
fn only_a_gone_target_or_an_existing_log_group_counts_as_done() {
    let gone = CloudError::NotFound("gone".into());
    let exists = CloudError::AlreadyExists("made".into());
    let in_use = CloudError::ResourceInUse("rule".into());
    let delete = Change::DeleteTargetGroup { arn: "tg".into() };
    assert!(delete.done_despite(&gone));
    assert!(!delete.done_despite(&in_use) && !delete.done_despite(&exists));
    let create = Change::CreateLogGroup {
        name: "/ecs/pv-a".into(),
        retention_days: 14,
        tags: Tags::new(),
    };
    assert!(create.done_despite(&exists) && !create.done_despite(&gone));
    // Deregistering reports no NotFound worth forgiving; modifying a gone
    // rule must fail so that it is planned again.
    let modify_gone = Change::DeregisterTaskDefinitions {
        family: "pv-a".into(),
    };
    assert!(!modify_gone.done_despite(&gone));
    assert!(!Change::ReleasePriority.done_despite(&gone));
}

#[path = "plan_sleep_tests.rs"]
mod sleep;

#[path = "plan_access_tests.rs"]
mod access;

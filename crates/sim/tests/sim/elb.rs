//! ELBv2: target groups, listener rules, limits and metering.

use crate::*;
use previewd_core::CloudError;
use previewd_core::ports::LoadBalancer;
use previewd_core::tags::Tags;
use previewd_sim::{Sim, SimConfig};

fn code(err: &CloudError) -> &str {
    err.code()
}

#[tokio::test]
async fn target_group_names_follow_aws_rules() {
    let sim = sim();
    for bad in [
        "a".repeat(33),
        "pv_issue".into(),
        "-pv".into(),
        "pv-".into(),
        String::new(),
    ] {
        let err = sim.create_target_group(&tg_spec(&bad)).await.unwrap_err();
        assert_eq!(code(&err), "ValidationError", "{bad:?}");
    }
    let ok = sim
        .create_target_group(&tg_spec(&"a".repeat(32)))
        .await
        .unwrap();
    assert_eq!(ok.name.len(), 32);
    assert!(
        ok.arn
            .starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/")
    );
}

#[tokio::test]
async fn creating_the_same_target_group_twice_returns_it() {
    let sim = sim();
    let first = sim.create_target_group(&tg_spec("pv-a")).await.unwrap();
    let again = sim.create_target_group(&tg_spec("pv-a")).await.unwrap();
    assert_eq!(first, again);
    let mut other = tg_spec("pv-a");
    other.port = 8080;
    let err = sim.create_target_group(&other).await.unwrap_err();
    assert!(matches!(err, CloudError::AlreadyExists(m) if m.contains("DuplicateTargetGroupName")));
    assert_eq!(sim.snapshot().target_groups.len(), 1);
}

#[tokio::test]
async fn rule_priority_in_use_is_refused() {
    let sim = sim();
    sim.add_foreign_rule(1000, "shop.example.com", Tags::new());
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let err = sim
        .create_rule(&rule_spec(1000, "a.preview.example.com"), &tg)
        .await
        .unwrap_err();
    assert_eq!(err, CloudError::PriorityInUse(1000));

    let rule = sim
        .create_rule(&rule_spec(1001, "a.preview.example.com"), &tg)
        .await
        .unwrap();
    let err = sim.set_rule_priority(&rule, 1000).await.unwrap_err();
    assert_eq!(err, CloudError::PriorityInUse(1000));
    sim.set_rule_priority(&rule, 1001).await.unwrap();
    sim.set_rule_priority(&rule, 1500).await.unwrap();
    let listener = sim.listener(LISTENER).await.unwrap();
    assert!(
        listener
            .rules
            .iter()
            .any(|r| r.arn == rule && r.priority == Some(1500))
    );
}

#[tokio::test]
async fn hundred_and_first_target_group_is_refused() {
    let sim = Sim::new(SimConfig {
        albs: vec![quota(200)],
        ..SimConfig::default()
    });
    for i in 0..100 {
        let tg = sim.add_foreign_target_group(&format!("prod-{i}"), Tags::new());
        sim.add_foreign_rule_forwarding(i + 1, &format!("s{i}.example.com"), &tg, Tags::new());
    }
    assert_eq!(sim.listener(LISTENER).await.unwrap().alb_target_groups, 100);
    let ours = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let err = sim
        .create_rule(&rule_spec(1000, "a.preview.example.com"), &ours)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TooManyTargetGroups");
    assert!(matches!(err, CloudError::LimitExceeded { .. }));

    // A rule to a target group already on the ALB adds none.
    let prod0 = sim
        .snapshot()
        .target_groups
        .iter()
        .find(|t| t.name == "prod-0")
        .unwrap()
        .arn
        .clone();
    sim.create_rule(&rule_spec(1001, "b.preview.example.com"), &prod0)
        .await
        .unwrap();
}

#[tokio::test]
async fn rules_beyond_the_quota_are_refused() {
    let sim = sim();
    for i in 0..100 {
        sim.add_foreign_rule(i + 1, &format!("s{i}.example.com"), Tags::new());
    }
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let err = sim
        .create_rule(&rule_spec(1000, "a.preview.example.com"), &tg)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TooManyRules");
    assert_eq!(sim.listener(LISTENER).await.unwrap().alb_rules, 100);
}

#[tokio::test]
async fn deleting_a_target_group_in_use_is_refused() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    let err = sim.delete_target_group(&made.tg_arn).await.unwrap_err();
    assert!(matches!(err, CloudError::ResourceInUse(_)));
    sim.delete_rule(&made.rule_arn).await.unwrap();
    sim.delete_target_group(&made.tg_arn).await.unwrap();
}

#[tokio::test]
async fn deleting_an_unknown_rule_or_target_group_is_not_found() {
    let sim = sim();
    let tg = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    sim.delete_target_group(&tg).await.unwrap();
    assert!(matches!(
        sim.delete_target_group(&tg).await,
        Err(CloudError::NotFound(_))
    ));
    let rule = sim.add_foreign_rule(5, "x.example.com", Tags::new());
    sim.delete_rule(&rule).await.unwrap();
    assert!(matches!(
        sim.delete_rule(&rule).await,
        Err(CloudError::NotFound(_))
    ));
}

#[tokio::test]
async fn the_default_rule_cannot_be_deleted() {
    let sim = sim();
    let listener = sim.listener(LISTENER).await.unwrap();
    let default = listener
        .rules
        .iter()
        .find(|r| r.priority.is_none())
        .unwrap();
    let err = sim.delete_rule(&default.arn).await.unwrap_err();
    assert_eq!(code(&err), "OperationNotPermitted");
}

#[tokio::test]
async fn modify_rule_rewrites_in_place() {
    let sim = sim();
    let made = provision(&sim, "issue-1", 1000).await;
    let other = sim.create_target_group(&tg_spec("pv-b")).await.unwrap().arn;
    sim.modify_rule(
        &made.rule_arn,
        &rule_spec(1234, "new.preview.example.com"),
        &other,
    )
    .await
    .unwrap();
    let listener = sim.listener(LISTENER).await.unwrap();
    let rule = listener
        .rules
        .iter()
        .find(|r| r.arn == made.rule_arn)
        .unwrap();
    assert_eq!(rule.hosts, vec!["new.preview.example.com"]);
    assert_eq!(rule.target_group_arn.as_deref(), Some(other.as_str()));
    // Priority only moves through SetRulePriorities.
    assert_eq!(rule.priority, Some(1000));
    let missing = sim
        .modify_rule("arn:nope", &rule_spec(1, "x"), &other)
        .await;
    assert!(matches!(missing, Err(CloudError::NotFound(_))));
}

#[tokio::test]
async fn listener_shows_foreign_rules_and_fill_levels() {
    let sim = sim();
    let prod = sim.add_foreign_target_group("prod", Tags::new());
    sim.add_foreign_rule_forwarding(1, "shop.example.com", &prod, Tags::new());
    sim.add_foreign_rule(2, "old.example.com", Tags::new());
    provision(&sim, "issue-1", 1000).await;
    let listener = previewd_core::tagged::listener(&sim, LISTENER)
        .await
        .unwrap();
    let priorities: Vec<Option<i32>> = listener.rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, vec![Some(1), Some(2), Some(1000), None]);
    assert_eq!((listener.alb_rules, listener.alb_target_groups), (3, 2));
    assert!(previewd_core::tags::is_owned(
        &listener.rules[2].tags,
        CONTROLLER
    ));
}

#[tokio::test]
async fn listing_costs_pages_and_tag_batches() {
    let sim = Sim::new(SimConfig {
        albs: vec![quota(1000)],
        ..SimConfig::default()
    });
    for i in 0..450 {
        sim.add_foreign_rule(i + 1, &format!("s{i}.example.com"), Tags::new());
    }
    for i in 0..30 {
        sim.add_foreign_target_group(&format!("pv-{i}"), Tags::new());
    }
    sim.add_foreign_target_group("prod", Tags::new());
    previewd_core::tagged::listener(&sim, LISTENER)
        .await
        .unwrap();
    // 451 rules with the default one: 2 pages of 400, 23 tag batches of 20.
    assert_eq!(calls(&sim, "elbv2:DescribeRules"), 2);
    assert_eq!(calls(&sim, "elbv2:DescribeTags"), 23);
    sim.reset_calls();
    let listed = previewd_core::tagged::target_groups(&sim, "pv-").await;
    assert_eq!(listed.unwrap().len(), 30);
    assert_eq!(calls(&sim, "elbv2:DescribeTargetGroups"), 1);
    assert_eq!(calls(&sim, "elbv2:DescribeTags"), 2);
}

/// Each load balancer has its own 100 target groups and rule quota, its
/// own priorities, and its foreign rules and target groups count.
#[tokio::test]
async fn each_load_balancer_has_its_own_limits_and_foreign_rules() {
    let sim = Sim::new(SimConfig::default().with_albs(2, 99));
    let albs = sim.config().albs.clone();
    let (first, second) = (&albs[0].listener_arn, &albs[1].listener_arn);
    for l in [first, second] {
        let state = sim.listener(l).await.unwrap();
        assert_eq!((state.alb_target_groups, state.alb_rules), (99, 99));
    }
    let on = |listener: &str, priority, host: &str| RuleSpec {
        listener_arn: listener.into(),
        ..rule_spec(priority, host)
    };
    let a = sim.create_target_group(&tg_spec("pv-a")).await.unwrap().arn;
    let b = sim.create_target_group(&tg_spec("pv-b")).await.unwrap().arn;
    sim.create_rule(&on(first, 1000, "a.preview.example.com"), &a)
        .await
        .unwrap();
    // The first ALB is full (99 foreign + ours); the second is not.
    let err = sim
        .create_rule(&on(first, 1001, "b.preview.example.com"), &b)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "TooManyRules");
    // A target group serves one load balancer.
    let err = sim
        .create_rule(&on(second, 1001, "c.preview.example.com"), &a)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationError");
    // One priority per listener: the same on another listener is free.
    sim.create_rule(&on(second, 1000, "b.preview.example.com"), &b)
        .await
        .unwrap();
    let state = sim.listener(second).await.unwrap();
    assert_eq!((state.alb_target_groups, state.alb_rules), (100, 100));
    let unknown = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/1";
    assert!(matches!(
        sim.listener(unknown).await.unwrap_err(),
        CloudError::NotFound(_)
    ));
}

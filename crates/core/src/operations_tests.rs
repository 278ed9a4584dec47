use super::*;
use crate::limits::{Bucket, buckets_of};
use std::collections::BTreeSet;

#[test]
fn every_operation_is_listed_once_in_the_order_of_its_variant() {
    let mut seen = BTreeSet::new();
    for (i, s) in OPERATIONS.iter().enumerate() {
        assert_eq!(s.op as usize, i, "{} is out of place", s.op);
        assert_eq!(format!("{:?}", s.op), s.name);
        assert!(seen.insert((s.service, s.name)), "{} listed twice", s.op);
        assert!(!s.purposes.is_empty(), "{} has no purpose", s.op);
        assert_eq!(s.op.spec().op, s.op);
    }
}

#[test]
fn a_key_in_either_spelling_names_its_operation() {
    for s in OPERATIONS {
        assert_eq!(Op::parse(&s.op.key()), Some(s.op));
        assert_eq!(Op::parse(&s.op.action()), Some(s.op));
    }
    assert_eq!(Op::CreateRule.key(), "elbv2:CreateRule");
    assert_eq!(Op::CreateRule.action(), "elasticloadbalancing:CreateRule");
    assert_eq!(Op::parse("elbv2:Nothing"), None);
    assert_eq!(iam_action("elbv2:AddTags"), "elasticloadbalancing:AddTags");
    assert_eq!(iam_action("ecs:TagResource"), "ecs:TagResource");
    assert_eq!(iam_action("Odd"), "Odd");
}

/// The `service` label values the README's Metrics table documents.
#[test]
fn the_controller_labels_its_calls_with_the_documented_services() {
    let labels: BTreeSet<&str> = controller_operations().map(|s| s.service.label()).collect();
    assert_eq!(
        labels,
        BTreeSet::from(["cloudwatch", "ecr", "ecs", "elbv2", "logs", "route53"]),
        "README's Metrics table lists these"
    );
}

#[test]
fn every_controller_operation_is_metered_but_listing_log_group_tags() {
    let unmetered: Vec<Op> = controller_operations()
        .filter(|s| s.buckets.is_empty())
        .map(|s| s.op)
        .collect();
    // AWS publishes no limit for ListTagsForResource (AWS-LIMITS.md).
    assert_eq!(unmetered, [Op::ListTagsForResource]);
}

#[test]
fn a_request_takes_its_services_shared_bucket_and_one_of_its_own() {
    for s in OPERATIONS {
        for shared in s.service.shared_buckets() {
            assert!(s.buckets.contains(shared), "{} misses {shared:?}", s.op);
        }
        if s.service == Service::Elb {
            let own = if s.mutates {
                Bucket::ElbMutating
            } else {
                Bucket::ElbNonMutating
            };
            assert_eq!(s.buckets, &[own, Bucket::ElbAccount], "{}", s.op);
        }
    }
}

#[test]
fn the_pacer_reads_the_registry() {
    for s in OPERATIONS {
        assert_eq!(buckets_of(&s.op.key()), s.buckets, "{}", s.op);
        assert_eq!(buckets_of(&s.op.action()), s.buckets, "{}", s.op);
    }
}

#[test]
fn an_action_needed_twice_is_scoped_once() {
    for p in required_permissions() {
        let same: BTreeSet<IamScope> = controller_operations()
            .flat_map(|s| {
                s.op.permission()
                    .into_iter()
                    .chain(s.also_needs.iter().copied())
            })
            .filter(|q| q.action() == p.action())
            .map(|q| q.scope)
            .collect();
        assert_eq!(same.len(), 1, "{} is scoped {same:?}", p.action());
    }
}

#[test]
fn the_doctor_only_reads() {
    for s in OPERATIONS.iter().filter(|s| s.scope.is_none()) {
        assert!(!s.mutates, "{}", s.op);
        assert_eq!(s.purposes, &[Purpose::Observe], "{}", s.op);
    }
}

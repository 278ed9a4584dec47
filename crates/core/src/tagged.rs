//! Listings with their tags, composed from the ports' untagged listings and
//! their tag reads: for callers that keep no tags of their own (garbage
//! collection's inventory, the benchmark's baseline script).
//!
//! The ports list without tags because tags cost requests of their own
//! (DescribeTags, twenty ARNs each; ListTagsForResource, one per log group)
//! and ARNs are never reused: the controller's observer reads a resource's
//! tags once and keeps them (`previewd_controller`'s `observe` module). The
//! functions here keep nothing: every call reads every tag. They perform
//! no IO of their own; each one is a sequence of port calls.

use crate::CloudError;
use crate::observed::{ListenerState, ObservedLogGroup, ObservedTargetGroup};
use crate::ports::{CloudResult, LoadBalancer, Logs};
use crate::tags::Tags;
use std::collections::HashMap;

/// The tags of `arns` (rules, target groups) as AWS has them now. An ARN
/// that no longer exists is left out: one DescribeTags fails as a whole
/// when any of its ARNs is unknown, so the batch is then asked one by one.
pub async fn elb_tags(
    lb: &(impl LoadBalancer + ?Sized),
    arns: &[String],
) -> CloudResult<HashMap<String, Tags>> {
    if arns.is_empty() {
        return Ok(HashMap::new());
    }
    match lb.tags(arns).await {
        Ok(found) => Ok(found.into_iter().collect()),
        Err(CloudError::NotFound(_)) => {
            let mut found = HashMap::new();
            for arn in arns {
                match lb.tags(std::slice::from_ref(arn)).await {
                    Ok(one) => found.extend(one),
                    Err(CloudError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(found)
        }
        Err(e) => Err(e),
    }
}

/// Puts each rule's tags (by ARN) on `listener`'s rules. A rule missing from
/// `tags` was deleted between the listing and its tags and is dropped; the
/// default rule (no priority) has no tags and is kept.
pub fn attach_rule_tags(listener: &mut ListenerState, mut tags: HashMap<String, Tags>) {
    listener.rules.retain_mut(|r| {
        if r.priority.is_none() {
            return true;
        }
        match tags.remove(&r.arn) {
            Some(t) => {
                r.tags = t;
                true
            }
            None => false,
        }
    });
}

/// Puts each target group's tags (by ARN) on `groups`, dropping a group
/// missing from `tags` (deleted between the listing and its tags).
pub fn attach_target_group_tags(
    groups: &mut Vec<ObservedTargetGroup>,
    mut tags: HashMap<String, Tags>,
) {
    groups.retain_mut(|t| match tags.remove(&t.arn) {
        Some(found) => {
            t.tags = found;
            true
        }
        None => false,
    });
}

/// The ARNs of the listener's own rules (all but the default rule).
pub fn rule_arns(listener: &ListenerState) -> Vec<String> {
    listener
        .rules
        .iter()
        .filter(|r| r.priority.is_some())
        .map(|r| r.arn.clone())
        .collect()
}

/// Every rule on the listener with its tags: DescribeRules pages, then
/// DescribeTags for every rule, twenty per request.
pub async fn listener(
    lb: &(impl LoadBalancer + ?Sized),
    listener_arn: &str,
) -> CloudResult<ListenerState> {
    let mut l = lb.listener(listener_arn).await?;
    let tags = elb_tags(lb, &rule_arns(&l)).await?;
    attach_rule_tags(&mut l, tags);
    Ok(l)
}

/// Every target group whose name starts with `prefix`, with its tags.
pub async fn target_groups(
    lb: &(impl LoadBalancer + ?Sized),
    prefix: &str,
) -> CloudResult<Vec<ObservedTargetGroup>> {
    let mut groups = lb.target_groups(prefix).await?;
    let arns: Vec<String> = groups.iter().map(|t| t.arn.clone()).collect();
    let tags = elb_tags(lb, &arns).await?;
    attach_target_group_tags(&mut groups, tags);
    Ok(groups)
}

/// Every log group whose name starts with `prefix`, with its tags: one
/// ListTagsForResource per group. A group deleted meanwhile is left out.
pub async fn log_groups(
    logs: &(impl Logs + ?Sized),
    prefix: &str,
) -> CloudResult<Vec<ObservedLogGroup>> {
    let mut out = Vec::new();
    for g in logs.log_groups(prefix).await? {
        if let Some(tags) = logs.log_group_tags(&g.name).await? {
            out.push(ObservedLogGroup { tags, ..g });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::ObservedRule;

    fn rule(arn: &str, priority: Option<i32>) -> ObservedRule {
        ObservedRule {
            arn: arn.into(),
            priority,
            hosts: vec![],
            target_group_arn: None,
            tags: Tags::new(),
            auth: None,
        }
    }

    fn owned(slug: &str) -> Tags {
        Tags::from([("previewd:slug".to_string(), slug.to_string())])
    }

    #[test]
    fn a_rule_deleted_before_its_tags_were_read_is_dropped_but_the_default_rule_kept() {
        let mut l = ListenerState {
            rules: vec![
                rule("arn:rule/a", Some(1000)),
                rule("arn:rule/gone", Some(1001)),
                rule("arn:rule/default", None),
            ],
            ..ListenerState::default()
        };
        assert_eq!(rule_arns(&l), ["arn:rule/a", "arn:rule/gone"]);
        attach_rule_tags(&mut l, HashMap::from([("arn:rule/a".into(), owned("a"))]));
        let arns: Vec<&str> = l.rules.iter().map(|r| r.arn.as_str()).collect();
        assert_eq!(arns, ["arn:rule/a", "arn:rule/default"]);
        assert_eq!(l.rules[0].tags, owned("a"));
    }

    #[test]
    fn a_target_group_deleted_before_its_tags_were_read_is_dropped() {
        let tg = |arn: &str| ObservedTargetGroup {
            arn: arn.into(),
            name: arn.into(),
            port: 80,
            tags: Tags::new(),
        };
        let mut groups = vec![tg("arn:tg/a"), tg("arn:tg/gone")];
        attach_target_group_tags(
            &mut groups,
            HashMap::from([("arn:tg/a".into(), owned("a"))]),
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].tags, owned("a"));
    }
}

//! Where a preview's listener rule forwards while it sleeps and wakes.

use crate::model::Preview;
use crate::observed::ObservedRule;
use crate::plan::Observation;

/// The target group `rule` should forward to: the waker while the preview
/// is asleep, and while it wakes until a target of its own is healthy (so
/// a visitor meets the waiting page, not the load balancer's 503); its own
/// group otherwise. The rule is modified in place either way.
///
/// Target health is looked up only on the way to Ready: for a row Ready at
/// its generation (a wake that came before the sleep was recorded) a
/// service running all it wants counts as healthy, so the rule never
/// stays on the waker of an awake preview.
pub(super) fn target<'a>(
    p: &Preview,
    asleep: bool,
    waker: Option<&'a str>,
    rule: &ObservedRule,
    own: Option<&'a str>,
    o: &Observation,
) -> Option<&'a str> {
    let on_waker = waker.is_some() && rule.target_group_arn.as_deref() == waker;
    let healthy = match o.target_health {
        Some(h) => h.healthy > 0,
        None => {
            p.is_ready_at_generation()
                && o.service
                    .as_ref()
                    .is_some_and(|s| s.desired_count >= 1 && s.running_count >= s.desired_count)
        }
    };
    if asleep || (on_waker && !healthy) {
        waker
    } else {
        own
    }
}

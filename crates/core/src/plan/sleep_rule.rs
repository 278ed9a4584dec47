//! Where a preview's listener rule forwards while it sleeps and wakes.

use crate::observed::ObservedRule;
use crate::plan::Observation;

/// The target group `rule` should forward to: the waker while the preview
/// is asleep, and while it wakes until a target of its own is healthy (so
/// a visitor meets the waiting page, not the load balancer's 503); its own
/// group otherwise. The rule is modified in place either way.
pub(super) fn target<'a>(
    asleep: bool,
    waker: Option<&'a str>,
    rule: &ObservedRule,
    own: Option<&'a str>,
    o: &Observation,
) -> Option<&'a str> {
    let on_waker = waker.is_some() && rule.target_group_arn.as_deref() == waker;
    let healthy = o.target_health.is_some_and(|h| h.healthy > 0);
    if asleep || (on_waker && !healthy) {
        waker
    } else {
        own
    }
}

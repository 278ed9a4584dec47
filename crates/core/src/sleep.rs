//! Sleep: which idle previews go to sleep, and how the waker knows a
//! sleeping preview's host. Pure decisions; the controller's idle check and
//! the waker listener call them.
//!
//! ```text
//!  every sleep.check_interval:
//!   Ready rows ─ candidate() ─▶ request counts (GetMetricData, 500 a call)
//!                                  │
//!                                  ▼
//!                      idle(candidates, counts, now, idle_after) ─▶ Command::Sleep
//!  a visit to a sleeping host ─ waker ─ sleeping_at() ─ answer() ─▶ Command::Wake + waiting page
//! ```
//!
//! Across a pool of listeners each load balancer has its own waker target
//! group ([`Wakers`]): a preview sleeps onto its own listener's, and a
//! listener whose load balancer has none keeps its previews awake.
//!
//! # Guarantees
//! - Only a present preview Ready at its generation and awake is a
//!   candidate; it sleeps only when it has been serving for `idle_after`
//!   and saw no request in the last `idle_after`.
//! - A candidate with no datapoint (CloudWatch publishes none for a target
//!   group that answered nothing) counts as zero requests.
//! - The waker answers only for a host that is a sleeping preview's; a
//!   Host header that is not a host name is never looked up.
//!
//! # Caveats
//! ALB publishes its per-minute counts a minute or two late, so a request
//! in the last minutes before a check may not be counted yet. The
//! `awake_since` rule keeps a preview just woken or deployed awake.

use crate::key::PreviewKey;
use crate::model::{Desired, Phase, Preview, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

mod wakers;
pub use wakers::{Ripe, Wakers, hold_sleepers, queries, sleeping_at};

/// The path the load balancer health-checks the waker on (its target
/// group's health check; every other path of the waker is a visit).
pub const WAKER_HEALTH_PATH: &str = "/.previewd-waker/health";

/// GetMetricData takes up to 500 metric queries in one request.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// A preview that may go to sleep, and since when it has been serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: PreviewKey,
    /// When it last became Ready (deploy or wake): it is given
    /// `idle_after` from then before it may sleep.
    pub awake_since: Timestamp,
}

/// The candidate a row is, if any: present, Ready at its generation, awake.
pub fn candidate(p: &Preview) -> Option<Candidate> {
    if p.desired != Desired::Present || p.asleep || !p.is_ready_at_generation() {
        return None;
    }
    let ready_since = p.status.conditions.ready.as_ref().map(|c| c.since);
    let awake_since = [ready_since, p.deployed_at, p.sleep_changed_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(p.created_at);
    Some(Candidate {
        key: p.key.clone(),
        awake_since,
    })
}

/// Who goes to sleep: every candidate serving for at least `idle_after`
/// whose request count over the last `idle_after` is zero (missing: zero).
pub fn idle(
    candidates: &[Candidate],
    counts: &BTreeMap<PreviewKey, f64>,
    now: Timestamp,
    idle_after: Duration,
) -> Vec<PreviewKey> {
    let Ok(idle_after) = chrono::Duration::from_std(idle_after) else {
        return Vec::new();
    };
    candidates
        .iter()
        .filter(|c| c.awake_since + idle_after <= now)
        .filter(|c| counts.get(&c.key).copied().unwrap_or(0.0) <= 0.0)
        .map(|c| c.key.clone())
        .collect()
}

/// GetMetricData requests for `n` queries.
pub fn metric_calls(n: usize) -> usize {
    n.div_ceil(MAX_QUERIES_PER_CALL)
}

/// The load balancer a listener ARN belongs to, as CloudWatch's
/// `LoadBalancer` dimension spells it (`app/<name>/<id>`): the key of
/// `sleep.waker_target_groups`.
pub fn load_balancer_of(listener_arn: &str) -> Option<&str> {
    let (_, rest) = listener_arn.split_once(":listener/")?;
    let mut parts = rest.splitn(4, '/');
    let (kind, name, id) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    if kind.is_empty() || name.is_empty() || id.is_empty() {
        return None;
    }
    Some(&rest[..kind.len() + name.len() + id.len() + 2])
}

/// A target group ARN's `TargetGroup` dimension (`targetgroup/<name>/<id>`).
pub fn target_group_dimension(arn: &str) -> Option<&str> {
    let i = arn.find(":targetgroup/")?;
    let dim = &arn[i + 1..];
    (dim.split('/').count() == 3 && dim.split('/').all(|s| !s.is_empty())).then_some(dim)
}

/// A Host header as a host name: lower case, port removed; `None` unless
/// it is one (letters, digits, `-` and `.`, at most 253 characters). The
/// waker looks up nothing else.
pub fn host_of(header: &str) -> Option<String> {
    let host = match header.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => header,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.split('.').all(|l| !l.is_empty() && l.len() <= 63);
    ok.then(|| host.to_ascii_lowercase())
}

/// What the waker does with a request for a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakerAnswer {
    /// Not a sleeping or waking preview's host: nothing.
    Nothing,
    /// A browser: the waiting page that reloads itself.
    WaitingPage,
    /// Anything else: 503 with `Retry-After`.
    RetryLater,
}

/// Whether the waker must wake `p` (a sleeping row of the host asked) and
/// what it answers; `accept` is the request's Accept header.
pub fn answer(p: Option<&Preview>, accept: Option<&str>) -> (bool, WakerAnswer) {
    let Some(p) = p.filter(|p| is_sleeping_or_waking(p)) else {
        return (false, WakerAnswer::Nothing);
    };
    let browser = accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
    let answer = if browser {
        WakerAnswer::WaitingPage
    } else {
        WakerAnswer::RetryLater
    };
    (p.asleep, answer)
}

/// Asleep, or on its way back: the waker answers for its host.
pub fn is_sleeping_or_waking(p: &Preview) -> bool {
    p.desired == Desired::Present && (p.asleep || p.status.phase == Phase::Sleeping)
}

#[cfg(test)]
#[path = "sleep_tests.rs"]
mod tests;

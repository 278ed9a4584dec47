//! Sleep: which idle previews go to sleep, and how the waker knows a
//! sleeping preview's host. Pure decisions; the controller's idle check and
//! the waker listener call them.
//!
//! ```text
//!  every sleep.check_interval:
//!   Ready rows ─ candidate() ─ due(candidates, seen)? ─no─▶ nothing (no request)
//!                                  │ yes
//!                                  ▼
//!        request counts of every candidate (GetMetricData, 500 a call)
//!                                  │ remember(seen, …)
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
//! - A check reads counts only when a candidate is due: could be idle by
//!   then given its last request known (`due`, `idle_at`). A candidate
//!   truly idle at a check is always due, so skipping reads delays no sleep
//!   beyond the check it would have had anyway; with per-minute data that
//!   rounds its last request up to the end of its minute, by at most one
//!   check interval.
//! - The waker answers only for a host that is a sleeping preview's; a
//!   Host header that is not a host name is never looked up.
//!
//! # Caveats
//! ALB publishes its per-minute counts a minute or two late, so a request
//! in the last minutes before a check may not be counted yet. The
//! `awake_since` rule keeps a preview just woken or deployed awake.

use crate::key::PreviewKey;
use crate::model::{Desired, Phase, Preview, Timestamp};
use crate::ports::RequestCount;
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

/// The last request the idle check knows of, per awake preview: what its
/// reads found, kept between checks so that a check with no preview due
/// asks CloudWatch nothing.
pub type Seen = BTreeMap<PreviewKey, Timestamp>;

/// When `c` could first be idle: `idle_after` after it became awake or
/// after its last known request, whichever is later. `None`: never
/// (`idle_after` out of range).
pub fn idle_at(
    c: &Candidate,
    last_request: Option<Timestamp>,
    idle_after: Duration,
) -> Option<Timestamp> {
    let idle_after = chrono::Duration::from_std(idle_after).ok()?;
    let from = last_request.map_or(c.awake_since, |l| l.max(c.awake_since));
    from.checked_add_signed(idle_after)
}

/// Whether a check at `now` must read request counts: some candidate
/// could be idle by now, judging by `seen`. A request is never missed by
/// skipping a read: `seen` holds requests already counted, so a candidate
/// truly idle at `now` is due (a later request only makes it less idle).
/// When one is due the read covers every candidate, so all learn their
/// last request in that one call (500 queries a request).
pub fn due(candidates: &[Candidate], seen: &Seen, now: Timestamp, idle_after: Duration) -> bool {
    candidates
        .iter()
        .filter_map(|c| idle_at(c, seen.get(&c.key).copied(), idle_after))
        .any(|at| at <= now)
}

/// The latest the newest request of a read at `read_at` can have been.
pub fn last_request(read_at: Timestamp, count: &RequestCount) -> Option<Timestamp> {
    let age = chrono::Duration::from_std(count.newest_age?).ok()?;
    read_at.checked_sub_signed(age)
}

/// After a read at `read_at`: `seen` keeps only `candidates` (a preview
/// asleep or gone is forgotten), with the newer of what it knew and what
/// the read found for each.
pub fn remember(
    seen: &mut Seen,
    candidates: &[Candidate],
    read: &BTreeMap<PreviewKey, RequestCount>,
    read_at: Timestamp,
) {
    seen.retain(|k, _| candidates.iter().any(|c| &c.key == k));
    for (key, count) in read {
        if let Some(at) = last_request(read_at, count) {
            let e = seen.entry(key.clone()).or_insert(at);
            *e = (*e).max(at);
        }
    }
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

#[cfg(test)]
#[path = "sleep_schedule_tests.rs"]
mod schedule_tests;

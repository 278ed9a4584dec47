//! Sleep across a pool of listeners and several projects: which waker
//! target group a preview sleeps onto, which previews the idle check asks
//! CloudWatch about, and which preview a host at the waker belongs to.
//!
//! # Guarantees
//! - A preview sleeps onto the waker of its own listener's load balancer,
//!   never another's: a target group serves one load balancer, so a rule
//!   forwarding to another ALB's waker would be refused by AWS.
//! - A listener whose load balancer has no waker configured keeps its
//!   previews awake: they are never asked about, never put to sleep.
//! - Each request-count query names the load balancer of its preview's
//!   own listener, and every candidate is asked about at most once.
//! - The waker finds a host's preview with that preview's own project's
//!   naming (prefix, host pattern, domain), and only among previews that
//!   are sleeping or waking; a row of a project not configured is never
//!   matched (its names are unknown).
//! - A sleeping preview keeps its room on its load balancer: placement
//!   counts its target group, detached while it sleeps, as attached.

use super::{Candidate, is_sleeping_or_waking, load_balancer_of};
use crate::model::Preview;
use crate::naming::ResourceNames;
use crate::observed::ListenerState;
use crate::pool::{Fill, Pool};
use crate::ports::RequestCountQuery;
use crate::projects::Projects;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The waker target group of each load balancer: `sleep.waker_target_groups`,
/// keyed by `app/<name>/<id>` as read from a listener ARN
/// ([`load_balancer_of`]), each shared by every sleeping preview there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wakers {
    by_load_balancer: BTreeMap<String, String>,
}

impl Wakers {
    /// Load balancer (`app/<name>/<id>`) → its waker target group's ARN.
    pub fn new(by_load_balancer: BTreeMap<String, String>) -> Self {
        Self { by_load_balancer }
    }

    /// No waker anywhere: nothing sleeps.
    pub fn is_empty(&self) -> bool {
        self.by_load_balancer.is_empty()
    }

    /// Every load balancer and its waker target group.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_load_balancer
            .iter()
            .map(|(lb, tg)| (lb.as_str(), tg.as_str()))
    }

    /// The waker of `listener_arn`'s load balancer; `None`: previews on
    /// that listener never sleep.
    pub fn for_listener(&self, listener_arn: &str) -> Option<&str> {
        let lb = load_balancer_of(listener_arn)?;
        self.by_load_balancer.get(lb).map(String::as_str)
    }

    /// The listeners of `pool` whose load balancer has no waker: previews
    /// placed there stay awake.
    pub fn unserved<'a>(&self, pool: &'a Pool) -> Vec<&'a str> {
        pool.arns()
            .filter(|arn| self.for_listener(arn).is_none())
            .collect()
    }

    /// Load balancers given a waker that no listener of `pool` is on: a
    /// mistyped key, most likely.
    pub fn strays(&self, pool: &Pool) -> Vec<&str> {
        let served: Vec<&str> = pool.arns().filter_map(load_balancer_of).collect();
        self.by_load_balancer
            .keys()
            .map(String::as_str)
            .filter(|lb| !served.contains(lb))
            .collect()
    }
}

/// Keeps each sleeping preview's room on its load balancer. Asleep, its
/// rule forwards to the waker, so its own target group is attached to no
/// load balancer and the listing does not count it; it is attached again
/// when the preview wakes, and the 101st target group would be refused
/// then. So each rule forwarding to a listener's waker holds one target
/// group in that listener's fill (the waker itself is attached, and
/// counted, once).
pub fn hold_sleepers(
    fills: &mut BTreeMap<String, Fill>,
    states: &BTreeMap<String, Arc<ListenerState>>,
    wakers: &Wakers,
) {
    for (arn, state) in states {
        let (Some(waker), Some(fill)) = (wakers.for_listener(arn), fills.get_mut(arn)) else {
            continue;
        };
        fill.target_groups += state
            .rules
            .iter()
            .filter(|r| r.target_group_arn.as_deref() == Some(waker))
            .count();
    }
}

/// A candidate of the idle check with what its query needs: the listener
/// it is placed on (`Pool::recorded`) and its target group's ARN as last
/// listed (`None`: not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ripe<'a> {
    pub candidate: Candidate,
    pub listener: Option<&'a str>,
    pub target_group_arn: Option<&'a str>,
}

/// The request-count queries of the idle check: one per candidate that
/// could sleep (its listener's load balancer has a waker, its target group
/// is listed), naming that load balancer. The rest stay awake this time.
/// They go [`super::MAX_QUERIES_PER_CALL`] to a GetMetricData request
/// whatever load balancer or project each is of.
pub fn queries(ripe: Vec<Ripe<'_>>, wakers: &Wakers) -> Vec<(Candidate, RequestCountQuery)> {
    let mut seen = std::collections::BTreeSet::new();
    ripe.into_iter()
        .filter_map(|r| {
            let listener = r.listener?;
            wakers.for_listener(listener)?;
            let load_balancer = load_balancer_of(listener)?.to_owned();
            let target_group_arn = r.target_group_arn?.to_owned();
            seen.insert(r.candidate.key.clone()).then_some((
                r.candidate,
                RequestCountQuery {
                    load_balancer,
                    target_group_arn,
                },
            ))
        })
        .collect()
}

/// The sleeping or waking preview whose host is `host`, each row's host
/// spelled with its own project's naming.
pub fn sleeping_at<'a>(
    rows: &'a [Preview],
    projects: &Projects,
    host: &str,
) -> Option<&'a Preview> {
    rows.iter().filter(|p| is_sleeping_or_waking(p)).find(|p| {
        projects
            .template(&p.key.project)
            .is_some_and(|t| ResourceNames::new(&t.naming, &p.slug, &p.host_label).host == host)
    })
}

#[cfg(test)]
#[path = "wakers_tests.rs"]
mod tests;

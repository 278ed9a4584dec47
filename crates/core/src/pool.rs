//! The pool of listeners previews are placed on, and the pure placement
//! decision.
//!
//! AWS allows 100 target groups per Application Load Balancer, a limit
//! that cannot be raised, and a listener's rule quota counts every team's
//! rules. One listener therefore holds fewer than 100 previews; a pool of
//! listeners, each on its own ALB, holds a hundred times as many.
//!
//! # Guarantees
//! - A preview goes to a listener whose ALB has room for one more target
//!   group under [`MAX_TARGET_GROUPS_PER_ALB`] and whose load balancer has
//!   room for one more rule under the listener's quota, counting foreign
//!   target groups and rules, and counting the previews placed there
//!   whose rule does not exist yet (their resources will take the room).
//! - A preview whose rule exists on a listener of the pool stays there:
//!   a redeploy never moves it, nor does draining the listener or the
//!   listener filling up.
//! - A placement is final once the preview's rule exists. Until then a
//!   preview keeps its reserved listener while that still has room,
//!   counting only the reservations there with a lower priority: of two
//!   previews racing for the last slot (AWS refuses the 101st target
//!   group anyway), the lower priority keeps it and the other is placed
//!   again, on another listener or `Full`, never stuck on a full one.
//! - A draining listener takes no new preview and keeps those it has.
//! - When no listener has room the answer is [`Placement::Full`] with a
//!   reason naming every listener and why it cannot take the preview.

use crate::observed::ListenerState;
use crate::render::{DnsMode, Template};
use crate::tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::plan::MAX_TARGET_GROUPS_PER_ALB;

/// One listener of the pool, on its own ALB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolListener {
    pub arn: String,
    /// The ALB's DNS name: what the preview's alias record points at.
    pub alb_dns_name: String,
    /// The ALB's canonical hosted zone id (the alias target's zone).
    pub alb_zone_id: String,
    /// Listener rule priorities previewd may use on it, inclusive.
    pub priority_band: (i32, i32),
    /// Rules its load balancer may hold (an adjustable AWS quota).
    pub rule_quota: usize,
    /// Takes no new preview; keeps the ones it has.
    pub draining: bool,
}

/// The listeners, in the order placement tries them. Never empty (the
/// configuration refuses an empty pool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub listeners: Vec<PoolListener>,
}

impl Pool {
    /// The pool of one a single-listener template describes.
    pub fn single(t: &Template) -> Self {
        let (alb_dns_name, alb_zone_id) = match &t.dns {
            DnsMode::Alias {
                alb_dns_name,
                alb_zone_id,
            } => (alb_dns_name.clone(), alb_zone_id.clone()),
            DnsMode::Wildcard => (String::new(), String::new()),
        };
        Pool {
            listeners: vec![PoolListener {
                arn: t.listener_arn.clone(),
                alb_dns_name,
                alb_zone_id,
                priority_band: t.priority_band,
                rule_quota: t.alb_rule_quota,
                draining: false,
            }],
        }
    }

    /// The first listener: the one rows placed before the pool existed
    /// (no listener recorded, a priority held) belong to.
    pub fn first(&self) -> &PoolListener {
        &self.listeners[0]
    }

    pub fn get(&self, arn: &str) -> Option<&PoolListener> {
        self.listeners.iter().find(|l| l.arn == arn)
    }

    pub fn arns(&self) -> impl Iterator<Item = &str> {
        self.listeners.iter().map(|l| l.arn.as_str())
    }

    /// The listener a row is recorded on: its own, or the first for a
    /// pre-pool row that holds a priority. `None`: not placed yet.
    pub fn recorded<'a>(
        &'a self,
        listener_arn: Option<&'a str>,
        rule_priority: Option<i32>,
    ) -> Option<&'a str> {
        listener_arn.or_else(|| rule_priority.map(|_| self.first().arn.as_str()))
    }
}

/// The template `plan()` works with for a preview placed on `l`: its
/// listener, priority band, rule quota and (in alias mode) its ALB.
pub fn template_for(t: &Template, l: &PoolListener) -> Template {
    let mut out = t.clone();
    out.listener_arn = l.arn.clone();
    out.priority_band = l.priority_band;
    out.alb_rule_quota = l.rule_quota;
    if let DnsMode::Alias { .. } = out.dns {
        out.dns = DnsMode::Alias {
            alb_dns_name: l.alb_dns_name.clone(),
            alb_zone_id: l.alb_zone_id.clone(),
        };
    }
    out
}

/// How full one listener's load balancer is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fill {
    /// Target groups attached to its ALB, foreign ones included.
    pub target_groups: usize,
    /// Non-default rules on its ALB, foreign ones included.
    pub rules: usize,
    /// Other previews placed on it whose rule does not exist yet.
    pub pending: usize,
}

impl Fill {
    pub fn observed(l: &ListenerState) -> Self {
        Fill {
            target_groups: l.alb_target_groups,
            rules: l.alb_rules,
            pending: 0,
        }
    }
}

/// Where a preview goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this listener (its ARN).
    Placed(String),
    /// No listener can take it; why, listener by listener.
    Full(String),
}

/// What is known of the preview being placed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seat<'a> {
    /// The pool listener its own rule is on, if any: final.
    pub settled: Option<&'a str>,
    /// The listener it has reserved (rule not created yet), and how many
    /// other reservations there rank before it (lower priority).
    pub reserved: Option<(&'a str, usize)>,
}

/// Why `l` cannot take one more preview with `pending` others ahead, or
/// `None` when it can. Its own target group and rule count: +1 each.
fn no_room(l: &PoolListener, f: &Fill, pending: usize) -> Option<String> {
    if l.draining {
        return Some("draining".into());
    }
    let tgs = f.target_groups + pending;
    if tgs + 1 > MAX_TARGET_GROUPS_PER_ALB {
        return Some(format!(
            "{tgs} target groups on its ALB (AWS limit {MAX_TARGET_GROUPS_PER_ALB})"
        ));
    }
    let rules = f.rules + pending;
    if rules + 1 > l.rule_quota {
        return Some(format!("{rules} rules on its ALB (quota {})", l.rule_quota));
    }
    None
}

/// Places one preview. `fills` is keyed by listener ARN; a listener
/// missing from it counts as full (it could not be observed).
pub fn place(pool: &Pool, fills: &BTreeMap<String, Fill>, seat: Seat<'_>) -> Placement {
    if let Some(arn) = seat.settled.filter(|a| pool.get(a).is_some()) {
        return Placement::Placed(arn.to_owned());
    }
    if let Some((arn, ahead)) = seat.reserved
        && let (Some(l), Some(f)) = (pool.get(arn), fills.get(arn))
        && no_room(l, f, ahead).is_none()
    {
        return Placement::Placed(arn.to_owned());
    }
    let mut why = Vec::new();
    for l in &pool.listeners {
        // A reservation held elsewhere counts against that listener only;
        // the preview's own reservation is never among `pending`.
        let problem = match fills.get(&l.arn) {
            None => Some("not observed".to_owned()),
            Some(f) => no_room(l, f, f.pending),
        };
        match problem {
            None => return Placement::Placed(l.arn.clone()),
            Some(p) => why.push(format!("{}: {p}", short(&l.arn))),
        }
    }
    Placement::Full(format!(
        "waiting for capacity: every listener of the pool is full ({})",
        why.join("; ")
    ))
}

/// The listener ARN's last parts (`app/<alb>/<id>/<id>`), enough to tell
/// listeners apart in a message.
fn short(arn: &str) -> &str {
    arn.split_once(":listener/").map_or(arn, |(_, rest)| rest)
}

/// The pool listener whose rules include one of ours for `slug`.
pub fn settled_on<'a>(
    states: &'a BTreeMap<String, std::sync::Arc<ListenerState>>,
    controller_id: &str,
    slug: &str,
) -> Option<&'a str> {
    states.iter().find_map(|(arn, l)| {
        l.rules
            .iter()
            .any(|r| tags::owner_slug(&r.tags, controller_id) == Some(slug))
            .then_some(arn.as_str())
    })
}

/// A reservation recorded in the store: a row's listener and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub listener_arn: String,
    pub priority: i32,
}

/// Each listener's fill: what its state shows, plus the reservations on
/// it whose rule does not exist yet (no rule holds their priority). With
/// `mine`, also how many of those rank before it (lower priority).
pub fn fills(
    states: &BTreeMap<String, std::sync::Arc<ListenerState>>,
    reservations: &[Reservation],
    mine: Option<(&str, i32)>,
) -> (BTreeMap<String, Fill>, usize) {
    let mut out: BTreeMap<String, Fill> = states
        .iter()
        .map(|(arn, l)| (arn.clone(), Fill::observed(l)))
        .collect();
    let mut ahead = 0;
    for r in reservations {
        let Some(l) = states.get(&r.listener_arn) else {
            continue;
        };
        if l.rules.iter().any(|x| x.priority == Some(r.priority)) {
            continue;
        }
        if let Some(f) = out.get_mut(&r.listener_arn) {
            f.pending += 1;
        }
        if mine.is_some_and(|(a, p)| a == r.listener_arn && r.priority < p) {
            ahead += 1;
        }
    }
    (out, ahead)
}

#[cfg(test)]
mod props;

//! `[sleep]`: idle previews scaled to zero and woken by a visit (issue 18).

use super::load::Problem;
use super::{CloudKind, Config};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SleepSection {
    /// Off unless set: no idle check, no waker listener.
    pub enabled: bool,
    /// How often the idle check reads the request counts.
    pub check_interval_secs: u64,
    /// A preview with no request for this long goes to sleep. A whole
    /// number of minutes: CloudWatch sums ALB counts by the minute.
    pub idle_after_secs: u64,
    /// The waker: where the waker target group sends a sleeping preview's
    /// visitors. A port of its own, serving nothing of the API.
    pub waker_listen: SocketAddr,
    /// The `Retry-After` a non-browser visitor of a sleeping preview gets,
    /// and how often the waiting page reloads.
    pub retry_after_secs: u64,
    /// The waker target group of each load balancer (`app/<name>/<id>`,
    /// read from a listener's ARN) → its ARN, as the stack creates it.
    pub waker_target_groups: BTreeMap<String, String>,
}

impl Default for SleepSection {
    fn default() -> Self {
        Self {
            enabled: false,
            check_interval_secs: 300,
            idle_after_secs: 3600,
            waker_listen: "0.0.0.0:8081".parse().expect("valid"),
            retry_after_secs: 5,
            waker_target_groups: BTreeMap::new(),
        }
    }
}

impl SleepSection {
    pub fn check_interval(&self) -> Duration {
        Duration::from_secs(self.check_interval_secs)
    }

    pub fn idle_after(&self) -> Duration {
        Duration::from_secs(self.idle_after_secs)
    }
}

/// What is wrong with `[sleep]`, each problem with its key.
pub(super) fn problems(c: &Config) -> Vec<Problem> {
    let s = &c.sleep;
    let mut out = Vec::new();
    let mut bad = |key: &str, message: &str| {
        out.push(Problem {
            key: format!("sleep.{key}"),
            message: message.into(),
        })
    };
    if !(5..=86_400).contains(&s.check_interval_secs) {
        bad("check_interval_secs", "must be 5..=86400 (seconds)");
    }
    if !(60..=604_800).contains(&s.idle_after_secs) || !s.idle_after_secs.is_multiple_of(60) {
        bad(
            "idle_after_secs",
            "must be a whole number of minutes, 60..=604800 (CloudWatch sums ALB counts by the minute)",
        );
    }
    if !(1..=600).contains(&s.retry_after_secs) {
        bad("retry_after_secs", "must be 1..=600 (seconds)");
    }
    for (lb, arn) in &s.waker_target_groups {
        if previewd_core::sleep::target_group_dimension(arn).is_none() {
            bad(
                &format!("waker_target_groups.{lb}"),
                "must be a target group ARN (arn:…:targetgroup/<name>/<id>)",
            );
        }
    }
    if !s.enabled {
        return out;
    }
    let taken = [Some(c.server.listen), c.server.internal_listen];
    if s.waker_listen.port() != 0 && taken.contains(&Some(s.waker_listen)) {
        bad(
            "waker_listen",
            "must differ from server.listen and server.internal_listen: the waker serves nothing of the API",
        );
    }
    // Every listener of the pool needs its load balancer's waker: a
    // preview placed on one without would never sleep, and a pool that
    // sleeps only part of its previews is more likely a missing key than
    // a wish. (Projects need nothing here: the waker spells each host with
    // its own project's naming.)
    if c.cloud.kind == CloudKind::Aws {
        let mut missing = Vec::new();
        for arn in c.pool().arns() {
            match previewd_core::sleep::load_balancer_of(arn) {
                Some(lb) if !s.waker_target_groups.contains_key(lb) => missing.push(lb.to_owned()),
                Some(_) => {}
                None => bad(
                    "enabled",
                    &format!("{arn} must be a listener ARN to find its load balancer"),
                ),
            }
        }
        missing.dedup();
        if !missing.is_empty() {
            bad(
                "waker_target_groups",
                &format!(
                    "needs the waker target group of every load balancer of the pool (a preview there could never sleep); missing: {}",
                    missing.join(", ")
                ),
            );
        }
    }
    out
}

#[cfg(test)]
#[path = "config_sleep_tests.rs"]
mod tests;

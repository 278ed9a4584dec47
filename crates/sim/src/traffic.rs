//! Simulated visitors: requests through the shared listener as the load
//! balancer routes them, the per-target-group request counts CloudWatch
//! keeps (`RequestCount`, read with GetMetricData), and the waker's target
//! group that a sleeping preview's rule forwards to.

use crate::Sim;
use crate::world::World;
use previewd_core::operations::Op;
use previewd_core::ports::{CloudResult, Metrics, RequestCount, RequestCountQuery};
use previewd_core::sleep::MAX_QUERIES_PER_CALL;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The waker's target group, as the CloudFormation stack names it: the
/// first load balancer's; the `i`-th's is `previewd-waker-<i>` (a target
/// group serves one load balancer, so each has its own).
pub const WAKER_TARGET_GROUP: &str = "previewd-waker";

fn waker_name(i: usize) -> String {
    match i {
        0 => WAKER_TARGET_GROUP.to_owned(),
        i => format!("{WAKER_TARGET_GROUP}-{i}"),
    }
}

fn is_waker(name: &str) -> bool {
    name == WAKER_TARGET_GROUP
        || name
            .strip_prefix(WAKER_TARGET_GROUP)
            .and_then(|n| n.strip_prefix('-'))
            .is_some_and(|n| n.parse::<usize>().is_ok())
}

/// Where the load balancer sent a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// A healthy target of the preview answered.
    Served,
    /// The rule forwards to the waker: previewd answers.
    Waker,
    /// The rule's group has no healthy target: the load balancer's 503.
    Unavailable,
    /// No rule for the host: the listener's default action.
    NoRoute,
}

/// Requests the load balancer forwarded, by target group ARN.
#[derive(Debug, Default)]
pub(crate) struct TrafficState {
    requests: BTreeMap<String, Vec<Instant>>,
}

impl Sim {
    /// The waker's target group on the first load balancer, created
    /// (untagged, as the stack creates it) on first use; its ARN.
    pub fn waker_target_group(&self) -> String {
        self.waker_of(0)
    }

    /// The waker target group of each load balancer, created on first use:
    /// `app/<name>/<id>` (as `sleep.waker_target_groups` keys it) → ARN.
    pub fn waker_target_groups(&self) -> std::collections::BTreeMap<String, String> {
        let albs = self.lock().cfg.albs.clone();
        albs.iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let lb = previewd_core::sleep::load_balancer_of(&a.listener_arn)?;
                Some((lb.to_owned(), self.waker_of(i)))
            })
            .collect()
    }

    fn waker_of(&self, i: usize) -> String {
        let name = waker_name(i);
        let mut w = self.lock();
        if let Some(tg) = w.elb.by_name(&name) {
            return tg.arn.clone();
        }
        let arn = w.tg_arn(&name);
        w.elb.add_untagged_group(&arn, &name);
        arn
    }

    /// One request for `host` through the listener, counted against the
    /// target group it reaches, as ALB counts `RequestCount`.
    pub fn visit(&self, host: &str) -> Visit {
        self.route(host, true)
    }

    /// Where a request for `host` would go now, counting nothing: when a
    /// waking preview would first answer, for the benchmark's probe.
    pub fn peek(&self, host: &str) -> Visit {
        self.route(host, false)
    }

    /// Tasks running now, over every service: what Fargate bills.
    pub fn running_tasks(&self) -> i64 {
        let w = self.lock();
        w.ecs
            .services
            .values()
            .map(|s| i64::from(s.running()))
            .sum()
    }

    fn route(&self, host: &str, count: bool) -> Visit {
        let mut w = self.lock();
        let now = w.now;
        let healthy_after = w.cfg.target_healthy_after;
        let Some(tg_arn) = w.elb.route(host) else {
            return Visit::NoRoute;
        };
        if count {
            w.traffic
                .requests
                .entry(tg_arn.clone())
                .or_default()
                .push(now);
        }
        if w.elb
            .target_groups
            .get(&tg_arn)
            .is_some_and(|t| is_waker(&t.name))
        {
            return Visit::Waker;
        }
        let healthy = w.elb.target_groups.get(&tg_arn).is_some_and(|tg| {
            tg.targets
                .iter()
                .any(|t| now >= t.registered_at + healthy_after)
        });
        if healthy {
            Visit::Served
        } else {
            Visit::Unavailable
        }
    }
}

impl World {
    /// GetMetricData: up to 500 queries a request; each answer is the sum
    /// of the requests its group was sent within `window` before now, and
    /// the newest one's exact age (CloudWatch's per-minute datapoints give
    /// it to the minute; the sim is exact, which only makes it earlier).
    fn request_counts(
        &mut self,
        queries: &[RequestCountQuery],
        window: Duration,
    ) -> CloudResult<Vec<RequestCount>> {
        for _ in queries.chunks(MAX_QUERIES_PER_CALL) {
            self.gate(Op::GetMetricData, "*")?;
        }
        let now = self.now;
        let since = now.checked_sub(window);
        Ok(queries
            .iter()
            .map(|q| {
                let inside = self.traffic.requests.get(&q.target_group_arn).map(|at| {
                    at.iter()
                        .filter(|t| since.is_none_or(|s| **t > s) && **t <= now)
                        .copied()
                        .collect::<Vec<_>>()
                });
                let inside = inside.unwrap_or_default();
                RequestCount {
                    sum: inside.len() as f64,
                    newest_age: inside.iter().max().map(|t| now - *t),
                }
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Metrics for Sim {
    async fn request_counts(
        &self,
        queries: &[RequestCountQuery],
        window: Duration,
    ) -> CloudResult<Vec<RequestCount>> {
        self.call(|w| w.request_counts(queries, window)).await
    }
}

//! The lower bound on the time to bring N new previews to Ready that AWS's
//! rate limits and the minimum number of calls imply, whatever the
//! controller does.
//!
//! For every token bucket b: C_b = the fewest requests N previews must make
//! from it, burst_b and rate_b its size and refill. The last of those
//! requests cannot pass before (C_b − burst_b)⁺ / rate_b, and after it the
//! preview it belongs to still needs `tail_b`: the create calls that follow
//! it in the fixed create order (one latency each), the rollout
//! (`stable_after`), the health check (`healthy_after`) and one read to see
//! it. The bound is the largest of these, and at least one preview's whole
//! serial chain.

use crate::harness::SimParams;
use previewd_sim::{BucketSpec, Limits};
use serde::Serialize;

/// One bucket's share of the bound.
#[derive(Debug, Clone, Serialize)]
pub struct BucketBound {
    pub bucket: &'static str,
    /// Fewest requests the N previews need from it.
    pub min_calls: f64,
    pub burst: f64,
    pub per_sec: f64,
    /// (min_calls − burst)⁺ / per_sec + tail, in seconds.
    pub bound_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LowerBound {
    pub secs: f64,
    /// The bucket that sets it (or `chain`).
    pub binding: &'static str,
    /// One preview alone: every create call in order, rollout, health.
    pub chain_secs: f64,
    pub buckets: Vec<BucketBound>,
}

/// The create order (CreateLogGroup and PutRetentionPolicy are one port
/// call of two requests): requests on one preview's serial path.
const CHAIN_CALLS: f64 = 7.0;

pub fn lower_bound(n: usize, sim: &SimParams, limits: &Limits) -> LowerBound {
    let n = n as f64;
    let l = sim.latency_ms as f64 / 1000.0;
    // Rollout, health check, and one read that sees the healthy target.
    let settle = (sim.stable_after_ms + sim.healthy_after_ms) as f64 / 1000.0 + l;
    let chain = CHAIN_CALLS * l + settle;
    // (name, bucket, fewest requests, create calls after it on the path)
    let rows: [(&'static str, BucketSpec, f64, f64); 8] = [
        ("logs:admin (CreateLogGroup)", limits.logs_admin, n, 5.0),
        (
            "logs:config (PutRetentionPolicy)",
            limits.logs_config,
            n,
            4.0,
        ),
        (
            "ecs:task-def-modify (RegisterTaskDefinition)",
            limits.ecs_task_def_modify,
            n,
            3.0,
        ),
        // CreateTargetGroup and CreateRule.
        ("elbv2:mutating", limits.elb_mutating, 2.0 * n, 1.0),
        // Those two writes and at least one DescribeTargetHealth each.
        ("elbv2:account", limits.elb_account, 3.0 * n, 1.0),
        (
            "ecs:service-modify (CreateService)",
            limits.ecs_service_modify,
            n,
            0.0,
        ),
        // At least one DescribeServices per ten services.
        (
            "ecs:service-read",
            limits.ecs_service_read,
            (n / 10.0).ceil(),
            0.0,
        ),
        // A and TXT record per preview, CREATE counts one each.
        ("route53:changes", limits.route53_changes, 2.0 * n, 0.0),
    ];
    let buckets: Vec<BucketBound> = rows
        .into_iter()
        .map(|(bucket, spec, calls, after)| BucketBound {
            bucket,
            min_calls: calls,
            burst: spec.burst,
            per_sec: spec.per_sec,
            bound_secs: (calls - spec.burst).max(0.0) / spec.per_sec + after * l + settle,
        })
        .collect();
    let (binding, secs) =
        buckets
            .iter()
            .map(|b| (b.bucket, b.bound_secs))
            .fold(
                ("chain", chain),
                |best, x| if x.1 > best.1 { x } else { best },
            );
    LowerBound {
        secs,
        binding,
        chain_secs: chain,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_previews_are_bound_by_registering_task_definitions() {
        let sim = SimParams::aws_like(30);
        let b = lower_bound(100, &sim, &Limits::default());
        assert!(b.binding.starts_with("ecs:task-def-modify"), "{b:?}");
        // 80 s of refill, three creates after it, rollout and health.
        assert!((b.secs - (80.0 + 0.09 + 5.03)).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn ten_previews_fit_every_burst_and_are_bound_by_one_chain() {
        let b = lower_bound(10, &SimParams::aws_like(30), &Limits::default());
        assert!(
            b.binding.starts_with("logs:config") || b.binding == "chain",
            "{b:?}"
        );
        assert!(b.secs >= b.chain_secs);
    }
}

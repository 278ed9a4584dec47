//! The simulator's settings: timings, limits, faults and the fixed names.

use previewd_core::limits::Limits;
use std::time::Duration;

/// The account every simulated ARN lives in.
pub const ACCOUNT: &str = "123456789012";

/// How the simulated AWS behaves. `Default` is AWS's rules and limits with
/// no waiting, no throttling and no faults, which is what unit tests want;
/// [`SimConfig::demo`] adds AWS-like delays for the local demo.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Added to every API request (a paged call pays it once per page).
    pub latency: Duration,
    /// From CreateService/UpdateService until the new deployment's tasks
    /// run and its rollout is COMPLETED (or FAILED).
    pub service_stable_after: Duration,
    /// From a task failing to start until ECS launches its replacement.
    /// Zero: every launch up to the breaker's threshold fails at once.
    pub failed_task_relaunch_after: Duration,
    /// Tasks failing to start in a row before a rollout goes FAILED (the
    /// deployment circuit breaker; ECS's smallest threshold is 3).
    pub circuit_breaker_threshold: u32,
    /// From a task running until its target reports healthy.
    pub target_healthy_after: Duration,
    /// From DeleteService (DRAINING) until the service is INACTIVE.
    pub drain_after: Duration,
    /// Refuse requests past the token buckets in `limits`.
    pub throttling: bool,
    pub limits: Limits,
    /// Probability that a request fails with a 5xx before it is applied.
    pub fault_rate: f64,
    /// Probability that a mutating request is applied and still answers
    /// with a 5xx: the response was lost.
    pub fault_after_apply_rate: f64,
    /// Seeds the one random source, so a run can be replayed.
    pub seed: u64,
    /// A hard AWS limit: target groups attached to one load balancer.
    pub max_target_groups_per_alb: usize,
    /// Non-default rules on the load balancer (an adjustable quota).
    pub alb_rule_quota: usize,
    /// Target groups per Region (an adjustable quota).
    pub max_target_groups_per_region: usize,
    /// The shared listener every rule lives on.
    pub listener_arn: String,
    pub region: String,
    /// The ECS cluster that holds the services (only shapes their ARNs).
    pub cluster: String,
    /// The hosted zone: records outside it are refused, as Route53 does.
    pub zone_name: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        let region = "us-east-1".to_string();
        Self {
            latency: Duration::ZERO,
            service_stable_after: Duration::ZERO,
            failed_task_relaunch_after: Duration::ZERO,
            circuit_breaker_threshold: 3,
            target_healthy_after: Duration::ZERO,
            drain_after: Duration::ZERO,
            throttling: false,
            limits: Limits::default(),
            fault_rate: 0.0,
            fault_after_apply_rate: 0.0,
            seed: 0,
            max_target_groups_per_alb: 100,
            alb_rule_quota: 100,
            max_target_groups_per_region: 3000,
            listener_arn: format!(
                "arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2"
            ),
            region,
            cluster: "previews".into(),
            zone_name: "preview.example.com".into(),
        }
    }
}

impl SimConfig {
    /// Delays and throttling close to a real account, for the local demo:
    /// a preview takes about half a minute to become ready.
    pub fn demo() -> Self {
        Self {
            latency: Duration::from_millis(40),
            service_stable_after: Duration::from_secs(20),
            failed_task_relaunch_after: Duration::from_secs(30),
            target_healthy_after: Duration::from_secs(10),
            drain_after: Duration::from_secs(30),
            throttling: true,
            ..Self::default()
        }
    }
}

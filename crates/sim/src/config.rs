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
    /// Target groups per Region (an adjustable quota).
    pub max_target_groups_per_region: usize,
    /// The load balancers, each with the one listener previews share and
    /// AWS's hard limit of 100 target groups
    /// (`previewd_core::plan::MAX_TARGET_GROUPS_PER_ALB`, not a setting:
    /// no benchmark may raise it).
    pub albs: Vec<SimAlb>,
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
            max_target_groups_per_region: 3000,
            albs: vec![SimAlb::numbered(&region, 0)],
            region,
            cluster: "previews".into(),
            zone_name: "preview.example.com".into(),
        }
    }
}

/// One Application Load Balancer and its shared listener.
#[derive(Clone, Debug)]
pub struct SimAlb {
    pub listener_arn: String,
    pub dns_name: String,
    /// Its canonical hosted zone id (an alias target's zone).
    pub zone_id: String,
    /// Non-default rules the load balancer may hold (an adjustable quota).
    pub rule_quota: usize,
    /// Other teams' rules on the listener, each forwarding to its own
    /// target group: they take up rules and target groups as on a shared
    /// listener. Created with the world, untagged.
    pub foreign: usize,
}

impl SimAlb {
    /// The `i`-th load balancer (0 is `previewd_core::render::DEFAULT_LISTENER_ARN`'s
    /// in us-east-1), quota 100, nothing foreign.
    pub fn numbered(region: &str, i: usize) -> Self {
        let name = if i == 0 {
            "previews".to_string()
        } else {
            format!("previews-{i}")
        };
        Self {
            listener_arn: format!(
                "arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/{name}/{:016x}/{:016x}",
                0x50dc6c495c0c9188u64 + i as u64,
                0xf2f7dc8efc522ab2u64 + i as u64
            ),
            dns_name: format!("{name}-alb.{region}.elb.amazonaws.com"),
            zone_id: "Z35SXDOTRQ7X7K".into(),
            rule_quota: 100,
            foreign: 0,
        }
    }
}

impl SimConfig {
    /// `n` load balancers at AWS's limits, each with `foreign` rules and
    /// target groups of another team.
    pub fn with_albs(mut self, n: usize, foreign: usize) -> Self {
        self.albs = (0..n)
            .map(|i| SimAlb {
                foreign,
                ..SimAlb::numbered(&self.region, i)
            })
            .collect();
        self
    }

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

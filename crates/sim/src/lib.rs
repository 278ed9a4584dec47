//! An in-memory AWS with AWS's own rules, latency, quotas and faults.
//!
//! [`Sim`] implements previewd's cloud ports (`Logs`, `Compute`,
//! `LoadBalancer`, `Dns`, `Images`) over one simulated account. It refuses what AWS
//! refuses (a duplicate CreateService, a taken rule priority, a 101st target
//! group on the load balancer, a Route53 DELETE that does not match), rolls
//! ECS deployments out over time, and can add latency, throttling, IAM
//! denials and lost responses. It backs unit tests, the chaos test,
//! benchmarks and the local demo.
//!
//! ```text
//!  port call ─▶ sleep(latency) ─▶ lock World ─▶ advance(now) ─▶ per request:
//!                                               pace (previewd's pacer, if set)
//!                                               count → throttle → IAM → fault
//!                                               apply → maybe lose the response
//! ```
//!
//! # Guarantees
//! - Deterministic: one seeded random source, ids from a counter, time from
//!   `tokio::time::Instant`, so `tokio::time::pause()` drives every delay.
//! - The lock is never held across an await; latency is slept outside it.
//!
//! # Caveats
//! - Load balancers each with one shared listener (`SimConfig::albs`),
//!   one hosted zone, one cluster.
//! - Time-driven changes are applied lazily, when the next call (or
//!   [`Sim::snapshot`]) looks; their timestamps are still exact.
#![forbid(unsafe_code)]

mod access;
mod config;
mod dns;
mod ecs;
mod elb;
mod foreign;
mod images;
mod logs;
mod ports;
mod service;
mod snapshot;
mod taskdefs;
mod traffic;
mod world;

pub use config::{ACCOUNT, SimAlb, SimConfig};
pub use previewd_core::limits::{BucketSpec, Limits, Pacer};
pub use service::LOG_GROUP_MISSING;
pub use snapshot::{ServiceSnapshot, Snapshot};
pub use traffic::{Visit, WAKER_TARGET_GROUP};

use previewd_core::operations::{Op, iam_action};
use previewd_core::ports::CloudResult;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;
use world::World;

/// Counts a port call's requests in `previewd_aws_calls_total`, as the
/// AWS adapter counts its SDK calls. A call stops at its first failed
/// request, so every request but the last succeeded and the last one ended
/// as the call did.
fn record_requests<T>(requests: &[Op], result: &CloudResult<T>) {
    use previewd_core::metrics::{AWS_CALLS, aws_outcome};
    let last = requests.len().saturating_sub(1);
    for (i, op) in requests.iter().enumerate() {
        let outcome = if i == last { aws_outcome(result) } else { "ok" };
        let (service, operation) = (op.service().label(), op.name());
        metrics::counter!(AWS_CALLS, "service" => service, "operation" => operation, "outcome" => outcome)
            .increment(1);
    }
}

/// The simulated account. Clones share it.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        Self {
            world: Arc::new(Mutex::new(World::new(config))),
        }
    }

    /// The settings it was made with (its load balancers' listeners, to
    /// build a pool from).
    pub fn config(&self) -> SimConfig {
        self.lock().cfg.clone()
    }

    /// The world brought up to the present.
    fn lock(&self) -> MutexGuard<'_, World> {
        // A test that panicked mid-call poisons nothing we rely on.
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        w.advance(Instant::now());
        w
    }

    /// One port call: the first request's latency, the work under the lock,
    /// then the latency of any further requests (pages) it made and the
    /// time the client's pacer held them back.
    ///
    /// When the pacer holds back the call's first request, nothing has
    /// happened yet: the call sleeps until its reserved time and starts
    /// over, so its effects land when the request does. Later requests of
    /// one call (pages) are applied under the one lock but checked against
    /// AWS's buckets at the time the pacer lets each go.
    async fn call<T>(&self, mut f: impl FnMut(&mut World) -> CloudResult<T>) -> CloudResult<T> {
        let mut prepaid = None;
        loop {
            let latency = self.lock().cfg.latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let (result, requests, held, done) = {
                let mut w = self.lock();
                w.begin_call(prepaid.take());
                let result = f(&mut w);
                let held = w.held.take();
                (result, std::mem::take(&mut w.requests), held, w.cursor)
            };
            if let Some((key, until)) = held {
                prepaid = Some(key);
                tokio::time::sleep_until(until).await;
                continue;
            }
            record_requests(&requests, &result);
            tokio::time::sleep_until(done).await;
            return result;
        }
    }

    /// previewd's client-side pacer: every request waits for it. The
    /// simulated account's own buckets still apply (`throttling`).
    pub fn set_pacer(&self, pacer: Option<Arc<Pacer>>) {
        self.lock().pacer = pacer;
    }

    /// Every request of `action` (an IAM action such as
    /// `elasticloadbalancing:ModifyRule`, or a call key such as
    /// `elbv2:ModifyRule`) fails with AccessDenied until [`Sim::allow`].
    pub fn deny(&self, action: &str) {
        self.lock().denied.insert(iam_action(action));
    }

    pub fn allow(&self, action: &str) {
        self.lock().denied.remove(&iam_action(action));
    }

    pub fn set_fault_rate(&self, p: f64) {
        self.lock().cfg.fault_rate = p;
    }

    pub fn set_fault_after_apply_rate(&self, p: f64) {
        self.lock().cfg.fault_after_apply_rate = p;
    }

    /// Switching throttling on starts every bucket full.
    pub fn set_throttling(&self, on: bool) {
        let mut w = self.lock();
        if on && !w.cfg.throttling {
            w.reset_buckets();
        }
        w.cfg.throttling = on;
    }

    /// From now on the service's tasks fail to start with `reason`, each
    /// stopping with it, relaunched every
    /// [`SimConfig::failed_task_relaunch_after`] until the rollout goes
    /// FAILED after [`SimConfig::circuit_breaker_threshold`] of them.
    /// Running tasks are left alone.
    pub fn fail_tasks_of(&self, service: &str, reason: &str) {
        self.lock()
            .ecs
            .failing
            .insert(service.to_string(), reason.to_string());
    }

    /// Undoes [`Sim::fail_tasks_of`]; the next deployment starts normally.
    pub fn heal_tasks_of(&self, service: &str) {
        self.lock().ecs.failing.remove(service);
    }

    /// Requests attempted per API (`ecs:CreateService`, `elbv2:DescribeRules`,
    /// …), refused ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// All requests attempted, of every API.
    pub fn total_calls(&self) -> u64 {
        self.lock().calls.values().sum()
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Makes `listener_arn` a plain HTTP listener: an authenticate action
    /// on it is refused, as AWS refuses it.
    pub fn set_listener_http(&self, listener_arn: &str) {
        self.lock()
            .elb
            .http_listeners
            .insert(listener_arn.to_owned());
    }

    /// Everything in the account now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.lock())
    }
}

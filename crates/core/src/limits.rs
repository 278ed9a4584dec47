//! AWS's API request throttling as token buckets: the published limits
//! (docs/aws-limits.md), which bucket each request takes from, and the
//! client-side [`Pacer`] that keeps previewd's own requests inside them.
//!
//! AWS refuses a request when a bucket is empty; the simulator does the
//! same with [`Buckets::take`]. previewd paces itself instead: a request
//! reserves its tokens and waits until they exist ([`Buckets::reserve`]),
//! so a burst of work queues in order on our side rather than turning into
//! throttled retries and backoff. Time arrives as a value, as everywhere
//! in this crate.

use crate::operations::{Op, Service};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One token bucket: `burst` tokens at most, refilled at `per_sec`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub burst: f64,
    pub per_sec: f64,
}

impl BucketSpec {
    pub const fn new(burst: f64, per_sec: f64) -> Self {
        Self { burst, per_sec }
    }
}

/// Every bucket; the defaults are AWS's (see docs/aws-limits.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// DescribeServices, ListServices.
    pub ecs_service_read: BucketSpec,
    /// CreateService, UpdateService, DeleteService.
    pub ecs_service_modify: BucketSpec,
    /// RegisterTaskDefinition, DeregisterTaskDefinition: 1 per second.
    pub ecs_task_def_modify: BucketSpec,
    /// DescribeTaskDefinition, ListTaskDefinition*.
    pub ecs_task_def_read: BucketSpec,
    /// DescribeTasks, ListTasks.
    pub ecs_cluster_read: BucketSpec,
    /// TagResource, UntagResource.
    pub ecs_tag: BucketSpec,
    /// Every ELB call also takes a token from this account-wide bucket.
    pub elb_account: BucketSpec,
    pub elb_non_mutating: BucketSpec,
    pub elb_mutating: BucketSpec,
    /// RegisterTargets, DeregisterTargets.
    pub elb_targets: BucketSpec,
    /// All Route53 actions together.
    pub route53: BucketSpec,
    /// Route53 change throughput in record changes (CREATE/DELETE 1, UPSERT 2).
    pub route53_changes: BucketSpec,
    /// CreateLogGroup, DeleteLogGroup, DescribeLogGroups (no burst published).
    pub logs_admin: BucketSpec,
    /// PutRetentionPolicy, TagResource.
    pub logs_config: BucketSpec,
    /// ECR DescribeImages: AWS publishes no rate for it (ECR's quotas list
    /// the push and pull APIs only), so this is previewd's own, modest one.
    pub ecr_read: BucketSpec,
    /// CloudWatch GetMetricData: 50 transactions per second, AWS's
    /// published default (CloudWatch service quotas); no burst published,
    /// so the bucket holds one second's worth.
    pub cloudwatch_get_metric_data: BucketSpec,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ecs_service_read: BucketSpec::new(100.0, 20.0),
            ecs_service_modify: BucketSpec::new(50.0, 5.0),
            ecs_task_def_modify: BucketSpec::new(20.0, 1.0),
            ecs_task_def_read: BucketSpec::new(50.0, 20.0),
            ecs_cluster_read: BucketSpec::new(100.0, 20.0),
            ecs_tag: BucketSpec::new(20.0, 10.0),
            elb_account: BucketSpec::new(40.0, 10.0),
            elb_non_mutating: BucketSpec::new(40.0, 10.0),
            elb_mutating: BucketSpec::new(20.0, 3.0),
            elb_targets: BucketSpec::new(20.0, 4.0),
            route53: BucketSpec::new(50.0, 10.0),
            route53_changes: BucketSpec::new(1500.0, 100.0),
            // AWS publishes only a rate; the bucket holds one second of it.
            logs_admin: BucketSpec::new(10.0, 10.0),
            logs_config: BucketSpec::new(5.0, 5.0),
            ecr_read: BucketSpec::new(10.0, 5.0),
            cloudwatch_get_metric_data: BucketSpec::new(50.0, 50.0),
        }
    }
}

/// Names a bucket in [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    EcsServiceRead,
    EcsServiceModify,
    EcsTaskDefModify,
    EcsTaskDefRead,
    EcsClusterRead,
    EcsTag,
    ElbAccount,
    ElbNonMutating,
    ElbMutating,
    ElbTargets,
    Route53,
    Route53Changes,
    LogsAdmin,
    LogsConfig,
    EcrRead,
    CloudWatchGetMetricData,
}

/// Every bucket.
pub const ALL: [Bucket; 16] = [
    Bucket::EcsServiceRead,
    Bucket::EcsServiceModify,
    Bucket::EcsTaskDefModify,
    Bucket::EcsTaskDefRead,
    Bucket::EcsClusterRead,
    Bucket::EcsTag,
    Bucket::ElbAccount,
    Bucket::ElbNonMutating,
    Bucket::ElbMutating,
    Bucket::ElbTargets,
    Bucket::Route53,
    Bucket::Route53Changes,
    Bucket::LogsAdmin,
    Bucket::LogsConfig,
    Bucket::EcrRead,
    Bucket::CloudWatchGetMetricData,
];

/// The buckets one request of `key` (`elbv2:CreateRule`, `ecs:ListServices`,
/// either spelling of the service) takes a token from, as the registry
/// ([`crate::operations`]) lists them; an operation previewd does not call
/// takes only its service's shared bucket, if it has one.
pub fn buckets_of(key: &str) -> &'static [Bucket] {
    if let Some(op) = Op::parse(key) {
        return op.buckets();
    }
    key.split_once(':')
        .and_then(|(service, _)| Service::parse(service))
        .map_or(&[], Service::shared_buckets)
}

/// What a request is metered by: an [`Op`], or a key that [`buckets_of`]
/// reads.
pub trait Metered {
    fn buckets(&self) -> &'static [Bucket];
}

impl Metered for Op {
    fn buckets(&self) -> &'static [Bucket] {
        Op::buckets(*self)
    }
}

impl Metered for str {
    fn buckets(&self) -> &'static [Bucket] {
        buckets_of(self)
    }
}

impl Limits {
    pub fn spec(&self, b: Bucket) -> BucketSpec {
        match b {
            Bucket::EcsServiceRead => self.ecs_service_read,
            Bucket::EcsServiceModify => self.ecs_service_modify,
            Bucket::EcsTaskDefModify => self.ecs_task_def_modify,
            Bucket::EcsTaskDefRead => self.ecs_task_def_read,
            Bucket::EcsClusterRead => self.ecs_cluster_read,
            Bucket::EcsTag => self.ecs_tag,
            Bucket::ElbAccount => self.elb_account,
            Bucket::ElbNonMutating => self.elb_non_mutating,
            Bucket::ElbMutating => self.elb_mutating,
            Bucket::ElbTargets => self.elb_targets,
            Bucket::Route53 => self.route53,
            Bucket::Route53Changes => self.route53_changes,
            Bucket::LogsAdmin => self.logs_admin,
            Bucket::LogsConfig => self.logs_config,
            Bucket::EcrRead => self.ecr_read,
            Bucket::CloudWatchGetMetricData => self.cloudwatch_get_metric_data,
        }
    }

    /// Every bucket at `share` of its burst and rate: what one replica may
    /// spend of an account it shares with production and with its peers.
    /// A burst never drops below one token, so every request can pass.
    pub fn scaled(&self, share: f64) -> Limits {
        let mut out = self.clone();
        for b in ALL {
            let s = self.spec(b);
            *out.spec_mut(b) = BucketSpec::new((s.burst * share).max(1.0), s.per_sec * share);
        }
        out
    }

    fn spec_mut(&mut self, b: Bucket) -> &mut BucketSpec {
        match b {
            Bucket::EcsServiceRead => &mut self.ecs_service_read,
            Bucket::EcsServiceModify => &mut self.ecs_service_modify,
            Bucket::EcsTaskDefModify => &mut self.ecs_task_def_modify,
            Bucket::EcsTaskDefRead => &mut self.ecs_task_def_read,
            Bucket::EcsClusterRead => &mut self.ecs_cluster_read,
            Bucket::EcsTag => &mut self.ecs_tag,
            Bucket::ElbAccount => &mut self.elb_account,
            Bucket::ElbNonMutating => &mut self.elb_non_mutating,
            Bucket::ElbMutating => &mut self.elb_mutating,
            Bucket::ElbTargets => &mut self.elb_targets,
            Bucket::Route53 => &mut self.route53,
            Bucket::Route53Changes => &mut self.route53_changes,
            Bucket::LogsAdmin => &mut self.logs_admin,
            Bucket::LogsConfig => &mut self.logs_config,
            Bucket::EcrRead => &mut self.ecr_read,
            Bucket::CloudWatchGetMetricData => &mut self.cloudwatch_get_metric_data,
        }
    }
}

#[derive(Debug, Clone)]
struct Level {
    /// Below zero when reservations have run ahead of the refill.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

/// The live token levels, one per [`Bucket`].
#[derive(Debug, Clone)]
pub struct Buckets {
    limits: Limits,
    levels: Vec<Level>,
    /// Per bucket, the turn given to the last request turned back for it
    /// ([`Buckets::reserve`]).
    turns: Vec<Option<Instant>>,
}

impl Buckets {
    /// Every bucket full at `now`.
    pub fn full(limits: Limits, now: Instant) -> Self {
        let levels = ALL
            .iter()
            .map(|b| Level {
                tokens: limits.spec(*b).burst,
                at: now,
            })
            .collect();
        Self {
            limits,
            levels,
            turns: vec![None; ALL.len()],
        }
    }

    fn refill(&mut self, b: Bucket, now: Instant) -> f64 {
        let spec = self.limits.spec(b);
        let level = &mut self.levels[b as usize];
        let elapsed = now.saturating_duration_since(level.at).as_secs_f64();
        level.tokens = (level.tokens + elapsed * spec.per_sec).min(spec.burst);
        level.at = level.at.max(now);
        level.tokens
    }

    /// Takes `cost` tokens from every bucket in `from`, or none at all when
    /// any of them is short (AWS refuses the request as a whole).
    pub fn take(&mut self, from: &[(Bucket, f64)], now: Instant) -> bool {
        let enough = from
            .iter()
            .all(|(b, cost)| self.refill(*b, now) + 1e-9 >= *cost);
        if enough {
            for (b, cost) in from {
                self.levels[*b as usize].tokens -= cost;
            }
        }
        enough
    }

    /// Reserves one token from every bucket in `from` for a request that
    /// wants to go at `at`, and says when it may: at once if every bucket
    /// has a token, else when the slowest refills far enough. Reservations
    /// run into debt, so requests go in the order they asked.
    ///
    /// When the wait would pass `max_wait`, nothing is reserved and the
    /// error is the request's turn: one refill after the turn of the last
    /// request turned back for the same bucket, and never sooner than its
    /// tokens exist. Told only when the tokens are free, every pass turned
    /// back during a burst came back at once, one of them got the token,
    /// and the rest observed again for nothing: at 1,000 previews queued
    /// for RegisterTaskDefinition (one a second) that was 15 passes per
    /// preview, whose reads crowded the bucket the queue was waiting on.
    /// Turns are at most [`MAX_PACED_TURN`] away.
    pub fn reserve(
        &mut self,
        from: &[Bucket],
        at: Instant,
        max_wait: Option<Duration>,
    ) -> Result<Instant, Duration> {
        let mut go = at;
        let mut short = Vec::new();
        for b in from {
            let tokens = self.refill(*b, at);
            if tokens < 1.0 {
                let per_sec = self.limits.spec(*b).per_sec;
                let wait = if per_sec > 0.0 {
                    (1.0 - tokens) / per_sec
                } else {
                    f64::MAX
                };
                go = go.max(at + Duration::from_secs_f64(wait.min(86_400.0)));
                short.push((*b, per_sec));
            }
        }
        let wait = go.duration_since(at);
        if max_wait.is_some_and(|max| wait > max) {
            let mut turn = go;
            for (b, per_sec) in &short {
                if let Some(last) = self.turns[*b as usize]
                    && *per_sec > 0.0
                {
                    turn = turn.max(last + Duration::from_secs_f64((1.0 / per_sec).min(86_400.0)));
                }
            }
            let turn = turn.min(at + MAX_PACED_TURN.max(wait));
            for (b, _) in &short {
                let last = &mut self.turns[*b as usize];
                *last = Some(last.map_or(turn, |l| l.max(turn)));
            }
            return Err(turn.duration_since(at));
        }
        for b in from {
            self.levels[*b as usize].tokens -= 1.0;
        }
        Ok(go)
    }

    /// New limits from `now` on: every level is brought up to date under the
    /// old ones and kept, but never above the new burst, so a replica whose
    /// share shrinks sends no more than the new share from then on.
    pub fn set_limits(&mut self, limits: Limits, now: Instant) {
        for b in ALL {
            self.refill(b, now);
        }
        self.limits = limits;
        for b in ALL {
            let burst = self.limits.spec(b).burst;
            let level = &mut self.levels[b as usize];
            level.tokens = level.tokens.min(burst);
        }
    }

    /// The fraction of its burst the emptiest bucket in `from` holds at
    /// `now` (below zero while in debt).
    pub fn fullness(&mut self, from: &[Bucket], now: Instant) -> f64 {
        from.iter()
            .map(|b| self.refill(*b, now) / self.limits.spec(*b).burst)
            .fold(1.0, f64::min)
    }
}

/// One replica's share of AWS's limits when `replicas` share
/// `total_percent` of them (`cloud.api_share_percent`): an equal part, so
/// that together they never pace past the total, however many there are.
pub fn replica_share(total_percent: u32, replicas: u32) -> f64 {
    f64::from(total_percent.min(100)) / 100.0 / f64::from(replicas.max(1))
}

/// The longest a request waits for its tokens before its call fails as
/// throttled instead (and its pass is retried): what a worker may be held.
pub const MAX_PACED_WAIT: Duration = Duration::from_secs(3);

/// The furthest turn a request turned back is given: past it, its pass
/// comes back then and is given a new one.
pub const MAX_PACED_TURN: Duration = Duration::from_secs(600);

/// The error of a request that would have waited past [`MAX_PACED_WAIT`]:
/// it carries the wait, so the pass is tried again when its tokens are free.
pub fn paced_out(key: &(impl std::fmt::Display + ?Sized), wait: Duration) -> crate::CloudError {
    crate::CloudError::Paced {
        message: format!(
            "{key} would wait {:.1} s for previewd's share of the account's rate limit",
            wait.as_secs_f64()
        ),
        free_in: wait,
    }
}

/// previewd's side of the buckets, shared by every port of one process.
#[derive(Debug)]
pub struct Pacer {
    buckets: Mutex<Buckets>,
}

impl Pacer {
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self {
            buckets: Mutex::new(Buckets::full(limits, now)),
        }
    }

    /// When a request of `key` that wants to go at `at` may go; its tokens
    /// are spent from now on (a caller that gives up loses them, which only
    /// errs on the side of fewer requests). If it would wait longer than
    /// `max_wait`, nothing is spent and the wait is the error. A
    /// reconcile pass must not hold its worker through a long queue (a
    /// burst of 100 task definitions is 80 s of RegisterTaskDefinition);
    /// it gives the worker back and is retried.
    pub fn try_reserve<K: Metered + ?Sized>(
        &self,
        key: &K,
        at: Instant,
        max_wait: Option<Duration>,
    ) -> Result<Instant, Duration> {
        let from = key.buckets();
        if from.is_empty() {
            return Ok(at);
        }
        self.lock().reserve(from, at, max_wait)
    }

    /// Whether a request of `key` would find its buckets less than half
    /// full: the sign that optional reads should hold back for writes.
    pub fn under_pressure<K: Metered + ?Sized>(&self, key: &K, now: Instant) -> bool {
        let from = key.buckets();
        !from.is_empty() && self.lock().fullness(from, now) < 0.5
    }

    /// Paces to `limits` from `now` on ([`Buckets::set_limits`]).
    pub fn set_limits(&self, limits: Limits, now: Instant) {
        self.lock().set_limits(limits, now);
    }

    /// The limits it paces to now.
    pub fn limits(&self) -> Limits {
        self.lock().limits.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // Token counts stay consistent whatever a panicking holder did.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;

//! AWS request throttling as token buckets, with AWS's published defaults.

use tokio::time::Instant;

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

/// Every bucket the simulator keeps; defaults are AWS's (see AWS-LIMITS.md).
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
        }
    }
}

/// Names a bucket in [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Bucket {
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
}

const ALL: [Bucket; 14] = [
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
];

impl Limits {
    fn spec(&self, b: Bucket) -> BucketSpec {
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
        }
    }
}

#[derive(Debug, Clone)]
struct Level {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

/// The live token levels, one per [`Bucket`].
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    limits: Limits,
    levels: Vec<Level>,
}

impl Buckets {
    /// Every bucket full at `now`.
    pub(crate) fn full(limits: Limits, now: Instant) -> Self {
        let levels = ALL
            .iter()
            .map(|b| Level {
                tokens: limits.spec(*b).burst,
                at: now,
            })
            .collect();
        Self { limits, levels }
    }

    fn refill(&mut self, b: Bucket, now: Instant) -> f64 {
        let spec = self.limits.spec(b);
        let level = &mut self.levels[b as usize];
        let elapsed = now.saturating_duration_since(level.at).as_secs_f64();
        level.tokens = (level.tokens + elapsed * spec.per_sec).min(spec.burst);
        level.at = now;
        level.tokens
    }

    /// Takes `cost` tokens from every bucket in `from`, or none at all when
    /// any of them is short (AWS refuses the request as a whole).
    pub(crate) fn take(&mut self, from: &[(Bucket, f64)], now: Instant) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Buckets::full(Limits::default(), t0);
        let td = [(Bucket::EcsTaskDefModify, 1.0)];
        for _ in 0..20 {
            assert!(b.take(&td, t0));
        }
        assert!(!b.take(&td, t0));
        assert!(!b.take(&td, t0 + Duration::from_millis(999)));
        assert!(b.take(&td, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn a_short_bucket_takes_nothing_from_the_others() {
        let t0 = Instant::now();
        let mut b = Buckets::full(Limits::default(), t0);
        let write = [(Bucket::ElbMutating, 1.0), (Bucket::ElbAccount, 1.0)];
        for _ in 0..20 {
            assert!(b.take(&write, t0));
        }
        assert!(!b.take(&write, t0));
        // The account bucket kept its other 20 tokens for reads.
        let read = [(Bucket::ElbNonMutating, 1.0), (Bucket::ElbAccount, 1.0)];
        for _ in 0..20 {
            assert!(b.take(&read, t0));
        }
        assert!(!b.take(&read, t0));
    }
}

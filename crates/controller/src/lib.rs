//! previewd's controller: claims due previews from the store, observes AWS
//! in batches, plans with `previewd_core::plan`, applies the plan, decides
//! the next status with `previewd_core::decide`, and writes it back with the
//! reports it owes.
//!
//! ```text
//!  store ──claim (lease)──▶ runner ──▶ attempt(key): observe ─▶ plan ─▶ execute
//!    ▲                        │  bounded workers                         │ Outcome
//!    │                        ▼                                          ▼
//!    └──── record_status ◀── decide(row, outcome, policy) ◀──────────────┘
//! ```
//!
//! The store's `next_reconcile_at` is the work queue: it survives restarts,
//! a write makes a row due at once, and the store's own wake-up
//! (`Store::wakeups`, notified by the write path itself) wakes the loop. A key is never reconciled twice at once because a worker
//! holds the row's lease for the whole pass.
#![forbid(unsafe_code)]

mod deliver;
mod dns_batch;
mod execute;
mod image_batch;
pub mod metrics;
mod observe;
mod reconcile;
mod runner;
mod share;
mod sleep;
mod sweep;

pub use deliver::Deliverer;
pub use dns_batch::DnsBatcher;
pub use observe::{Observer, ReadService};
pub use previewd_core::decide::Policy;
pub use reconcile::Reconciler;
pub use runner::Controller;
pub use share::share_rate_limits;
pub use sleep::{SleepError, Sleeper};
pub use sweep::{GcPreview, Planned, SweepError, SweepOptions, SweepReport, Sweeper, run_sweeps};

use previewd_core::decide::Jitter;
use previewd_core::limits::Pacer;
use previewd_core::observed::ObservedService;
use previewd_core::ports::{CloudResult, Compute, Dns, Images, LoadBalancer, Logs};
use std::sync::Arc;
use std::time::Duration;

/// The cloud ports, however they are implemented (AWS, sim).
#[derive(Clone)]
pub struct Cloud {
    pub logs: Arc<dyn Logs>,
    pub compute: Arc<dyn Compute>,
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub dns: Arc<dyn Dns>,
    /// Whether a preview's ECR image exists yet.
    pub images: Arc<dyn Images>,
    /// The pacer the ports' requests wait for, when they have one: read
    /// to tell when optional listings should hold back for writes.
    pub pacer: Option<Arc<Pacer>>,
}

impl Cloud {
    /// Every port from one value that implements them all (the sim).
    pub fn from_one<T: Logs + Compute + LoadBalancer + Dns + Images + 'static>(x: T) -> Self {
        Self::from_shared(Arc::new(x))
    }

    /// Every port from one shared value, which the caller may keep for
    /// other ports (the AWS adapter's `Metrics`, for sleep).
    pub fn from_shared<T: Logs + Compute + LoadBalancer + Dns + Images + 'static>(
        x: Arc<T>,
    ) -> Self {
        Cloud {
            logs: x.clone(),
            compute: x.clone(),
            load_balancer: x.clone(),
            dns: x.clone(),
            images: x,
            pacer: None,
        }
    }

    /// Every service whose name starts with `prefix`: ListServices, then
    /// DescribeServices ten at a time.
    pub async fn services_named(&self, prefix: &str) -> CloudResult<Vec<ObservedService>> {
        let names: Vec<String> = self
            .compute
            .service_names()
            .await?
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect();
        self.compute.services(&names).await
    }

    /// Every service whose name starts with one of `prefixes`: one
    /// ListServices for them all, then DescribeServices ten at a time.
    pub async fn services_under(&self, prefixes: &[String]) -> CloudResult<Vec<ObservedService>> {
        let names: Vec<String> = self
            .compute
            .service_names()
            .await?
            .into_iter()
            .filter(|n| previewd_core::projects::under_any(n, prefixes))
            .collect();
        self.compute.services(&names).await
    }

    /// Records that the ports pace their requests with `pacer`.
    pub fn paced_by(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }
}

/// A wall clock: what the controller reads for "now" (see
/// [`ControllerConfig::clock`]).
pub type Clock = fn() -> previewd_core::Timestamp;

/// Reconciles running at once by default. A pass mostly waits, on AWS and
/// on the pacer (up to `MAX_PACED_WAIT` a request), rather than computing,
/// so this bounds leases and connections, not AWS load: the pacer bounds
/// that. With few workers a burst of first passes, each holding its worker
/// while the pacer queues its calls, makes a dispatch that arrives after
/// the burst wait for a worker: at 16, a dispatch two seconds after a
/// burst of 100 waited 18 s for its first call. With a worker free it
/// waits at most one observation and one pacer wait. Idle workers cost
/// nothing; a pass that runs longer than a quarter lease renews it.
pub const DEFAULT_WORKERS: usize = 128;

/// Timing and concurrency of the loop.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Distinguishes replicas in leases; unique per process.
    pub replica_id: String,
    /// Reconciles running at once (see [`DEFAULT_WORKERS`]).
    pub workers: usize,
    /// How long a claimed row stays ours unless renewed; a running pass
    /// renews it every quarter of this (see `runner`'s guarantees), so a
    /// dead replica's rows are free again after at most this long.
    pub lease: Duration,
    /// Upper bound of one reconcile pass (it may outlast `lease`: the
    /// lease is renewed meanwhile).
    pub reconcile_timeout: Duration,
    /// On shutdown, how long passes under way may take to finish before
    /// they are abandoned and their leases released for other replicas.
    pub shutdown_grace: Duration,
    /// When to look at a preview again: the intervals and the backoff of
    /// the decision (`previewd_core::decide`).
    pub policy: Policy,
    /// Sleep at most this long between looks at the store (fallback to
    /// wake-ups, and what other replicas' writes wait for without NOTIFY).
    pub poll_interval: Duration,
    /// How old a cached AWS listing may be for a pass that changes nothing.
    pub cache_max_age: Duration,
    /// The least time between two fetches of one shared listing while the
    /// pacer says its buckets run low (always, without a pacer): passes
    /// that need a fresh one meanwhile wait and share the next.
    pub listing_min_interval: Duration,
    /// How long the tags of an ELB rule or target group, kept by ARN, are
    /// trusted before a listing reads them again (changes never trust them).
    pub elb_tags_max_age: Duration,
    /// How long DNS changes of several previews are gathered into one batch.
    pub dns_batch_window: Duration,
    /// The wall clock the loop schedules by, stamps its writes with and
    /// the idle check judges idleness by: `chrono::Utc::now` (`serve`).
    /// A benchmark gives a clock derived from tokio's paused time, so 72
    /// simulated hours run in minutes with these same decisions.
    pub clock: Clock,
    /// `github.pr_comment`: every report also owes the pull request's
    /// sticky comment (`previewd_core::pr_comment`).
    pub pr_comment: bool,
    /// The waker target group of each load balancer
    /// (`sleep.waker_target_groups`), when sleep is on: a sleeping
    /// preview's rule forwards to its own listener's. A listener whose
    /// load balancer has none keeps its previews awake; empty: none sleeps.
    pub wakers: previewd_core::sleep::Wakers,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            replica_id: format!("replica-{}", std::process::id()),
            workers: DEFAULT_WORKERS,
            // As Kubernetes leader election does: a short lease renewed
            // every quarter of it, so a dead replica's rows are another's
            // within seconds (issue 15). Renewals run only during passes,
            // and only passes longer than a quarter lease make any.
            lease: Duration::from_secs(15),
            reconcile_timeout: Duration::from_secs(90),
            shutdown_grace: Duration::from_secs(20),
            policy: Policy::default(),
            poll_interval: Duration::from_secs(10),
            cache_max_age: Duration::from_secs(60),
            listing_min_interval: Duration::from_secs(2),
            elb_tags_max_age: Duration::from_secs(600),
            dns_batch_window: Duration::from_millis(200),
            clock: chrono::Utc::now,
            pr_comment: false,
            wakers: previewd_core::sleep::Wakers::default(),
        }
    }
}

/// A backoff's random factor: core reads no random source, so the
/// controller draws it, uniformly in [0.5, 1.0].
pub(crate) fn jitter() -> Jitter {
    use rand::Rng;
    Jitter::new(rand::rng().random_range(0.5..=1.0))
}

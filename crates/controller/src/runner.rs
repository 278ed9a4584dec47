//! The loop: claim due rows, run bounded reconciles, sleep until the next
//! row is due or a write wakes us.
//!
//! # Guarantees
//! - A key is never reconciled twice at once: a worker holds the row's
//!   lease for the whole pass, renewing it every `lease / 4`, and
//!   `record_status` releases it.
//! - At most `workers` reconciles run at once.
//! - A pass makes no AWS call once its lease may have run out: it stops at
//!   `last successful renewal (or claim) + 3/4 lease`, by the local clock
//!   read before the renewal was sent; and the moment a renewal answers
//!   `LeaseLost` it is dropped without writing anything. AWS offers no
//!   fencing token: this bound (and clocks that agree to within a quarter
//!   of the lease) is what keeps two replicas from acting on one key.
//! - A pass ends by `claim time + reconcile_timeout` whatever the lease.
//! - On cancellation (SIGTERM) no new work is claimed; passes under way get
//!   `shutdown_grace` to finish and write their status; the rest are
//!   dropped and their leases released, so another replica takes those
//!   rows at once instead of after the lease runs out.
//!
//! # Caveats
//! If the process dies mid-pass the lease stays until it expires; the row
//! is then claimed again and the next pass repairs whatever half-done work
//! it finds. A dropped pass's last AWS call may still complete; DNS changes
//! already handed to the batcher are still sent.

use crate::Reconciler;
use crate::observe::ReadService;
use previewd_core::decide::{Outcome, Stop, cached_look_age};
use previewd_core::key::PreviewKey;
use previewd_core::model::{Desired, Phase, Preview};
use previewd_core::ports::StoreError;
use previewd_core::render::render;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Controller {
    reconciler: Arc<Reconciler>,
    /// The store's wake-ups ([`previewd_core::ports::Store::wakeups`]):
    /// notified after a write made a row due.
    wake: Arc<Notify>,
}

/// The shortest sleep between looks at the store, so a row that is due but
/// leased elsewhere does not make the loop spin.
const MIN_SLEEP: Duration = Duration::from_millis(20);

impl Controller {
    /// The loop over `reconciler`'s store, woken by that store's writes.
    pub fn new(reconciler: Arc<Reconciler>) -> Self {
        let wake = reconciler.store.wakeups();
        Self { reconciler, wake }
    }

    /// Runs until `cancel` fires, then drains the passes under way within
    /// `shutdown_grace` and releases the leases of those still running.
    pub async fn run(self, cancel: CancellationToken) {
        let cfg = &self.reconciler.config;
        let mut running: JoinSet<()> = JoinSet::new();
        // Fired when the grace is over: every pass still running gives up.
        let abandon = CancellationToken::new();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let free = cfg.workers.saturating_sub(running.len());
            if free > 0 {
                // Taken before the claim, so a pass's deadline and lease
                // fence count from before its lease began, even if its
                // worker starts late.
                let claimed_at = Instant::now();
                match self.claim(free).await {
                    Ok(batch) => {
                        self.spawn_batch(batch, claimed_at, &abandon, &mut running)
                            .await
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming due previews failed"),
                }
            }
            let sleep = self.sleep_time().await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!(
            in_flight = running.len(),
            grace = ?cfg.shutdown_grace,
            "controller stopping; draining reconciles"
        );
        let drain = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(cfg.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = running.len(),
                "shutdown grace over; releasing the leases of unfinished reconciles"
            );
            abandon.cancel();
            while running.join_next().await.is_some() {}
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Preview>, previewd_core::ports::StoreError> {
        let cfg = &self.reconciler.config;
        let store = &self.reconciler.store;
        store
            .claim_due(&cfg.replica_id, (cfg.clock)(), cfg.lease, limit as i64)
            .await
    }

    async fn sleep_time(&self) -> Duration {
        let cfg = &self.reconciler.config;
        match self.reconciler.store.next_due().await {
            Ok(Some(at)) => (at - (cfg.clock)())
                .to_std()
                .unwrap_or_default()
                .clamp(MIN_SLEEP, cfg.poll_interval),
            Ok(None) => cfg.poll_interval,
            Err(e) => {
                tracing::warn!(error = %e, "reading the schedule failed");
                cfg.poll_interval
            }
        }
    }

    /// Finds the services of the whole batch in one go, then starts one
    /// pass per preview. A resync of a Ready preview reads the shared
    /// listing of all services (at most `cache_max_age` old when it fell
    /// due); a preview on
    /// its way somewhere is described afresh, ten per AWS call.
    async fn spawn_batch(
        &self,
        batch: Vec<Preview>,
        claimed_at: Instant,
        abandon: &CancellationToken,
        running: &mut JoinSet<()>,
    ) {
        if batch.is_empty() {
            return;
        }
        let r = &self.reconciler;
        // A preview of a project with no template gets no service name; its
        // pass says why (`Reconciler::template_for`).
        let names: Vec<String> = batch
            .iter()
            .map(|p| {
                r.template_for(p)
                    .map(|t| render(t, p).names.service)
                    .unwrap_or_default()
            })
            .collect();
        let steady: Vec<bool> = batch.iter().map(is_steady).collect();
        // The strictest age of the steady rows' (the latest due): one
        // listing serves them all (`decide::cached_look_age`).
        let now = (r.config.clock)();
        let age = batch
            .iter()
            .zip(&steady)
            .filter(|(_, s)| **s)
            .map(|(p, _)| {
                cached_look_age(
                    p,
                    now,
                    r.config.cache_max_age,
                    r.config.policy.resync_interval,
                )
            })
            .min();
        let listed = if let Some(age) = age {
            match r.observer.cached_services(age).await {
                Ok(all) => Some(all),
                Err(e) => {
                    tracing::debug!(error = %e, "listing services failed");
                    None
                }
            }
        } else {
            None
        };
        let fresh: Vec<String> = names
            .iter()
            .zip(&steady)
            .filter(|(_, s)| !**s || listed.is_none())
            // No name: a preview of an unconfigured project, not described.
            .filter(|(n, _)| !n.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        let described_at = Instant::now();
        let described: Option<HashMap<String, _>> = if fresh.is_empty() {
            Some(HashMap::new())
        } else {
            match r.observer.services(&fresh).await {
                Ok(found) => Some(found.into_iter().map(|s| (s.name.clone(), s)).collect()),
                // Each pass will describe its own service instead.
                Err(e) => {
                    tracing::debug!(error = %e, "batched DescribeServices failed");
                    None
                }
            }
        };
        for ((p, name), steady) in batch.into_iter().zip(names).zip(steady) {
            let service = match (&listed, steady) {
                (Some((at, all)), true) => Some(ReadService {
                    service: all.get(&name).cloned(),
                    at: *at,
                }),
                _ => described.as_ref().map(|m| ReadService {
                    service: m.get(&name).cloned(),
                    at: described_at,
                }),
            };
            let r = self.reconciler.clone();
            let abandon = abandon.clone();
            running.spawn(async move { run_one(&r, p, service, claimed_at, abandon).await });
        }
    }
}

/// A Ready preview at its generation: this pass is a resync that most
/// likely confirms the steady state.
fn is_steady(p: &Preview) -> bool {
    p.desired == Desired::Present && p.is_ready_at_generation()
}

/// One bounded pass and the write of its result, in a span that carries
/// the preview's identity.
async fn run_one(
    r: &Reconciler,
    p: Preview,
    service: Option<ReadService>,
    claimed_at: Instant,
    abandon: CancellationToken,
) {
    let span = tracing::info_span!("reconcile", project = %p.key.project, branch = %p.key.branch, generation = p.generation);
    pass_and_record(r, p, service, claimed_at, abandon)
        .instrument(span)
        .await
}

/// How a pass ended.
enum Ended {
    /// It ran to the end: a status is to be decided from its outcome.
    Done(Box<Outcome>),
    /// It was stopped (timeout, lease no longer renewable); record why.
    Stopped(Stop),
    /// Another replica holds the row now: write nothing.
    LeaseLost,
    /// Shutdown: give the row back untouched.
    Abandoned,
}

/// claim (the loop, before this) → observe → plan → execute (`attempt`)
/// → decide → record.
async fn pass_and_record(
    r: &Reconciler,
    p: Preview,
    service: Option<ReadService>,
    claimed_at: Instant,
    abandon: CancellationToken,
) {
    let cfg = &r.config;
    // Measured from the claim, not from when this task got a thread.
    let deadline = claimed_at + cfg.reconcile_timeout;
    let started = tokio::time::Instant::now();
    // Whichever ends first wins; the others are dropped at their next
    // await, so the pass makes no further call.
    let ended = tokio::select! {
        biased;
        _ = abandon.cancelled() => Ended::Abandoned,
        end = hold_lease(r, &p.key, claimed_at) => end,
        done = tokio::time::timeout_at(deadline, r.attempt(&p, service, claimed_at)) => match done {
            Ok(outcome) => Ended::Done(Box::new(outcome)),
            Err(_) => Ended::Stopped(Stop::Timeout(cfg.reconcile_timeout)),
        },
    };
    let outcome = match ended {
        Ended::Done(outcome) => *outcome,
        Ended::Stopped(stop) => Outcome::Stopped(stop),
        Ended::LeaseLost => {
            tracing::warn!(key = %p.key, "lease lost to another replica; pass abandoned");
            return;
        }
        Ended::Abandoned => {
            match r.store.release_lease(&p.key, &cfg.replica_id).await {
                Ok(()) => {
                    tracing::info!(key = %p.key, "shutting down: pass abandoned, lease released")
                }
                Err(e) => {
                    tracing::warn!(key = %p.key, error = %e, "shutting down: releasing the lease failed; it expires by itself")
                }
            }
            return;
        }
    };
    let update = r.decide(&p, &outcome);
    // A pass stopped by its deadline or its lease counts as a timeout.
    let result = if matches!(outcome, Outcome::Stopped(_)) {
        crate::metrics::names::ReconcileResult::Timeout
    } else {
        crate::metrics::reconcile_result(&update)
    };
    let message = update.status.message.as_deref().unwrap_or("");
    tracing::info!(key = %p.key, phase = %update.status.phase, message, "reconciled");
    let recorded = r
        .store
        .record_status(&p.key, &cfg.replica_id, &update, (cfg.clock)())
        .await;
    crate::metrics::reconciled(result, started.elapsed());
    if recorded.is_ok()
        && p.status.phase == Phase::Sleeping
        && update.status.phase == Phase::Ready
        && let Some(woken) = p.sleep_changed_at
    {
        let took = ((cfg.clock)() - woken).to_std().unwrap_or_default();
        crate::metrics::awake_again(took);
    }
    match recorded {
        Ok(()) if !update.outbox.is_empty() => r.reported.notify_one(),
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(key = %p.key, error = %e, "recording status failed; the lease will expire and the row be retried")
        }
    }
}

/// Keeps the row's lease alive while its pass runs. Never returns while
/// the lease is safely ours; returns the moment the pass must stop.
async fn hold_lease(r: &Reconciler, key: &PreviewKey, claimed_at: Instant) -> Ended {
    let cfg = &r.config;
    let every = cfg.lease / 4;
    // A quarter of the lease is kept back for clocks that disagree.
    let trusted = cfg.lease - cfg.lease / 4;
    let mut fence = claimed_at + trusted;
    let mut next = claimed_at + every;
    loop {
        if next >= fence {
            return stopped_unrenewed(cfg.lease);
        }
        tokio::time::sleep_until(next).await;
        // Read before the request: the stored lease runs from later still.
        let sent = Instant::now();
        let until = (cfg.clock)() + cfg.lease;
        match tokio::time::timeout_at(fence, r.store.renew_lease(key, &cfg.replica_id, until)).await
        {
            Ok(Ok(())) => {
                fence = sent + trusted;
                next = sent + every;
            }
            Ok(Err(StoreError::LeaseLost(_))) => return Ended::LeaseLost,
            Ok(Err(e)) => {
                tracing::warn!(%key, error = %e, "renewing the lease failed; retrying");
                next = Instant::now() + every / 4;
            }
            Err(_) => return stopped_unrenewed(cfg.lease),
        }
    }
}

fn stopped_unrenewed(lease: Duration) -> Ended {
    Ended::Stopped(Stop::LeaseNotRenewed(lease))
}

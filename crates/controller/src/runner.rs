//! The loop: claim due rows, run bounded reconciles, sleep until the next
//! row is due or a write wakes us.
//!
//! # Guarantees
//! - A key is never reconciled twice at once: a worker holds the row's
//!   lease for the whole pass and `record_status` releases it.
//! - At most `workers` reconciles run at once.
//! - On cancellation no new work is claimed; passes under way finish (each
//!   is bounded by `reconcile_timeout`) and write their status.
//! - A pass makes no AWS call after `claim time + reconcile_timeout`, which
//!   must be well inside the lease, so two replicas never act on one key at
//!   once. AWS offers no fencing token: this bound (and clocks that agree to
//!   within the margin `lease - reconcile_timeout`) is what keeps them apart.
//!
//! # Caveats
//! If the process dies mid-pass the lease stays until it expires; the row
//! is then claimed again and the next pass repairs whatever half-done work
//! it finds.

use crate::Reconciler;
use crate::execute::ExecuteError;
use crate::status::{Outcome, next_status};
use previewd_core::CloudError;
use previewd_core::model::{Desired, Phase, Preview};
use previewd_core::observed::ObservedService;
use previewd_core::render::render;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Controller {
    reconciler: Arc<Reconciler>,
    /// Notified by every write to the previews table in this process.
    wake: Arc<Notify>,
}

/// The shortest sleep between looks at the store, so a row that is due but
/// leased elsewhere does not make the loop spin.
const MIN_SLEEP: Duration = Duration::from_millis(20);

impl Controller {
    pub fn new(reconciler: Arc<Reconciler>, wake: Arc<Notify>) -> Self {
        Self { reconciler, wake }
    }

    /// Runs until `cancel` fires, then drains the passes under way.
    pub async fn run(self, cancel: CancellationToken) {
        let cfg = &self.reconciler.config;
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let free = cfg.workers.saturating_sub(running.len());
            if free > 0 {
                // Taken before the claim, so every pass's deadline falls
                // within its lease even if workers start late.
                let claimed_at = tokio::time::Instant::now();
                match self.claim(free).await {
                    Ok(batch) => self.spawn_batch(batch, claimed_at, &mut running).await,
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
            "controller stopping; draining reconciles"
        );
        while running.join_next().await.is_some() {}
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Preview>, previewd_core::ports::StoreError> {
        let cfg = &self.reconciler.config;
        let store = &self.reconciler.store;
        store
            .claim_due(&cfg.replica_id, chrono::Utc::now(), cfg.lease, limit as i64)
            .await
    }

    async fn sleep_time(&self) -> Duration {
        let cfg = &self.reconciler.config;
        match self.reconciler.store.next_due().await {
            Ok(Some(at)) => (at - chrono::Utc::now())
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
    /// listing of all services (at most `cache_max_age` old); a preview on
    /// its way somewhere is described afresh, ten per AWS call.
    async fn spawn_batch(
        &self,
        batch: Vec<Preview>,
        claimed_at: tokio::time::Instant,
        running: &mut JoinSet<()>,
    ) {
        if batch.is_empty() {
            return;
        }
        let r = &self.reconciler;
        let names: Vec<String> = batch
            .iter()
            .map(|p| render(&r.template, p).names.service)
            .collect();
        let steady: Vec<bool> = batch.iter().map(is_steady).collect();
        let listed = if steady.contains(&true) {
            match r.observer.cached_services().await {
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
            .map(|(n, _)| n.clone())
            .collect();
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
                (Some(all), true) => Some(all.get(&name).cloned()),
                _ => described.as_ref().map(|m| m.get(&name).cloned()),
            };
            let r = self.reconciler.clone();
            running.spawn(async move { run_one(&r, p, service, claimed_at).await });
        }
    }
}

/// A Ready preview at its generation: this pass is a resync that most
/// likely confirms the steady state.
fn is_steady(p: &Preview) -> bool {
    p.desired == Desired::Present
        && p.status.phase == Phase::Ready
        && p.status.observed_generation == p.generation
}

/// One bounded pass and the write of its result, in a span that carries
/// the preview's identity.
async fn run_one(
    r: &Reconciler,
    p: Preview,
    service: Option<Option<ObservedService>>,
    claimed_at: tokio::time::Instant,
) {
    let span = tracing::info_span!("reconcile", project = %p.key.project, branch = %p.key.branch, generation = p.generation);
    pass_and_record(r, p, service, claimed_at)
        .instrument(span)
        .await
}

async fn pass_and_record(
    r: &Reconciler,
    p: Preview,
    service: Option<Option<ObservedService>>,
    claimed_at: tokio::time::Instant,
) {
    let cfg = &r.config;
    // Measured from the claim, not from when this task got a thread: no AWS
    // call of this pass can happen after its lease has run out.
    let deadline = claimed_at + cfg.reconcile_timeout;
    let update = match tokio::time::timeout_at(deadline, r.reconcile(&p, service)).await {
        Ok(update) => update,
        Err(_) => {
            let message = format!("reconcile took longer than {:?}", cfg.reconcile_timeout);
            let timeout = CloudError::Transient {
                code: "Timeout".into(),
                message,
            };
            let outcome = Outcome::Error(ExecuteError::Cloud {
                step: "Reconcile",
                source: timeout,
            });
            next_status(
                &p,
                &outcome,
                &render(&r.template, &p).url,
                cfg,
                chrono::Utc::now(),
            )
        }
    };
    let message = update.status.message.as_deref().unwrap_or("");
    tracing::info!(key = %p.key, phase = %update.status.phase, message, "reconciled");
    match r
        .store
        .record_status(&p.key, &cfg.replica_id, &update, chrono::Utc::now())
        .await
    {
        Ok(()) if !update.outbox.is_empty() => r.reported.notify_one(),
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(key = %p.key, error = %e, "recording status failed; the lease will expire and the row be retried")
        }
    }
}

//! Recording the controller's metrics. The names and label values are
//! `previewd_core::metrics`'s; this module only knows how to record them
//! through the `metrics` facade (a no-op until a recorder is installed).

use previewd_core::ErrorClass;
use previewd_core::metrics::*;
use previewd_core::model::{Phase, StatusUpdate};
use previewd_core::ports::ReportError;
use std::time::Duration;

pub use previewd_core::metrics as names;

/// The `result` label of a finished pass, read from the status it wrote.
pub fn reconcile_result(update: &StatusUpdate) -> ReconcileResult {
    match &update.status.last_error {
        None => ReconcileResult::Ok,
        Some(e) if e.class == ErrorClass::Retryable => ReconcileResult::RetryableError,
        Some(_) => ReconcileResult::TerminalError,
    }
}

/// One reconcile pass: its result and how long it took.
pub fn reconciled(result: ReconcileResult, took: Duration) {
    metrics::counter!(RECONCILES, "result" => result.as_str()).increment(1);
    metrics::histogram!(RECONCILE_DURATION).record(took.as_secs_f64());
}

/// One delivery attempt to `target`.
pub fn delivered<T>(target: DeliveryTarget, result: &Result<T, ReportError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) if e.retryable => "retry",
        Err(_) => "refused",
    };
    metrics::counter!(DELIVERIES, "target" => target.as_str(), "outcome" => outcome).increment(1);
}

/// A resource garbage collection deleted.
pub fn swept(kind: &previewd_core::gc::ResourceKind) {
    metrics::counter!(SWEEP_DELETIONS, "kind" => kind.to_string()).increment(1);
}

/// Previews garbage collection marked absent for their TTL.
pub fn expired(n: usize) {
    metrics::counter!(SWEEP_EXPIRED).increment(n as u64);
}

/// The table-derived gauges, as of one look at the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableGauges {
    /// Rows due and not held by a live lease.
    pub queue_depth: u64,
    /// Previews per phase, in `Phase::ALL` order.
    pub by_phase: [u64; 6],
    pub outbox_backlog: i64,
    pub outbox_oldest_age: Duration,
}

impl TableGauges {
    /// Counts `rows` as of `now`.
    pub fn count(
        rows: &[previewd_core::model::Preview],
        outbox: (i64, Option<previewd_core::Timestamp>),
        now: previewd_core::Timestamp,
    ) -> Self {
        let mut g = TableGauges {
            outbox_backlog: outbox.0,
            outbox_oldest_age: outbox
                .1
                .and_then(|t| (now - t).to_std().ok())
                .unwrap_or_default(),
            ..Default::default()
        };
        for p in rows {
            let leased = p.lease_owner.is_some() && p.lease_until.is_some_and(|u| u >= now);
            if p.next_reconcile_at <= now && !leased {
                g.queue_depth += 1;
            }
            if let Some(i) = Phase::ALL.iter().position(|ph| *ph == p.status.phase) {
                g.by_phase[i] += 1;
            }
        }
        g
    }

    /// Sets every gauge, zeros included, so a phase that empties reads 0
    /// rather than its last value.
    pub fn set(&self) {
        metrics::gauge!(QUEUE_DEPTH).set(self.queue_depth as f64);
        for (phase, n) in Phase::ALL.iter().zip(self.by_phase) {
            metrics::gauge!(PREVIEWS, "phase" => phase.as_str()).set(n as f64);
        }
        metrics::gauge!(OUTBOX_BACKLOG).set(self.outbox_backlog as f64);
        metrics::gauge!(OUTBOX_OLDEST_AGE).set(self.outbox_oldest_age.as_secs_f64());
    }
}

/// Reads the table and sets the gauges; run just before each scrape.
pub async fn refresh_table_gauges(
    store: &dyn previewd_core::ports::Store,
) -> Result<TableGauges, previewd_core::ports::StoreError> {
    let rows = store
        .list(&previewd_core::model::ListFilter::default())
        .await?;
    let outbox = store.outbox_backlog().await?;
    let g = TableGauges::count(&rows, outbox, chrono::Utc::now());
    g.set();
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use previewd_core::key::PreviewKey;
    use previewd_core::model::{Preview, PreviewSpec};

    fn row(branch: &str, phase: Phase, now: previewd_core::Timestamp) -> Preview {
        let key = PreviewKey::new("acme/shop", branch).unwrap();
        let mut p = Preview::fresh(key, branch, branch, PreviewSpec::default(), now);
        p.status.phase = phase;
        p
    }

    #[test]
    fn queue_depth_counts_due_rows_nobody_holds() {
        let now = chrono::Utc::now();
        let due = row("a", Phase::Pending, now);
        let mut held = row("b", Phase::Provisioning, now);
        held.lease_owner = Some("r1".into());
        held.lease_until = Some(now + chrono::Duration::seconds(30));
        let mut expired = row("c", Phase::Provisioning, now);
        expired.lease_owner = Some("r2".into());
        expired.lease_until = Some(now - chrono::Duration::seconds(1));
        let mut later = row("d", Phase::Ready, now);
        later.next_reconcile_at = now + chrono::Duration::seconds(60);
        let g = TableGauges::count(&[due, held, expired, later], (0, None), now);
        assert_eq!(g.queue_depth, 2);
        assert_eq!(g.by_phase, [1, 2, 1, 0, 0, 0]);
    }

    #[test]
    fn the_oldest_outbox_age_is_measured_from_now() {
        let now = chrono::Utc::now();
        let g = TableGauges::count(&[], (3, Some(now - chrono::Duration::seconds(90))), now);
        assert_eq!(
            (g.outbox_backlog, g.outbox_oldest_age),
            (3, Duration::from_secs(90))
        );
    }
}

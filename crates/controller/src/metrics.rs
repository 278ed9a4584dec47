//! Recording the controller's metrics. The names and label values are
//! `previewd_core::metrics`'s; this module only knows how to record them
//! through the `metrics` facade (a no-op until a recorder is installed).

use previewd_core::ErrorClass;
use previewd_core::metrics::*;
use previewd_core::model::StatusUpdate;
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

/// Previews the idle check put to sleep.
pub fn slept(n: usize) {
    metrics::counter!(SLEEPS).increment(n as u64);
}

/// A woken preview serving again, `took` after the visit that woke it.
pub fn awake_again(took: Duration) {
    metrics::histogram!(WAKE_DURATION).record(took.as_secs_f64());
}

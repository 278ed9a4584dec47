//! Replicas share the account's rate limits by themselves: each beats in
//! the store, learns how many replicas are alive, and paces to its part of
//! `cloud.api_share_percent` ([`replica_share`]), so that together they
//! stay within it whatever their number. On SQLite there is only ever one.

use previewd_core::limits::{Limits, Pacer, replica_share};
use previewd_core::ports::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Beats every `every` until `cancel`; a replica not heard from for three
/// beats no longer counts. Until the first beat answers, and while beats
/// fail, the pacer keeps the share it has.
pub async fn share_rate_limits(
    store: Arc<dyn Store>,
    pacer: Arc<Pacer>,
    replica: String,
    total_percent: u32,
    every: Duration,
    cancel: CancellationToken,
) {
    let window = chrono::Duration::from_std(every * 3).unwrap_or(chrono::Duration::MAX);
    let mut replicas = 1;
    loop {
        let now = chrono::Utc::now();
        match store.heartbeat(&replica, now, now - window).await {
            Ok(n) if n != replicas => {
                let share = replica_share(total_percent, n);
                pacer.set_limits(
                    Limits::default().scaled(share),
                    tokio::time::Instant::now().into_std(),
                );
                tracing::info!(
                    replicas = n,
                    share_percent = share * 100.0,
                    "pacing to this replica's share of the account's rate limits"
                );
                replicas = n;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; keeping the current share"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

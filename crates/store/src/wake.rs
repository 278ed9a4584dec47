//! Replicas wake each other: PostgreSQL's `NOTIFY previewd_wake` (sent by
//! a trigger when a write makes a preview due sooner, see migration 0005)
//! turned into the controller's in-process wake-up.

use crate::Backend;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel the `previews_wake` trigger notifies.
pub const WAKE_CHANNEL: &str = "previewd_wake";

/// First wait before listening again after a failure; doubles up to
/// [`MAX_BACKOFF`]. Polling covers the gap, so there is no hurry.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Calls `wake.notify_one()` whenever any replica (this one included)
/// commits a write that makes work due, until `cancel` fires.
///
/// # Guarantees
/// - Listens on a connection of its own, opened from `url`, never one of
///   the store's pool: a listener parked in the pool would keep
///   `pool.close()` waiting forever.
/// - Survives a lost connection: it reconnects with backoff, and wakes the
///   loop once after every (re)connection, since notifications sent while
///   it was away are lost.
///
/// # Caveats
/// A wake-up is a hint, never the only path: the controller still polls, so
/// a notification lost to a broken connection only costs latency. On SQLite
/// (one replica, woken in-process) this returns at once.
pub async fn wake_on_writes(url: String, wake: Arc<Notify>, cancel: CancellationToken) {
    if !matches!(Backend::of(&url), Ok(Backend::Postgres)) {
        return;
    }
    let mut backoff = MIN_BACKOFF;
    loop {
        let subscribed = tokio::select! {
            _ = cancel.cancelled() => return,
            l = subscribe(&url) => l,
        };
        match subscribed {
            Ok(mut listener) => {
                tracing::debug!(
                    channel = WAKE_CHANNEL,
                    "listening for other replicas' writes"
                );
                backoff = MIN_BACKOFF;
                wake.notify_one();
                let error = tokio::select! {
                    _ = cancel.cancelled() => return,
                    e = relay(&mut listener, &wake) => e,
                };
                tracing::warn!(error = %error, "listening for other replicas' writes failed; polling until it is back");
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for other replicas' writes; polling until it works");
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(url: &str) -> Result<PgListener, sqlx::Error> {
    // `connect`, not `connect_with(pool)`: a dedicated connection (see above).
    let mut listener = PgListener::connect(url).await?;
    listener.listen(WAKE_CHANNEL).await?;
    Ok(listener)
}

/// Passes notifications on until the listener fails for good.
async fn relay(listener: &mut PgListener, wake: &Notify) -> sqlx::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => wake.notify_one(),
            // The connection dropped; the next `try_recv` reconnects and
            // listens again. What was sent meanwhile is lost: look anyway.
            Ok(None) => {
                tracing::debug!("wake-up connection lost; reconnecting");
                wake.notify_one();
            }
            Err(e) => return e,
        }
    }
}

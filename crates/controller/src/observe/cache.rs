//! One shared listing: fetched once for every pass that asks at about the
//! same time, kept for the passes that may use an older one, and fetched
//! no more often than its token buckets refill while they run low.

use previewd_core::ports::CloudResult;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// One shared listing, when its fetch began and how long it took.
pub(super) struct Cache<T> {
    slot: Mutex<Option<(Instant, Duration, Arc<T>)>>,
}

/// How a listing may be fetched now, by how full the pacer finds its buckets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pacing {
    /// The least time since the last fetch began.
    pub gap: Duration,
    /// Whether an expired listing will do for a pass that only confirms.
    pub stale_ok: bool,
}

impl<T> Cache<T> {
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }

    /// The cached value if its fetch began after `not_before` (or at all,
    /// when `pacing.stale_ok`), else a new fetch; with when the fetch of
    /// the value returned began. Under pressure it begins no sooner than
    /// `pacing.gap`, or as long as the last fetch took if longer, after the
    /// last one began: a listing whose pages waited for their tokens is not
    /// fetched again before the bucket has refilled as much, so its cost
    /// can never outgrow the bucket.
    /// Holding the lock across the fetch (and the wait before it) makes
    /// concurrent askers share the one fetch instead of each starting
    /// their own; the gap keeps a stream of passes that each want a fresh
    /// listing from spending a shared bucket (ELB's 10 requests/s for the
    /// whole account) on back-to-back fetches, writes starving behind them.
    pub async fn get<F, Fut>(
        &self,
        not_before: Instant,
        pacing: Pacing,
        fetch: F,
    ) -> CloudResult<(Instant, Arc<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CloudResult<T>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, _, v)) = slot.as_ref()
            && (*at >= not_before || pacing.stale_ok)
        {
            return Ok((*at, v.clone()));
        }
        if let Some((at, took, _)) = slot.as_ref()
            && !pacing.gap.is_zero()
        {
            tokio::time::sleep_until(*at + pacing.gap.max(*took)).await;
        }
        let started = Instant::now();
        let v = Arc::new(fetch().await?);
        *slot = Some((started, started.elapsed(), v.clone()));
        Ok((started, v))
    }
}

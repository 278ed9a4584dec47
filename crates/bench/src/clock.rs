//! Simulated wall time for the trace scenario: a fixed start plus the
//! time tokio's paused clock has advanced since [`start`]. The controller
//! (`ControllerConfig::clock`), the waker (`waker_app_at`) and the
//! scenario's own writes all read it, so the store's timestamps, the
//! loop's schedule and the idle check's judgement agree with the sim's
//! delays (which run on `tokio::time::Instant`).

use chrono::{TimeZone, Utc};
use previewd_core::Timestamp;
use std::sync::OnceLock;
use tokio::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Simulated time zero: a fixed date, so runs are alike.
pub fn epoch() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("a valid date")
}

/// Starts the clock at [`epoch`] now (once per process; later calls keep
/// the first start).
pub fn start() {
    START.get_or_init(Instant::now);
}

/// The simulated time now: [`epoch`] plus tokio's time since [`start`].
pub fn now() -> Timestamp {
    let since = START.get().map(|s| s.elapsed()).unwrap_or_default();
    epoch() + chrono::Duration::from_std(since).expect("within chrono's range")
}

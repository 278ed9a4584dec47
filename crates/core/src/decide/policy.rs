//! How long to wait before looking at a preview again: the intervals, the
//! backoff after failures, and the schedule a decision ends with.

use crate::model::Timestamp;
use chrono::Duration as ChronoDuration;
use std::time::Duration;

/// The intervals and backoff settings of the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Look again at a Ready preview this often (drift repair).
    pub resync_interval: Duration,
    /// Look again this soon while a preview is converging.
    pub progress_interval: Duration,
    /// Look again this soon while waiting for load-balancer capacity.
    pub waiting_interval: Duration,
    /// Look again this soon after a terminal failure (a person may fix IAM).
    pub failed_interval: Duration,
    /// First retry delay after a retryable error; doubles per attempt.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(300),
            progress_interval: Duration::from_secs(5),
            waiting_interval: Duration::from_secs(60),
            failed_interval: Duration::from_secs(600),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl Policy {
    /// The longest any decision waits: a Deleted row's four resyncs, a
    /// Ready row's slot (under one and a half resyncs), a failure's wait,
    /// or the backoff cap.
    pub fn longest_wait(&self) -> Duration {
        [
            self.resync_interval * 4,
            self.resync_interval * 3 / 2,
            self.progress_interval,
            self.waiting_interval,
            self.failed_interval,
            self.backoff_max,
        ]
        .into_iter()
        .max()
        .unwrap_or_default()
    }
}

/// The longest wait after a throttled call (the AWS SDKs' retry cap).
pub const THROTTLED_BACKOFF_MAX: Duration = Duration::from_secs(20);

/// When to look again at a pass whose request previewd's pacer turned
/// back, unsent, giving it a turn `free_in` away: then, and not after a
/// backoff. The pacer knows when its tokens are free and hands out turns
/// one refill apart; a pass that comes sooner is only turned back again,
/// and one that comes later leaves its turn to passes that asked later.
/// Capped at the pacer's furthest turn, and never zero, so the row is not
/// due again in the same instant.
pub fn paced_retry(free_in: Duration) -> Duration {
    free_in
        .min(crate::limits::MAX_PACED_TURN)
        .max(Duration::from_millis(1))
}

/// A random factor in [0.5, 1.0] that scales a backoff, drawn by the caller
/// (core reads no random source) so that keys failing together do not
/// retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter(f64);

impl Jitter {
    /// No jitter: the full delay.
    pub const NONE: Jitter = Jitter(1.0);

    /// `factor` clamped into [0.5, 1.0] (a NaN counts as 1.0).
    pub fn new(factor: f64) -> Self {
        if factor.is_nan() {
            return Self::NONE;
        }
        Jitter(factor.clamp(0.5, 1.0))
    }

    pub fn factor(self) -> f64 {
        self.0
    }
}

/// `base · 2^(attempts-1)`, capped at `max`, then scaled by `jitter`.
///
/// Hand-written rather than `backon`'s: `backon` (which DESIGN.md names for
/// retry loops) builds a stateful iterator of delays and draws its own
/// jitter, and its jitter adds to the delay instead of scaling it down; the
/// decision needs a pure "delay for attempt n" with the jitter passed in,
/// and today's timings kept exactly. (Nor is it a dependency of this
/// workspace yet.)
pub fn backoff_delay(attempts: i32, base: Duration, max: Duration, jitter: Jitter) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let raw = base.saturating_mul(1u32 << exp.min(20)).min(max);
    raw.mul_f64(jitter.factor())
}

/// When to look at the row again, in kube-runtime's manner. There is no
/// `await_change()`: the loop is level-triggered and every row is looked
/// at again some time (a Deleted one after four resync intervals), so a
/// write only makes it due sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Look again after this long.
    Requeue(Duration),
    /// A steady resync: at the first slot of the shared `interval` grid at
    /// least half an interval away (see [`resync_slot`]).
    Resync(Duration),
}

impl Action {
    pub fn requeue(after: Duration) -> Self {
        Action::Requeue(after)
    }

    pub fn resync(interval: Duration) -> Self {
        Action::Resync(interval)
    }

    /// The instant this action asks for, decided at `now`.
    pub fn due_at(&self, now: Timestamp) -> Timestamp {
        match *self {
            Action::Requeue(d) => after(now, d),
            Action::Resync(interval) => resync_slot(now, interval),
        }
    }
}

pub(super) fn after(now: Timestamp, d: Duration) -> Timestamp {
    now + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// When a Ready preview is looked at again: the first point of a grid of
/// `interval` steps (counted from the epoch, so every replica agrees) at
/// least half an interval from now. Ready previews thus resync together,
/// as an informer's periodic resync does, and one fetch of each shared
/// listing serves the whole round; left to drift apart, each preview's
/// resync would find the cache expired and pay for a fetch of its own.
pub fn resync_slot(now: Timestamp, interval: Duration) -> Timestamp {
    let step = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let earliest = after(now, interval / 2).timestamp_millis();
    let slot = earliest
        .div_euclid(step)
        .saturating_add(1)
        .saturating_mul(step);
    // `earliest` on the grid already is a slot; otherwise the next one.
    let slot = if earliest.rem_euclid(step) == 0 {
        earliest
    } else {
        slot
    };
    Timestamp::from_timestamp_millis(slot).unwrap_or_else(|| after(now, interval))
}

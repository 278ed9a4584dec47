//! What the outbox worker does with a report after one delivery attempt:
//! done, dropped, or tried again later (and when).

use crate::decide::{Jitter, backoff_delay};
use crate::model::Timestamp;
use crate::ports::ReportError;
use chrono::Duration as ChronoDuration;
use std::time::Duration;

/// The backoff of report deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry's delay; it doubles per attempt.
    pub base: Duration,
    pub max: Duration,
}

/// The next step for one outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterDelivery {
    /// Delivered: it leaves the outbox.
    Delivered,
    /// Refused for good (a 422, a callback host not allowed): retrying
    /// cannot help and would hold back the preview's later reports, so it
    /// leaves the outbox too.
    Dropped,
    /// Failed for now: deliver it again `wait` from now, at `at`.
    Retry { wait: Duration, at: Timestamp },
}

/// Decides after an attempt at `now`. `attempts` counts the earlier
/// failures of this message. A retry waits the backoff of its attempt, or
/// as long as the other side asked (GitHub's `retry-after`, a rate-limit
/// reset) when that is longer.
pub fn after_delivery(
    result: Result<(), &ReportError>,
    attempts: i32,
    policy: RetryPolicy,
    jitter: Jitter,
    now: Timestamp,
) -> AfterDelivery {
    match result {
        Ok(()) => AfterDelivery::Delivered,
        Err(e) if e.retryable => {
            let wait = backoff_delay(attempts + 1, policy.base, policy.max, jitter)
                .max(e.retry_after.unwrap_or_default());
            AfterDelivery::Retry {
                wait,
                at: now + ChronoDuration::from_std(wait).unwrap_or(ChronoDuration::MAX),
            }
        }
        Err(_) => AfterDelivery::Dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> Timestamp {
        Timestamp::from_timestamp(1_800_000_000, 0).expect("a valid instant")
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
        }
    }

    fn failure(retryable: bool, retry_after: Option<Duration>) -> ReportError {
        ReportError {
            retryable,
            retry_after,
            message: "nope".into(),
        }
    }

    #[test]
    fn github_asking_for_longer_than_the_backoff_wins() {
        let e = failure(true, Some(Duration::from_secs(60)));
        let got = after_delivery(Err(&e), 0, policy(), Jitter::NONE, now());
        assert_eq!(
            got,
            AfterDelivery::Retry {
                wait: Duration::from_secs(60),
                at: now() + ChronoDuration::seconds(60),
            }
        );
        let e = failure(true, Some(Duration::from_secs(1)));
        let got = after_delivery(Err(&e), 2, policy(), Jitter::NONE, now());
        assert!(
            matches!(got, AfterDelivery::Retry { wait, .. } if wait == Duration::from_secs(20))
        );
    }

    proptest! {
        #[test]
        fn a_delivery_is_kept_only_while_worth_retrying(
            retryable in any::<bool>(),
            retry_after in prop::option::of(0..100_000u64),
            attempts in 0..40i32,
            base in 1..60u64,
            max in 60..3_600u64,
            factor in 0.5..=1.0f64,
        ) {
            let p = RetryPolicy { base: Duration::from_secs(base), max: Duration::from_secs(max) };
            let asked = retry_after.map(Duration::from_secs);
            let e = failure(retryable, asked);
            let jitter = Jitter::new(factor);
            prop_assert_eq!(after_delivery(Ok(()), attempts, p, jitter, now()), AfterDelivery::Delivered);
            match after_delivery(Err(&e), attempts, p, jitter, now()) {
                AfterDelivery::Retry { wait, at } => {
                    prop_assert!(retryable);
                    let backoff = backoff_delay(attempts + 1, p.base, p.max, jitter);
                    prop_assert_eq!(wait, backoff.max(asked.unwrap_or_default()));
                    // Never sooner than asked; never later than the cap or the ask.
                    prop_assert!(wait >= asked.unwrap_or_default());
                    prop_assert!(wait <= p.max.max(asked.unwrap_or_default()));
                    prop_assert_eq!(at, now() + ChronoDuration::from_std(wait).unwrap());
                }
                AfterDelivery::Dropped => prop_assert!(!retryable),
                AfterDelivery::Delivered => prop_assert!(false, "a failure is never delivered"),
            }
        }

        #[test]
        fn later_attempts_never_wait_less(attempts in 0..40i32, base in 1..60u64) {
            let p = RetryPolicy { base: Duration::from_secs(base), max: Duration::from_secs(3_600) };
            let e = failure(true, None);
            let wait = |n| match after_delivery(Err(&e), n, p, Jitter::NONE, now()) {
                AfterDelivery::Retry { wait, .. } => wait,
                other => panic!("{other:?}"),
            };
            prop_assert!(wait(attempts + 1) >= wait(attempts));
        }
    }
}

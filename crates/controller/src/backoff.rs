//! Per-key exponential backoff with jitter.

use rand::Rng;
use std::time::Duration;

/// `base · 2^(attempts-1)`, capped at `max`, then scaled by a random factor
/// in [0.5, 1.0] so that keys failing together do not retry together.
pub fn backoff_delay(attempts: i32, base: Duration, max: Duration) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let raw = base.saturating_mul(1u32 << exp.min(20)).min(max);
    raw.mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_and_stays_under_the_cap() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempts in 1..40 {
            let d = backoff_delay(attempts, base, max);
            let ceiling = base.saturating_mul(1 << (attempts - 1).min(20)).min(max);
            assert!(d <= ceiling && d >= ceiling / 2, "{attempts}: {d:?}");
        }
    }
}

//! Exponential backoff with "equal jitter": the one rule the retry loops wait by (the
//! outbound HTTP client's retries, the agent's model turns). The wait before attempt
//! `next` (2 = the first retry) is `base * 2^(next-2)`, capped at `max`, then drawn
//! uniformly from its upper half, so concurrent callers spread out but never retry at once.

use std::time::Duration;

use rand::Rng;

/// `base * 2^(next - 2)`, capped at `max`: the wait before attempt `next`, before jitter.
pub fn exponential(base: Duration, max: Duration, next: u32) -> Duration {
    let exp = next.saturating_sub(2).min(30);
    base.saturating_mul(1u32 << exp).min(max)
}

/// `d` with equal jitter: uniformly within `[d/2, d]`.
pub fn with_equal_jitter(d: Duration) -> Duration {
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(if nanos == 0 { 0 } else { rand::rng().random_range(0..=nanos) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_its_upper_half() {
        let (base, max) = (Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(exponential(base, max, 1), base);
        assert_eq!(exponential(base, max, 2), base);
        assert_eq!(exponential(base, max, 3), Duration::from_millis(200));
        assert_eq!(exponential(base, max, 4), max);
        assert_eq!(exponential(base, max, u32::MAX), max);
        assert_eq!(exponential(Duration::from_secs(u64::MAX / 2), Duration::MAX, 40), Duration::MAX);
        for n in 2..8 {
            let d = exponential(base, max, n);
            let j = with_equal_jitter(d);
            assert!(j >= d / 2 && j <= d, "{j:?} of {d:?}");
        }
        assert_eq!(with_equal_jitter(Duration::ZERO), Duration::ZERO);
    }
}

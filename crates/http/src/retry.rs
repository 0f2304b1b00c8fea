//! Retry timing: exponential backoff with jitter, and `Retry-After` parsing.
//!
//! Retrying is only safe for idempotent requests; the decision of *whether* to retry lives
//! in [`crate::HttpClient::send_with_retry`], this module only decides *when*.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How often and how patiently to retry one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles with each further attempt.
    pub base_delay: Duration,
    /// Ceiling of the exponential delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited for inside one call. A server asking for longer gets
    /// its answer returned to the caller instead (who can defer, e.g. via the queue).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The exponential delay before attempt `next_attempt` (2 = first retry), before jitter
    /// (see [`rez_core::backoff`]).
    pub fn backoff(&self, next_attempt: u32) -> Duration {
        rez_core::backoff::exponential(self.base_delay, self.max_delay, next_attempt)
    }

    /// [`RetryPolicy::backoff`] with equal jitter: uniformly within `[d/2, d]`.
    pub fn backoff_with_jitter(&self, next_attempt: u32) -> Duration {
        rez_core::backoff::with_equal_jitter(self.backoff(next_attempt))
    }
}

/// Whether a response with this status is worth retrying (5xx and 429).
pub fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The `Retry-After` header as a delay from `now`: either delta-seconds or an HTTP date
/// (a date in the past means zero). `None` if absent or unparseable.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(RETRY_AFTER, HeaderValue::from_str(v).expect("value"));
        m
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after(&h("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(&h(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&h("Wed, 21 Oct 2015 07:28:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(&h("Wed, 21 Oct 2015 07:27:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&h("soon"), now), None);
        assert_eq!(parse_retry_after(&h("-5"), now), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(2), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(350));
        assert_eq!(p.backoff(60), Duration::from_millis(350));
        for n in 2..8 {
            let j = p.backoff_with_jitter(n);
            assert!(j >= p.backoff(n) / 2 && j <= p.backoff(n), "{j:?}");
        }
    }

    #[test]
    fn retryable_statuses() {
        assert!(is_retryable_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(!is_retryable_status(StatusCode::BAD_REQUEST));
        assert!(!is_retryable_status(StatusCode::OK));
    }
}

//! Bounded retries around any [`ModelClient`]: transient failures (rate limits, overload,
//! server errors, timeouts, broken connections) are tried again with exponential backoff
//! and jitter, or after the provider's `retry-after`; permanent ones come back at once.
//!
//! Three bounds: `max_attempts`; `max_retry_after` (a provider asking to wait longer gets
//! its error returned at once, so the caller can end or defer the run instead of holding
//! a worker); and an overall `deadline` across attempts and waits. Waiting uses tokio's
//! clock, so tests run it paused.

use std::time::Duration;

use rez_core::agent::model::{ModelClient, ModelError, ModelRequest, ModelResponse};
use tokio::time::Instant;

/// How patiently to retry one model turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles with each further one.
    pub base_delay: Duration,
    /// Ceiling of the exponential wait.
    pub max_delay: Duration,
    /// The longest `retry-after` honoured; a provider asking for more ends the retries.
    pub max_retry_after: Duration,
    /// All attempts and waits together; no wait starts that would end past it, and an
    /// attempt still running at the deadline is abandoned as a transient timeout.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 = the first retry) when the provider named none:
    /// exponential from `base_delay`, capped at `max_delay`, with equal jitter (see
    /// [`rez_core::backoff`]), so concurrent runs spread out.
    pub fn backoff(&self, next: u32) -> Duration {
        rez_core::backoff::with_equal_jitter(rez_core::backoff::exponential(self.base_delay, self.max_delay, next))
    }
}

/// Call `client` until it answers, fails permanently, or a bound is reached. Returns the
/// last result and the number of attempts made.
pub async fn complete_with_retries(
    client: &dyn ModelClient,
    request: &ModelRequest,
    policy: &RetryPolicy,
) -> (Result<ModelResponse, ModelError>, u32) {
    let deadline = Instant::now() + policy.deadline;
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1u32;
    loop {
        let result = match tokio::time::timeout_at(deadline, client.complete(request)).await {
            Ok(result) => result,
            Err(_) => Err(ModelError::transient(
                client.provider(),
                format!("no answer within the retry deadline of {} s", policy.deadline.as_secs_f64()),
            )),
        };
        let err = match result {
            Ok(response) => return (Ok(response), attempt),
            Err(e) => e,
        };
        if !err.is_transient() || attempt >= max_attempts {
            return (Err(err), attempt);
        }
        let wait = match err.retry_after {
            Some(asked) if asked > policy.max_retry_after => {
                tracing::info!(
                    provider = err.provider,
                    attempt,
                    retry_after_ms = asked.as_millis() as u64,
                    "model provider asks to wait longer than allowed; giving up"
                );
                return (Err(err), attempt);
            }
            Some(asked) => asked,
            None => policy.backoff(attempt + 1),
        };
        if Instant::now() + wait >= deadline {
            tracing::info!(provider = err.provider, attempt, "retry deadline reached; giving up");
            return (Err(err), attempt);
        }
        tracing::info!(provider = err.provider, status = err.status, attempt, max_attempts, wait_ms = wait.as_millis() as u64, error = %err, "retrying model call");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use rez_core::agent::model::{ContentBlock, StopReason, Usage};

    /// Answers from a script and notes when each call was made (paused clock).
    struct Scripted {
        answers: Mutex<VecDeque<Result<ModelResponse, ModelError>>>,
        calls: Mutex<Vec<Instant>>,
        hang: bool,
    }

    impl Scripted {
        fn new(answers: Vec<Result<ModelResponse, ModelError>>) -> Self {
            Self { answers: Mutex::new(answers.into()), calls: Mutex::new(Vec::new()), hang: false }
        }

        fn gaps(&self) -> Vec<Duration> {
            let calls = self.calls.lock().expect("lock");
            calls.windows(2).map(|w| w[1] - w[0]).collect()
        }
    }

    #[async_trait]
    impl ModelClient for Scripted {
        fn provider(&self) -> &'static str {
            "anthropic"
        }

        async fn complete(&self, _: &ModelRequest) -> Result<ModelResponse, ModelError> {
            self.calls.lock().expect("lock").push(Instant::now());
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.answers.lock().expect("lock").pop_front().unwrap_or_else(|| Ok(ok()))
        }
    }

    fn ok() -> ModelResponse {
        ModelResponse {
            content: vec![ContentBlock::Text { text: "done".into() }],
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
            model: "m".into(),
        }
    }

    fn transient(retry_after: Option<Duration>) -> Result<ModelResponse, ModelError> {
        Err(ModelError { status: Some(429), retry_after, ..ModelError::transient("anthropic", "rate limited") })
    }

    fn request() -> ModelRequest {
        ModelRequest { model: "m".into(), system: String::new(), messages: vec![], tools: vec![], max_tokens: 10 }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_then_success() {
        let client =
            Scripted::new(vec![transient(Some(Duration::from_secs(7))), transient(Some(Duration::from_millis(1500)))]);
        let (result, attempts) = complete_with_retries(&client, &request(), &RetryPolicy::default()).await;
        assert!(result.is_ok());
        assert_eq!(attempts, 3);
        assert_eq!(client.gaps(), vec![Duration::from_secs(7), Duration::from_millis(1500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_with_jitter_and_attempts_are_bounded() {
        let client = Scripted::new((0..10).map(|_| transient(None)).collect());
        let policy = RetryPolicy { base_delay: Duration::from_secs(2), ..RetryPolicy::default() };
        let (result, attempts) = complete_with_retries(&client, &request(), &policy).await;
        assert_eq!(result.expect_err("fails").status, Some(429));
        assert_eq!(attempts, 4);
        let gaps = client.gaps();
        assert_eq!(gaps.len(), 3);
        for (gap, full) in gaps.iter().zip([2u64, 4, 8]) {
            let full = Duration::from_secs(full);
            assert!(*gap >= full / 2 && *gap <= full, "{gap:?} for {full:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let client = Scripted::new(vec![Err(ModelError::permanent("anthropic", "bad key"))]);
        let (result, attempts) = complete_with_retries(&client, &request(), &RetryPolicy::default()).await;
        assert_eq!(result.expect_err("fails").message, "bad key");
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_cap_ends_the_retries_at_once() {
        let client = Scripted::new(vec![transient(Some(Duration::from_secs(61)))]);
        let started = Instant::now();
        let (result, attempts) = complete_with_retries(&client, &request(), &RetryPolicy::default()).await;
        assert_eq!(result.expect_err("fails").retry_after, Some(Duration::from_secs(61)));
        assert_eq!(attempts, 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_waits_and_hung_calls() {
        let client =
            Scripted::new(vec![transient(Some(Duration::from_secs(50))), transient(Some(Duration::from_secs(50)))]);
        let policy = RetryPolicy { deadline: Duration::from_secs(80), ..RetryPolicy::default() };
        let (result, attempts) = complete_with_retries(&client, &request(), &policy).await;
        assert!(result.is_err());
        assert_eq!(attempts, 2, "the second 50 s wait would end past the deadline");

        let hung = Scripted { hang: true, ..Scripted::new(vec![]) };
        let started = Instant::now();
        let (result, attempts) = complete_with_retries(&hung, &request(), &policy).await;
        let err = result.expect_err("deadline");
        assert!(err.is_transient() && err.message.contains("deadline"), "{}", err.message);
        assert_eq!((attempts, started.elapsed()), (1, Duration::from_secs(80)));
    }
}

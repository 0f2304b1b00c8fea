//! Bounded retries of model calls. Rate limits (429), overload (529) and server errors
//! are retried with exponential backoff and jitter, honouring the provider's
//! `retry-after` up to a cap; a permanent error (a refused key, an unknown model) is
//! returned at once, and nothing waits past the run's deadline.

use std::time::Duration;

use rez_core::agent::{ModelClient, ModelError, ModelRequest, ModelResponse};
use tokio::time::Instant;

/// How model calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; doubled per attempt, with up to 50 % jitter added.
    pub base: Duration,
    /// The longest backoff, and the longest `retry-after` honoured: a provider asking for
    /// more is not waited for (the error is returned, and the delivery retried later).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, base: Duration::from_millis(500), max_wait: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let jitter = exp.mul_f64(rand::random::<f64>() * 0.5);
        (exp + jitter).min(self.max_wait)
    }
}

/// Call `model` until it answers, a permanent error, the attempts run out or `deadline`;
/// answers the result and the number of attempts made.
pub async fn complete_with_retries(
    model: &dyn ModelClient,
    request: &ModelRequest,
    policy: &RetryPolicy,
    deadline: Instant,
) -> (Result<ModelResponse, ModelError>, u32) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(remaining, model.complete(request)).await {
            Ok(r) => r,
            Err(_) => {
                Err(ModelError::transient(model.provider(), "the run's time ran out while waiting for the model"))
            }
        };
        let error = match result {
            Ok(response) => return (Ok(response), attempt),
            Err(e) if !e.is_transient() || attempt >= policy.max_attempts => return (Err(e), attempt),
            Err(e) => e,
        };
        if error.retry_after.is_some_and(|after| after > policy.max_wait) {
            return (Err(error), attempt);
        }
        let wait = policy.backoff(attempt, error.retry_after);
        if Instant::now() + wait >= deadline {
            return (Err(error), attempt);
        }
        tracing::info!(
            provider = model.provider(),
            status = error.status,
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %error.message,
            "model call failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use rez_core::agent::model::ModelErrorKind;
    use rez_core::agent::{StopReason, Usage};

    use super::*;

    /// Answers from a list, recording when each call came.
    struct Scripted {
        answers: Mutex<VecDeque<Result<ModelResponse, ModelError>>>,
        calls: Mutex<Vec<Instant>>,
    }

    #[async_trait]
    impl ModelClient for Scripted {
        fn provider(&self) -> &'static str {
            "test"
        }
        async fn complete(&self, _: &ModelRequest) -> Result<ModelResponse, ModelError> {
            self.calls.lock().unwrap().push(Instant::now());
            self.answers.lock().unwrap().pop_front().unwrap_or_else(|| Ok(ok()))
        }
    }

    fn ok() -> ModelResponse {
        ModelResponse { content: vec![], stop_reason: StopReason::EndTurn, usage: Usage::default(), model: "m".into() }
    }

    fn err(kind: ModelErrorKind, status: u16, after: Option<u64>) -> ModelError {
        ModelError {
            kind,
            provider: "test",
            status: Some(status),
            retry_after: after.map(Duration::from_secs),
            message: format!("status {status}"),
        }
    }

    fn scripted(answers: Vec<Result<ModelResponse, ModelError>>) -> Scripted {
        Scripted { answers: Mutex::new(answers.into()), calls: Mutex::new(vec![]) }
    }

    fn request() -> ModelRequest {
        ModelRequest { model: "m".into(), system: String::new(), messages: vec![], tools: vec![], max_tokens: 10 }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_then_success() {
        let m = scripted(vec![Err(err(ModelErrorKind::Transient, 429, Some(7)))]);
        let start = Instant::now();
        let (r, attempts) =
            complete_with_retries(&m, &request(), &RetryPolicy::default(), start + Duration::from_secs(600)).await;
        assert!(r.is_ok());
        assert_eq!(attempts, 2);
        let calls = m.calls.lock().unwrap().clone();
        assert_eq!(calls[1] - calls[0], Duration::from_secs(7), "waited exactly what retry-after said");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let m = scripted(vec![Err(err(ModelErrorKind::Permanent, 401, None))]);
        let (r, attempts) =
            complete_with_retries(&m, &request(), &RetryPolicy::default(), Instant::now() + Duration::from_secs(600))
                .await;
        assert_eq!(r.unwrap_err().status, Some(401));
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_backoff_grows() {
        let e = || Err(err(ModelErrorKind::Transient, 529, None));
        let m = scripted(vec![e(), e(), e(), e(), e()]);
        let policy = RetryPolicy::default();
        let (r, attempts) =
            complete_with_retries(&m, &request(), &policy, Instant::now() + Duration::from_secs(600)).await;
        assert_eq!(r.unwrap_err().status, Some(529));
        assert_eq!(attempts, policy.max_attempts);
        let calls = m.calls.lock().unwrap().clone();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] >= policy.base && gaps[1] >= policy.base * 2 && gaps[2] >= policy.base * 4, "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_cap_or_the_deadline_is_not_waited_for() {
        let m = scripted(vec![Err(err(ModelErrorKind::Transient, 429, Some(3600)))]);
        let (r, attempts) =
            complete_with_retries(&m, &request(), &RetryPolicy::default(), Instant::now() + Duration::from_secs(600))
                .await;
        assert!(r.is_err());
        assert_eq!(attempts, 1);
        let m = scripted(vec![Err(err(ModelErrorKind::Transient, 429, Some(20)))]);
        let (r, _) =
            complete_with_retries(&m, &request(), &RetryPolicy::default(), Instant::now() + Duration::from_secs(10))
                .await;
        assert!(r.is_err(), "20 s of retry-after does not fit in 10 s left");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hang_ends_at_the_deadline() {
        struct Hang;
        #[async_trait]
        impl ModelClient for Hang {
            fn provider(&self) -> &'static str {
                "test"
            }
            async fn complete(&self, _: &ModelRequest) -> Result<ModelResponse, ModelError> {
                std::future::pending().await
            }
        }
        let start = Instant::now();
        let (r, _) =
            complete_with_retries(&Hang, &request(), &RetryPolicy::default(), start + Duration::from_secs(30)).await;
        assert!(r.unwrap_err().is_transient());
        assert!(Instant::now() - start <= Duration::from_secs(31));
    }
}

//! One worker pool per queue: a receive loop that fetches batches (up to 10, never more
//! than there are free workers) and runs each delivery on its own task, at most
//! `concurrency` at a time.
//!
//! Shutdown: when the token is cancelled the loop stops receiving, in-flight handlers
//! get until the drain deadline to finish, and whatever is still running then is
//! abandoned — its deliveries stay in flight and are redelivered (the process lease
//! makes that quick). Nothing is acknowledged that did not finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rez_core::ports::{Delivery, FailOutcome, MAX_BATCH, Queues, StoreError};
use rez_core::routing::QueueName;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Handled, Handler};
use crate::metrics::{Metrics, Outcome};

/// The default [`PoolConfig::idle_poll`].
pub const IDLE_POLL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub queue: QueueName,
    pub concurrency: usize,
    pub visibility: Duration,
    /// How long to sleep at most when idle before looking again. Commits to the queue
    /// wake the pool at once (and, locally, so do other processes' commits through the
    /// store's wake socket); this is only the safety net.
    pub idle_poll: Duration,
}

impl PoolConfig {
    pub fn new(queue: QueueName, concurrency: usize) -> Self {
        Self {
            queue,
            concurrency: concurrency.max(1),
            visibility: rez_core::ports::DEFAULT_VISIBILITY,
            idle_poll: IDLE_POLL,
        }
    }
}

/// Run the pool until `shutdown` is cancelled, then drain for up to `drain`.
pub async fn run(
    queues: Arc<dyn Queues>,
    handler: Arc<dyn Handler>,
    metrics: Arc<Metrics>,
    config: PoolConfig,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let sem = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = JoinSet::new();
    let queue = config.queue;
    // A handler must finish well within the visibility timeout, or the message would be
    // delivered twice concurrently.
    let handler_timeout = config.visibility.mul_f64(0.9);
    tracing::info!(queue = %queue, concurrency = config.concurrency, "worker pool started");
    loop {
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match sem.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let batch = match queues.receive(queue, permits.len(), config.visibility).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(queue = %queue, error = %e, "receive failed; backing off");
                drop(permits);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        if batch.is_empty() {
            drop(permits);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = queues.wait_for_work(queue, config.idle_poll) => continue,
            }
        }
        permits.truncate(batch.len());
        for (delivery, permit) in batch.into_iter().zip(permits) {
            let queues = queues.clone();
            let handler = handler.clone();
            let metrics = metrics.clone();
            tasks.spawn(async move {
                let _permit = permit;
                process(&*queues, &*handler, &metrics, delivery, handler_timeout).await;
            });
        }
    }
    tracing::info!(queue = %queue, in_flight = tasks.len(), "worker pool draining");
    let deadline = tokio::time::sleep(drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                tracing::warn!(queue = %queue, abandoned = tasks.len(), "drain deadline reached; unfinished work will be redelivered");
                tasks.abort_all();
                break;
            }
        }
    }
    tracing::info!(queue = %queue, "worker pool stopped");
}

/// Settle a handled delivery: complete it, with the push to record if there is one.
async fn settle(queues: &dyn Queues, d: &Delivery, handled: Handled) -> Result<(), StoreError> {
    match handled {
        Handled::Done => queues.complete(d).await,
        Handled::Notified { notification, outcome } => queues.complete_notified(d, &notification, outcome).await,
    }
}

/// Handle one delivery and settle it with the queue. The outcome tells a Lambda SQS
/// consumer which records to report as batch item failures.
pub async fn process(
    queues: &dyn Queues,
    handler: &dyn Handler,
    metrics: &Metrics,
    d: Delivery,
    timeout: Duration,
) -> Outcome {
    let started = Instant::now();
    let id = d.message.id.clone();
    let result = match tokio::time::timeout(timeout, handler.handle(&d.message, d.receive_count)).await {
        Ok(r) => r,
        Err(_) => Err(super::HandlerError::transient(format!("handler timed out after {timeout:?}"))),
    };
    let outcome = match result {
        Ok(handled) => match settle(queues, &d, handled).await {
            Ok(()) => Outcome::Completed,
            Err(StoreError::Conflict(_)) => Outcome::Stale,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "could not record completion; it will be redelivered");
                Outcome::Stale
            }
        },
        Err(err) => {
            tracing::warn!(message_id = %id, queue = %d.queue, receive_count = d.receive_count, error = %err.message, "handler failed");
            match queues.fail(&d, &err.message, err.kind).await {
                Ok(FailOutcome::Retrying { .. }) => Outcome::Retrying,
                Ok(FailOutcome::DeadLettered) => Outcome::DeadLettered,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "could not record failure; it will be redelivered");
                    Outcome::Stale
                }
            }
        }
    };
    metrics.handled(d.queue, outcome, started.elapsed().as_secs_f64());
    outcome
}

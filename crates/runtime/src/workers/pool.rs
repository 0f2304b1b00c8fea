//! One worker pool per queue: a receive loop that fetches batches (up to 10, never more
//! than there are free workers) and runs each delivery on its own task, at most
//! `concurrency` at a time.
//!
//! While the queue has a backlog (the last receive came back full), up to
//! [`MAX_RECEIVES`] receives are in flight at once. A receive is a durable write (it
//! waits for a group commit, a millisecond or more under load) and brings at most 10
//! messages, so one receive at a time capped delivery at about 10 per commit: about
//! 4,000/s on the benchmark machine while its CPU was a third idle. When the queue is
//! caught up, one receive at a time is enough, and idle pools do not multiply wake-ups.
//!
//! Shutdown: when the token is cancelled the loop stops receiving (the batches of
//! receives already in flight are still handled), in-flight handlers get until the drain
//! deadline to finish, and whatever is still running then is abandoned — its deliveries
//! stay in flight and are redelivered (the process lease makes that quick). Nothing is
//! acknowledged that did not finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rez_core::ports::{Delivery, FailOutcome, MAX_BATCH, Queues, StoreError};
use rez_core::routing::QueueName;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Handled, Handler};
use crate::metrics::{Metrics, Outcome};

/// The default [`PoolConfig::idle_poll`].
pub const IDLE_POLL: Duration = Duration::from_secs(30);

/// Receives in flight at once, at most, while the queue has a backlog.
pub const MAX_RECEIVES: usize = 4;

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

    /// Receives in flight at once during a backlog: enough to fill the workers, at most
    /// [`MAX_RECEIVES`].
    fn backlog_receives(&self) -> usize {
        self.concurrency.div_ceil(MAX_BATCH).clamp(1, MAX_RECEIVES)
    }
}

/// A finished receive: its result and the worker permits it was made for.
type Received = (Result<Vec<Delivery>, StoreError>, Vec<OwnedSemaphorePermit>);

/// Run the pool until `shutdown` is cancelled, then drain for up to `drain`.
pub async fn run(
    queues: Arc<dyn Queues>,
    handler: Arc<dyn Handler>,
    metrics: Arc<Metrics>,
    config: PoolConfig,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let workers = Workers {
        queues: queues.clone(),
        handler,
        metrics,
        // A handler must finish well within the visibility timeout, or the message would
        // be delivered twice concurrently.
        handler_timeout: config.visibility.mul_f64(0.9),
        tracker: TaskTracker::new(),
        abandon: CancellationToken::new(),
    };
    let sem = Arc::new(Semaphore::new(config.concurrency));
    let queue = config.queue;
    let mut receiving: JoinSet<Received> = JoinSet::new();
    let mut backlog = false;
    tracing::info!(queue = %queue, concurrency = config.concurrency, "worker pool started");
    'pool: loop {
        let (result, mut permits) = if !backlog && receiving.is_empty() {
            // Caught up: one receive, awaited right here. No task to spawn and join, so a
            // message handed over at a low rate reaches its handler as soon as before.
            let Some(permits) = free_workers(&sem, &shutdown).await else { break 'pool };
            (queues.receive(queue, permits.len(), config.visibility).await, permits)
        } else {
            // A backlog: receives on tasks of their own, as many as wanted and as the free
            // workers allow (each for at most a batch). Right after a backlog ends, no new
            // one starts; the ones in flight are collected.
            let wanted = if backlog { config.backlog_receives() } else { 1 };
            while receiving.len() < wanted {
                let permits = if receiving.is_empty() {
                    let Some(permits) = free_workers(&sem, &shutdown).await else { break 'pool };
                    permits
                } else {
                    match sem.clone().try_acquire_owned() {
                        Ok(first) => with_free_workers(&sem, first),
                        Err(_) => break,
                    }
                };
                let queues = queues.clone();
                let visibility = config.visibility;
                receiving.spawn(async move { (queues.receive(queue, permits.len(), visibility).await, permits) });
            }
            tokio::select! {
                _ = shutdown.cancelled() => break 'pool,
                Some(done) = receiving.join_next() => match done {
                    Ok(received) => received,
                    Err(e) => {
                        tracing::error!(queue = %queue, error = %e, "a receive task failed");
                        continue;
                    }
                },
            }
        };
        match result {
            Err(e) => {
                tracing::error!(queue = %queue, error = %e, "receive failed; backing off");
                backlog = false;
                drop(permits);
                tokio::select! {
                    _ = shutdown.cancelled() => break 'pool,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            Ok(batch) if batch.is_empty() => {
                backlog = false;
                drop(permits);
                if receiving.is_empty() {
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'pool,
                        _ = queues.wait_for_work(queue, config.idle_poll) => {}
                    }
                }
            }
            Ok(batch) => {
                // A full batch suggests more is waiting.
                backlog = batch.len() == permits.len();
                permits.truncate(batch.len());
                workers.start(batch, permits);
            }
        }
    }
    // What the receives in flight bring is handled like the rest (within the drain).
    while let Some(done) = receiving.join_next().await {
        if let Ok((Ok(batch), mut permits)) = done {
            permits.truncate(batch.len());
            workers.start(batch, permits);
        }
    }
    workers.drain(queue, drain).await;
}

/// Wait for a free worker (`None` once shutting down), then take the others free right
/// now, up to a batch.
async fn free_workers(sem: &Arc<Semaphore>, shutdown: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        _ = shutdown.cancelled() => return None,
        p = sem.clone().acquire_owned() => p.ok()?,
    };
    Some(with_free_workers(sem, first))
}

/// `first` plus as many more permits as are free right now, up to a batch.
fn with_free_workers(sem: &Arc<Semaphore>, first: OwnedSemaphorePermit) -> Vec<OwnedSemaphorePermit> {
    let mut permits = vec![first];
    while permits.len() < MAX_BATCH {
        match sem.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    permits
}

/// The handler tasks of one pool.
struct Workers {
    queues: Arc<dyn Queues>,
    handler: Arc<dyn Handler>,
    metrics: Arc<Metrics>,
    handler_timeout: Duration,
    tracker: TaskTracker,
    /// Cancelled at the drain deadline: the handlers still running are dropped.
    abandon: CancellationToken,
}

impl Workers {
    /// Handle each delivery on its own task, holding one worker permit each.
    fn start(&self, batch: Vec<Delivery>, permits: Vec<OwnedSemaphorePermit>) {
        for (delivery, permit) in batch.into_iter().zip(permits) {
            let queues = self.queues.clone();
            let handler = self.handler.clone();
            let metrics = self.metrics.clone();
            let abandon = self.abandon.clone();
            let timeout = self.handler_timeout;
            self.tracker.spawn(async move {
                let _permit = permit;
                tokio::select! {
                    biased;
                    _ = abandon.cancelled() => {}
                    _ = process(&*queues, &*handler, &metrics, delivery, timeout) => {}
                }
            });
        }
    }

    /// Wait up to `drain` for the running handlers, then abandon the rest.
    async fn drain(&self, queue: QueueName, drain: Duration) {
        self.tracker.close();
        tracing::info!(queue = %queue, in_flight = self.tracker.len(), "worker pool draining");
        if tokio::time::timeout(drain, self.tracker.wait()).await.is_err() {
            tracing::warn!(queue = %queue, abandoned = self.tracker.len(), "drain deadline reached; unfinished work will be redelivered");
            self.abandon.cancel();
            self.tracker.wait().await;
        }
        tracing::info!(queue = %queue, "worker pool stopped");
    }
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
        Err(err) if let Some(delay) = err.defer => {
            tracing::info!(message_id = %id, queue = %d.queue, delay_ms = delay.as_millis() as u64, reason = %err.message, "handler deferred the delivery");
            match queues.defer(&d, delay).await {
                Ok(()) => Outcome::Deferred,
                Err(StoreError::Conflict(_)) => Outcome::Stale,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "could not defer; it will be redelivered");
                    Outcome::Stale
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use rez_core::id::MessageId;
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    use rez_core::notify::NotifyPayload;
    use rez_core::ports::{AttemptOutcome, DeadLetter, FailureKind, Page, QueueStats, RedriveSelector, StoreResult};
    use serde_json::json;

    use super::*;
    use crate::workers::HandlerError;

    /// A queue holding `waiting` messages whose receives each take `receive_takes` (a
    /// group commit); it records how many receives were ever in flight at once.
    struct SlowQueue {
        waiting: AtomicUsize,
        receive_takes: Duration,
        receiving: AtomicUsize,
        most_receiving: AtomicUsize,
        receives: AtomicUsize,
        completed: AtomicUsize,
    }

    impl SlowQueue {
        fn new(waiting: usize) -> Arc<Self> {
            Arc::new(Self {
                waiting: AtomicUsize::new(waiting),
                receive_takes: Duration::from_millis(5),
                receiving: AtomicUsize::new(0),
                most_receiving: AtomicUsize::new(0),
                receives: AtomicUsize::new(0),
                completed: AtomicUsize::new(0),
            })
        }
    }

    fn message() -> Message {
        let body = json!({"message_type": "notify", "payload": {"message": "hi"}});
        let new = NewMessage::from_json(&body, Stage::Dev).expect("valid message");
        Message::create(new, CreatedBy::System, chrono::Utc::now())
    }

    #[async_trait]
    impl Queues for SlowQueue {
        async fn receive(&self, queue: QueueName, max: usize, _visibility: Duration) -> StoreResult<Vec<Delivery>> {
            let now = self.receiving.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_receiving.fetch_max(now, Ordering::SeqCst);
            self.receives.fetch_add(1, Ordering::SeqCst);
            // Taken at once, answered later: like a receive whose commit has marked them in
            // flight, a receive whose answer is dropped leaves them unhandled.
            let taken = self.waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(w - w.min(max)));
            let n = taken.map_or(0, |w| w.min(max));
            tokio::time::sleep(self.receive_takes).await;
            self.receiving.fetch_sub(1, Ordering::SeqCst);
            Ok((0..n)
                .map(|i| Delivery { queue, receipt: format!("r{i}"), message: message(), receive_count: 1 })
                .collect())
        }
        async fn complete(&self, _delivery: &Delivery) -> StoreResult<()> {
            self.completed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn complete_notified(&self, _: &Delivery, _: &NotifyPayload, _: AttemptOutcome) -> StoreResult<()> {
            unreachable!("the test handler records no push")
        }
        async fn fail(&self, _: &Delivery, _: &str, _: FailureKind) -> StoreResult<FailOutcome> {
            unreachable!("the test handler does not fail")
        }
        async fn release(&self, _: &Delivery) -> StoreResult<()> {
            unreachable!("the pool never releases")
        }
        async fn defer(&self, _: &Delivery, _: Duration) -> StoreResult<()> {
            unreachable!("the test handler does not defer")
        }
        async fn wait_for_work(&self, _queue: QueueName, timeout: Duration) {
            tokio::time::sleep(timeout.min(Duration::from_millis(100))).await;
        }
        async fn stats(&self) -> StoreResult<Vec<QueueStats>> {
            unreachable!()
        }
        async fn dead_letters(
            &self,
            _: Option<QueueName>,
            _: usize,
            _: Option<String>,
        ) -> StoreResult<Page<DeadLetter>> {
            unreachable!()
        }
        async fn redrive(&self, _: &RedriveSelector) -> StoreResult<u64> {
            unreachable!()
        }
        async fn delete_dead_letter(&self, _: &MessageId) -> StoreResult<bool> {
            unreachable!()
        }
    }

    struct Quick;

    #[async_trait]
    impl Handler for Quick {
        async fn handle(&self, _message: &Message, _receive_count: u32) -> Result<Handled, HandlerError> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(Handled::Done)
        }
    }

    fn start(queue: &Arc<SlowQueue>, concurrency: usize) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let pool = tokio::spawn(run(
            queue.clone(),
            Arc::new(Quick),
            Arc::new(Metrics::default()),
            PoolConfig::new(QueueName::Notifications, concurrency),
            shutdown.clone(),
            Duration::from_secs(5),
        ));
        (shutdown, pool)
    }

    #[test]
    fn backlog_receives_fill_the_workers_up_to_the_cap() {
        assert_eq!(PoolConfig::new(QueueName::Notifications, 1).backlog_receives(), 1);
        assert_eq!(PoolConfig::new(QueueName::Notifications, 10).backlog_receives(), 1);
        assert_eq!(PoolConfig::new(QueueName::Notifications, 11).backlog_receives(), 2);
        assert_eq!(PoolConfig::new(QueueName::Notifications, 64).backlog_receives(), MAX_RECEIVES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_is_received_by_several_receives_at_once() {
        let queue = SlowQueue::new(400);
        let (shutdown, pool) = start(&queue, 64);
        while queue.completed.load(Ordering::SeqCst) < 400 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        pool.await.expect("pool");
        assert_eq!(queue.most_receiving.load(Ordering::SeqCst), MAX_RECEIVES);
        assert_eq!(queue.completed.load(Ordering::SeqCst), 400);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caught_up_queue_has_one_receive_at_a_time() {
        // Partial batches: never a backlog, so never a second receive in flight.
        let queue = SlowQueue::new(5);
        let (shutdown, pool) = start(&queue, 64);
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown.cancel();
        pool.await.expect("pool");
        assert_eq!(queue.completed.load(Ordering::SeqCst), 5);
        assert_eq!(queue.most_receiving.load(Ordering::SeqCst), 1);
        assert!(queue.receives.load(Ordering::SeqCst) >= 2, "it kept looking after the queue ran dry");
    }

    #[tokio::test(start_paused = true)]
    async fn what_receives_in_flight_at_shutdown_bring_is_still_handled() {
        let queue = SlowQueue::new(1000);
        let (shutdown, pool) = start(&queue, 64);
        // Let a few rounds of receives start, then stop in the middle of them.
        tokio::time::sleep(Duration::from_millis(12)).await;
        shutdown.cancel();
        pool.await.expect("pool");
        let received = 1000 - queue.waiting.load(Ordering::SeqCst);
        assert!(received > 0);
        assert_eq!(queue.completed.load(Ordering::SeqCst), received, "every received message was handled");
    }
}

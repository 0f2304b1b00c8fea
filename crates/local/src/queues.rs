//! Durable queues with SQS semantics on SQLite: receive batches with a visibility
//! timeout, receive counts, exponential backoff after a failure, a dead-letter queue
//! after [`MAX_RECEIVES`] receives, redrive, and 4-day retention.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rez_core::MessageId;
use rez_core::message::Message;
use rez_core::notify::NotifyPayload;
use rez_core::ports::{
    AttemptOutcome, DeadLetter, Delivery, FailOutcome, FailureKind, MAX_BATCH, MAX_RECEIVES, Page, QueueStats, Queues,
    RETENTION, RedriveSelector, StoreError, StoreResult,
};
use rez_core::routing::{QueueName, primary_queue};
use rez_core::status::Status;
use rez_core::time::Timestamp;
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;
use crate::codec::{MESSAGE_COLUMNS, load_message, message_from_row, set_status, ts};
use crate::db::sql;

/// Queue tuning shared by all local queues.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Delay before the first retry; doubles per receive, with ±20 % jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Hand a new message straight to this process's consumer of its queue, claimed in
    /// the publish transaction, while that consumer keeps up (see `handoff.rs`). Off by
    /// default; `rez serve` turns it on.
    pub direct_handoff: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { backoff_base: Duration::from_secs(2), backoff_max: Duration::from_secs(5 * 60), direct_handoff: false }
    }
}

impl QueueConfig {
    /// Backoff after the `receive_count`-th failed receive.
    pub fn backoff(&self, receive_count: u32) -> Duration {
        let exp = 2u32.saturating_pow(receive_count.saturating_sub(1).min(20));
        let base = self.backoff_base.saturating_mul(exp).min(self.backoff_max);
        let jitter = rand::rng().random_range(0.8..1.2);
        base.mul_f64(jitter)
    }
}

/// `queue IN (…every queue and DLQ…)`: finds a message's items by primary key, one seek
/// per queue, for the rare lookups by message id alone (there is no index on it).
pub(crate) static ANY_QUEUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let names: Vec<String> =
        QueueName::ALL.iter().flat_map(|q| [q.as_str(), q.dlq_name()]).map(|n| format!("'{n}'")).collect();
    format!("queue IN ({})", names.join(", "))
});

/// The next visible items of a queue, oldest visibility first, each with its message
/// (all NULL when the message is gone): one statement per receive instead of one lookup
/// per item.
pub(crate) static RECEIVE_CANDIDATES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT message_id, receive_count, {MESSAGE_COLUMNS} FROM queue_items \
         LEFT JOIN messages ON messages.id = queue_items.message_id \
         WHERE queue = ?1 AND visible_ms <= ?2 ORDER BY visible_ms LIMIT ?3"
    )
});

fn dlq_of(name: &str) -> Option<QueueName> {
    QueueName::ALL.into_iter().find(|q| q.dlq_name() == name)
}

/// Move one item to its DLQ and mark `message` (loaded by the caller; `None` on other
/// queues than its primary one, or when it cannot be read) dead-lettered if the state
/// machine allows. Its only possible failures are SQLite's, so a job without a savepoint
/// can use it after writing.
fn dead_letter(
    tx: &Connection,
    queue: QueueName,
    id: &str,
    message: Option<Message>,
    error: Option<&str>,
    now: Timestamp,
) -> StoreResult<()> {
    let now_ms = now.timestamp_millis();
    tx.prepare_cached(
        "UPDATE queue_items SET queue = ?3, receipt = NULL, owner = NULL, visible_ms = ?4, dead_lettered_ms = ?4, \
         last_error = COALESCE(?5, last_error) WHERE queue = ?1 AND message_id = ?2",
    )
    .map_err(sql)?
    .execute(rusqlite::params![queue.as_str(), id, queue.dlq_name(), now_ms, error])
    .map_err(sql)?;
    if let Some(mut m) = message
        && m.status.can_transition(Status::DeadLettered)
    {
        set_status(tx, &mut m, Status::DeadLettered, error, false, now)?;
    }
    tracing::warn!(message_id = id, queue = %queue, "message dead-lettered");
    Ok(())
}

/// Remove a finished delivery from its queue and, on the message's primary queue, mark
/// the message `completed`. The caller has checked the receipt. The state machine is
/// checked before anything is written (`complete_message` fails without writing), so
/// this can run without a savepoint.
fn remove_and_complete(tx: &Connection, d: &Delivery, now: Timestamp) -> StoreResult<()> {
    if d.queue == primary_queue(d.message.message_type) {
        complete_message(tx, d.message.id.as_str(), now)?;
    }
    tx.prepare_cached("DELETE FROM queue_items WHERE queue = ?1 AND message_id = ?2")
        .map_err(sql)?
        .execute([d.queue.as_str(), d.message.id.as_str()])
        .map_err(sql)?;
    Ok(())
}

/// Mark a processed message `completed`. The hot path is one guarded statement (no
/// decoding of the stored message); only when the guard fails is the message loaded,
/// to report why through the state machine. (`processing` is the only way into
/// `completed`: `rez_core::status` tests that.)
fn complete_message(tx: &Connection, id: &str, now: Timestamp) -> StoreResult<()> {
    let changed = tx
        .prepare_cached("UPDATE messages SET status = ?2, updated_ms = ?3 WHERE id = ?1 AND status = ?4")
        .map_err(sql)?
        .execute(rusqlite::params![id, Status::Completed.as_str(), now.timestamp_millis(), Status::Processing.as_str()])
        .map_err(sql)?;
    if changed == 1 {
        return Ok(());
    }
    // Not `processing`: the state machine says why (and writes nothing when it refuses).
    let mut m = load_message(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
    set_status(tx, &mut m, Status::Completed, None, false, now)
}

/// Check that `receipt` still holds `id` on `queue`.
fn check_receipt(tx: &Connection, d: &Delivery) -> StoreResult<()> {
    let held: Option<Option<String>> = tx
        .prepare_cached("SELECT receipt FROM queue_items WHERE queue = ?1 AND message_id = ?2")
        .map_err(sql)?
        .query_row([d.queue.as_str(), d.message.id.as_str()], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    match held {
        Some(Some(r)) if r == d.receipt => Ok(()),
        _ => Err(stale_receipt(d)),
    }
}

fn stale_receipt(d: &Delivery) -> StoreError {
    StoreError::Conflict(format!(
        "receipt for {} on {} is stale (the message was redelivered or removed)",
        d.message.id, d.queue
    ))
}

#[async_trait]
impl Queues for LocalStore {
    async fn receive(&self, queue: QueueName, max: usize, visibility: Duration) -> StoreResult<Vec<Delivery>> {
        let max = max.clamp(1, MAX_BATCH);
        let now = self.clock.now();
        let owner = self.instance.clone();
        let vis_ms = i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2);
        let now_ms = now.timestamp_millis();
        // Messages claimed for us at publish come first (see `handoff.rs`).
        self.handoff.consumer_asks(queue, visibility);
        let handed = self.handoff.take(queue, max, now_ms);
        if !handed.is_empty() {
            self.work_taken.notify_one();
            return Ok(handed);
        }
        // An idle consumer asks again as soon as it has room: when nothing is visible,
        // answer from a read on this thread rather than a write job (a round trip through
        // the writer thread and two thread hand-offs, per idle poll). Should the read
        // fail, the write below decides. Through a backlog (the last receive came back
        // full) something is almost surely waiting, so the read would only add a query.
        if self.handoff.consumer_caught_up(queue) {
            let visible = self.db.read_point(|c| {
                c.prepare_cached("SELECT EXISTS (SELECT 1 FROM queue_items WHERE queue = ?1 AND visible_ms <= ?2)")
                    .map_err(sql)?
                    .query_row(rusqlite::params![queue.as_str(), now_ms], |r| r.get::<_, bool>(0))
                    .map_err(sql)
            });
            if matches!(visible, Ok(false)) {
                return Ok(Vec::new());
            }
        }
        let taken = self
            .db
            .write_unisolated(move |ctx| {
                let tx = ctx.tx;
                let now_ms = now.timestamp_millis();
                type Candidate = (String, u32, StoreResult<Option<Message>>);
                let candidates: Vec<Candidate> = {
                    let mut stmt = tx.prepare_cached(&RECEIVE_CANDIDATES).map_err(sql)?;
                    let rows = stmt
                        .query_map(rusqlite::params![queue.as_str(), now_ms, max as i64], |r| {
                            let gone = r.get::<_, Option<String>>(2)?.is_none();
                            let message = if gone { Ok(None) } else { message_from_row(r, 2).map(Some) };
                            Ok((r.get(0)?, r.get(1)?, message))
                        })
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let mut out = Vec::with_capacity(candidates.len());
                // No savepoint around this job: every item is settled one way or another
                // (delivered, dead-lettered, dropped) by writes that can fail only if
                // SQLite does.
                for (id, count, message) in candidates {
                    let mut m = match message {
                        Ok(Some(m)) => m,
                        Ok(None) => {
                            tx.prepare_cached("DELETE FROM queue_items WHERE queue = ?1 AND message_id = ?2")
                                .map_err(sql)?
                                .execute([queue.as_str(), &id])
                                .map_err(sql)?;
                            continue;
                        }
                        Err(e) => {
                            // The row cannot be decoded (a bad value or a column of the
                            // wrong type): undeliverable as stored. Keep it, with the
                            // reason, for a human; failing here instead would fail every
                            // receive of this queue (and, without a savepoint, its group).
                            let why = format!("the stored message cannot be read: {e}");
                            dead_letter(tx, queue, &id, None, Some(&why), now)?;
                            continue;
                        }
                    };
                    if count >= MAX_RECEIVES {
                        // Received the maximum number of times without success (e.g. the
                        // consumer crashed each time): dead-letter instead of delivering.
                        let primary = (queue == primary_queue(m.message_type)).then_some(m);
                        dead_letter(tx, queue, &id, primary, Some("maximum receives exceeded"), now)?;
                        continue;
                    }
                    if queue == primary_queue(m.message_type) {
                        if m.status == Status::Failed {
                            set_status(tx, &mut m, Status::Queued, None, false, now)?;
                        }
                        if !m.status.can_transition(Status::Processing) {
                            tracing::warn!(message_id = %m.id, status = %m.status, "dropping queue item of a message that cannot be processed");
                            tx.prepare_cached("DELETE FROM queue_items WHERE queue = ?1 AND message_id = ?2")
                                .map_err(sql)?
                                .execute([queue.as_str(), &id])
                                .map_err(sql)?;
                            continue;
                        }
                        set_status(tx, &mut m, Status::Processing, None, false, now)?;
                    }
                    let receipt = ulid::Ulid::new().to_string();
                    tx.prepare_cached(
                        "UPDATE queue_items SET receive_count = receive_count + 1, receipt = ?3, owner = ?4, visible_ms = ?5 \
                         WHERE queue = ?1 AND message_id = ?2",
                    )
                    .map_err(sql)?
                    .execute(rusqlite::params![queue.as_str(), id, receipt, &*owner, now_ms + vis_ms])
                    .map_err(sql)?;
                    out.push(Delivery { queue, receipt, message: m, receive_count: count + 1 });
                }
                if !out.is_empty() {
                    // Our lease may have lapsed while idle; it must be live before the
                    // work it protects is visible as ours.
                    crate::lease::renew(tx, &owner, now_ms)?;
                }
                Ok(out)
            })
            .await;
        if let Ok(d) = &taken {
            // Only once the database has nothing waiting are new messages claimed for
            // this consumer, so a backlog is not overtaken.
            self.handoff.consumer_saw(queue, d.len() < max);
            if !d.is_empty() {
                self.work_taken.notify_one();
            }
        }
        taken
    }

    async fn complete(&self, d: &Delivery) -> StoreResult<()> {
        let d = d.clone();
        let now = self.clock.now();
        self.db
            .write_unisolated(move |ctx| {
                let tx = ctx.tx;
                check_receipt(tx, &d)?;
                remove_and_complete(tx, &d, now)
            })
            .await
    }

    async fn complete_notified(
        &self,
        d: &Delivery,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        let d = d.clone();
        let body = serde_json::to_string(notification).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.clock.now();
        let held = self
            .db
            .write_unisolated(move |ctx| {
                let tx = ctx.tx;
                let id = d.message.id.as_str();
                let now_ms = now.timestamp_millis();
                // A stale receipt must not lose the record: answer it as a value, so the
                // record is committed, and report the conflict after.
                match check_receipt(tx, &d) {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        crate::inbox::upsert_attempt(tx, id, &body, outcome, now_ms)?;
                        return Ok(Err(d));
                    }
                    Err(e) => return Err(e),
                }
                // Checks first (`remove_and_complete` fails before writing), the record last.
                remove_and_complete(tx, &d, now)?;
                crate::inbox::upsert_attempt(tx, id, &body, outcome, now_ms)?;
                Ok(Ok(()))
            })
            .await?;
        held.map_err(|d| stale_receipt(&d))
    }

    async fn fail(&self, d: &Delivery, error: &str, kind: FailureKind) -> StoreResult<FailOutcome> {
        let d = d.clone();
        let error: String = error.chars().take(2000).collect();
        let now = self.clock.now();
        let backoff = self.config.backoff(d.receive_count);
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                check_receipt(tx, &d)?;
                let id = d.message.id.as_str();
                let primary = d.queue == primary_queue(d.message.message_type);
                if kind == FailureKind::Permanent || d.receive_count >= MAX_RECEIVES {
                    let mut message = if primary { load_message(tx, id)? } else { None };
                    if let Some(m) = &mut message {
                        set_status(tx, m, Status::Failed, Some(&error), true, now)?;
                    }
                    dead_letter(tx, d.queue, id, message, Some(&error), now)?;
                    return Ok(FailOutcome::DeadLettered);
                }
                let visible_at = now + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::seconds(1));
                tx.prepare_cached(
                    "UPDATE queue_items SET receipt = NULL, owner = NULL, visible_ms = ?3, last_error = ?4 \
                     WHERE queue = ?1 AND message_id = ?2",
                )
                .map_err(sql)?
                .execute(rusqlite::params![d.queue.as_str(), id, visible_at.timestamp_millis(), error])
                .map_err(sql)?;
                if primary && let Some(mut m) = load_message(tx, id)? {
                    set_status(tx, &mut m, Status::Failed, Some(&error), true, now)?;
                }
                // An idle consumer sleeps until the earliest item is due: this one now is.
                ctx.wake(d.queue);
                Ok(FailOutcome::Retrying { visible_at })
            })
            .await
    }

    async fn release(&self, d: &Delivery) -> StoreResult<()> {
        let d = d.clone();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                check_receipt(tx, &d)?;
                tx.execute(
                    "UPDATE queue_items SET receipt = NULL, owner = NULL, visible_ms = ?3, \
                     receive_count = MAX(receive_count - 1, 0) WHERE queue = ?1 AND message_id = ?2",
                    rusqlite::params![d.queue.as_str(), d.message.id.as_str(), now_ms],
                )
                .map_err(sql)?;
                ctx.wake(d.queue);
                Ok(())
            })
            .await
    }

    async fn defer(&self, d: &Delivery, delay: Duration) -> StoreResult<()> {
        let (queue, id) = (d.queue, d.message.id.clone());
        let d = d.clone();
        let delay = delay.min(rez_core::ports::MAX_DEFER);
        let visible_ms = self.now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                check_receipt(tx, &d)?;
                tx.execute(
                    "UPDATE queue_items SET receipt = NULL, owner = NULL, visible_ms = ?3, receive_count = 0 \
                     WHERE queue = ?1 AND message_id = ?2",
                    rusqlite::params![d.queue.as_str(), d.message.id.as_str(), visible_ms],
                )
                .map_err(sql)?;
                // An idle consumer sleeps until the earliest item is due: this may be it.
                ctx.wake(d.queue);
                Ok(())
            })
            .await?;
        tracing::info!(message_id = %id, queue = %queue, delay_ms = delay.as_millis() as u64, "delivery deferred");
        Ok(())
    }

    async fn wait_for_work(&self, queue: QueueName, timeout: Duration) {
        let mut rx = self.db.subscribe(queue);
        rx.borrow_and_update();
        // A hand-off that landed before we subscribed rang the bell too early for us.
        if self.handoff.has_ready(queue) {
            return;
        }
        // Work committed by another process sharing the database, or a backoff ending,
        // does not ring our bell: sleep no longer than until the next item is due.
        let now_ms = self.now_ms();
        // One index seek: on this thread (see `Db::read_point`).
        let next_due = self
            .db
            .read_point(|c| {
                c.prepare_cached("SELECT MIN(visible_ms) FROM queue_items WHERE queue = ?1")
                    .map_err(sql)?
                    .query_row([queue.as_str()], |r| r.get::<_, Option<i64>>(0))
                    .map_err(sql)
            })
            .ok()
            .flatten();
        let mut wait = timeout;
        if let Some(due) = next_due {
            let until = Duration::from_millis(u64::try_from(due - now_ms).unwrap_or(0));
            wait = wait.min(until);
        }
        if wait.is_zero() {
            return;
        }
        let _ = tokio::time::timeout(wait, rx.changed()).await;
    }

    async fn stats(&self) -> StoreResult<Vec<QueueStats>> {
        let now_ms = self.now_ms();
        self.db
            .read(move |c| {
                let mut out = Vec::new();
                let mut stmt = c
                    .prepare_cached(
                        "SELECT COALESCE(SUM(receipt IS NULL), 0), COALESCE(SUM(receipt IS NOT NULL), 0), MIN(enqueued_ms) \
                         FROM queue_items WHERE queue = ?1",
                    )
                    .map_err(sql)?;
                let mut dlq = c.prepare_cached("SELECT COUNT(*) FROM queue_items WHERE queue = ?1").map_err(sql)?;
                for q in QueueName::ALL {
                    let (depth, in_flight, oldest): (i64, i64, Option<i64>) =
                        stmt.query_row([q.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(sql)?;
                    let dlq_depth: i64 = dlq.query_row([q.dlq_name()], |r| r.get(0)).map_err(sql)?;
                    out.push(QueueStats {
                        queue: q,
                        depth: depth.max(0) as u64,
                        in_flight: in_flight.max(0) as u64,
                        oldest_age_seconds: oldest.map(|o| (now_ms - o).max(0) as f64 / 1000.0).unwrap_or(0.0),
                        dlq_depth: dlq_depth.max(0) as u64,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn dead_letters(
        &self,
        queue: Option<QueueName>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<DeadLetter>> {
        let limit = limit.clamp(1, 100);
        self.db
            .read(move |c| {
                let dlqs: Vec<&str> = match queue {
                    Some(q) => vec![q.dlq_name()],
                    None => QueueName::ALL.iter().map(|q| q.dlq_name()).collect(),
                };
                let cursor = match cursor {
                    Some(cur) => Some(MessageId::parse(&cur).map_err(|_| StoreError::InvalidCursor)?),
                    None => None,
                };
                let placeholders = dlqs.iter().map(|_| "?").collect::<Vec<_>>().join(",");
                let q = format!(
                    "SELECT q.queue, q.source_queue, q.receive_count, q.dead_lettered_ms, q.last_error, {cols} \
                     FROM queue_items q JOIN messages m ON m.id = q.message_id \
                     WHERE q.queue IN ({placeholders}) {cur} ORDER BY q.message_id DESC LIMIT {lim}",
                    cols = MESSAGE_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", "),
                    cur = if cursor.is_some() { "AND q.message_id < ?" } else { "" },
                    lim = limit + 1,
                );
                let mut params: Vec<String> = dlqs.iter().map(|s| s.to_string()).collect();
                if let Some(c) = &cursor {
                    params.push(c.to_string());
                }
                let mut stmt = c.prepare(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    let source: String = r.get(1).map_err(sql)?;
                    items.push(DeadLetter {
                        source_queue: QueueName::parse(&source)
                            .ok_or_else(|| StoreError::Corrupt(format!("queue {source}")))?,
                        receive_count: r.get(2).map_err(sql)?,
                        dead_lettered_date: ts(r.get::<_, Option<i64>>(3).map_err(sql)?.unwrap_or(0))?,
                        last_error: r.get(4).map_err(sql)?,
                        message: message_from_row(r, 5)?,
                    });
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|d| d.message.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }

    async fn redrive(&self, selector: &RedriveSelector) -> StoreResult<u64> {
        let selector = selector.clone();
        let now = self.clock.now();
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let rows: Vec<(String, String, String)> = {
                    let mut stmt = tx
                        .prepare("SELECT queue, message_id, source_queue FROM queue_items WHERE dead_lettered_ms IS NOT NULL")
                        .map_err(sql)?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                let mut moved = 0u64;
                for (dlq, id, source) in rows {
                    let Some(src) = dlq_of(&dlq) else { continue };
                    let wanted = match &selector {
                        RedriveSelector::All => true,
                        RedriveSelector::Queue(q) => *q == src,
                        RedriveSelector::Ids(ids) => ids.iter().any(|i| i.as_str() == id),
                    };
                    if !wanted || source != src.as_str() {
                        continue;
                    }
                    tx.execute(
                        "UPDATE queue_items SET queue = ?3, receive_count = 0, receipt = NULL, owner = NULL, visible_ms = ?4, \
                         enqueued_ms = ?4, dead_lettered_ms = NULL WHERE queue = ?1 AND message_id = ?2",
                        rusqlite::params![dlq, id, src.as_str(), now.timestamp_millis()],
                    )
                    .map_err(sql)?;
                    // Counted as a retry (see `Queues::redrive`).
                    if let Some(mut m) = load_message(tx, &id)?
                        && src == primary_queue(m.message_type)
                    {
                        if m.status.can_transition(Status::Queued) {
                            set_status(tx, &mut m, Status::Queued, None, true, now)?;
                        } else {
                            tx.execute("UPDATE messages SET retry_count = retry_count + 1 WHERE id = ?1", [&id])
                                .map_err(sql)?;
                        }
                    }
                    ctx.wake(src);
                    moved += 1;
                }
                if moved > 0 {
                    tracing::info!(moved, "dead letters redriven");
                }
                Ok(moved)
            })
            .await
    }

    async fn delete_dead_letter(&self, id: &MessageId) -> StoreResult<bool> {
        let id = id.clone();
        self.db
            .write(move |ctx| {
                let n = ctx
                    .tx
                    .execute(
                        &format!(
                            "DELETE FROM queue_items WHERE {} AND message_id = ?1 AND dead_lettered_ms IS NOT NULL",
                            *ANY_QUEUE
                        ),
                        [id.as_str()],
                    )
                    .map_err(sql)?;
                Ok(n > 0)
            })
            .await
    }
}

impl LocalStore {
    /// Drop queue items older than the retention period (4 days). A message whose item
    /// expires before it was processed is marked with an error so the loss is visible.
    pub async fn enforce_retention(&self) -> StoreResult<u64> {
        let now = self.clock.now();
        let cutoff = (now - RETENTION).timestamp_millis();
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let expired: Vec<(String, String)> = {
                    let mut stmt =
                        tx.prepare("SELECT queue, message_id FROM queue_items WHERE enqueued_ms < ?1").map_err(sql)?;
                    let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                for (queue, id) in &expired {
                    tx.execute("DELETE FROM queue_items WHERE queue = ?1 AND message_id = ?2", [queue, id])
                        .map_err(sql)?;
                    if let Some(mut m) = load_message(tx, id)?
                        && !m.status.is_terminal()
                        && m.status.can_transition(Status::DeadLettered)
                    {
                        set_status(
                            tx,
                            &mut m,
                            Status::DeadLettered,
                            Some("expired: retention period of 4 days ended"),
                            false,
                            now,
                        )?;
                    }
                    tracing::warn!(message_id = %id, queue = %queue, "queue item expired after the retention period");
                }
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE created_ms < ?1",
                    [(now - rez_core::ports::IDEMPOTENCY_WINDOW).timestamp_millis()],
                )
                .map_err(sql)?;
                Ok(expired.len() as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receive reads its candidates through the visibility index and each message by
    /// its primary key, in one statement; nothing is scanned or sorted.
    #[test]
    fn the_receive_query_seeks_and_does_not_sort() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::test_support::migrated(dir.path());
        let plan =
            crate::test_support::query_plan(&conn, &RECEIVE_CANDIDATES, rusqlite::params!["notify", 0i64, 10i64]);
        assert!(plan.iter().any(|p| p.contains("queue_items USING INDEX queue_items_by_visibility")), "{plan:?}");
        assert!(plan.iter().any(|p| p.contains("SEARCH messages USING PRIMARY KEY (id=?)")), "{plan:?}");
        assert!(!plan.iter().any(|p| p.starts_with("SCAN") || p.contains("TEMP B-TREE")), "{plan:?}");
    }

    /// Without an index on `message_id`, a lookup by message id alone must still seek the
    /// primary key (one seek per queue name), not scan every queue item.
    #[test]
    fn a_lookup_by_message_id_seeks_the_primary_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::test_support::migrated(dir.path());
        let sql = format!("DELETE FROM queue_items WHERE {} AND message_id = ?1", *ANY_QUEUE);
        let plan = crate::test_support::query_plan(&conn, &sql, ["m"]);
        assert!(
            plan.iter().any(|p| p.contains("SEARCH queue_items USING PRIMARY KEY (queue=? AND message_id=?)")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.starts_with("SCAN")), "{plan:?}");
    }
}

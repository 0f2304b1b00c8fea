//! `MessageStore` on SQLite: storing a message and enqueuing it on every queue
//! subscribed to its topic happen in one transaction, so no accepted message can be
//! stored but never queued.

use async_trait::async_trait;
use rez_core::MessageId;
use rez_core::message::Message;
use rez_core::ports::{
    HourOutcomes, IDEMPOTENCY_WINDOW, MessageFilter, MessageStore, Page, StoreError, StoreResult, Submitted,
};
use rez_core::routing::{primary_queue, topic_for};
use rez_core::status::Status;
use rez_core::time::Timestamp;
use rusqlite::OptionalExtension;
use rusqlite::types::Value as SqlValue;

use crate::LocalStore;
use crate::codec::{MESSAGE_COLUMNS, insert_message_encoded, json_object, load_message, message_from_row, set_status};
use crate::db::WriteCtx;
use crate::db::sql;
use crate::handoff::Claim;
use crate::queues::ANY_QUEUE;

#[async_trait]
impl MessageStore for LocalStore {
    async fn submit(&self, message: Message) -> StoreResult<Submitted> {
        if message.status != Status::Created {
            return Err(StoreError::Conflict(format!("a new message must be `created`, not `{}`", message.status)));
        }
        let now = self.clock.now();
        // Encoded here, on the caller's thread: the writer thread serializes every write.
        let encoded = EncodedMessage::new(message, now)?;
        let Some(claim) = self.handoff.claim(primary_queue(encoded.message.message_type), now.timestamp_millis())
        else {
            return self.db.write_unisolated(move |ctx| submit_encoded(ctx, encoded, now, None)).await;
        };
        let owner = self.instance.clone();
        let for_job = claim.clone();
        let result =
            self.db.write_unisolated(move |ctx| submit_encoded(ctx, encoded, now, Some((&for_job, &owner)))).await;
        match result {
            Ok(Submitted::Created(stored)) => {
                // The answer is the message as accepted (`queued`); in the same
                // transaction it was then claimed for our consumer, so it is stored
                // `processing`, and is handed over now.
                let mut accepted = stored.clone();
                accepted.status = Status::Queued;
                let queue = claim.queue;
                self.handoff.deliver(claim, stored);
                self.db.wake(queue);
                self.work_taken.notify_one();
                Ok(Submitted::Created(accepted))
            }
            other => {
                self.handoff.give_back(&claim);
                other
            }
        }
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        let id = id.as_str().to_owned();
        self.db.read(move |c| load_message(c, &id)).await
    }

    async fn list_messages(&self, filter: &MessageFilter) -> StoreResult<Page<Message>> {
        let f = filter.clone();
        self.db
            .read(move |c| {
                let mut clauses: Vec<String> = Vec::new();
                let mut params: Vec<SqlValue> = Vec::new();
                if let Some(s) = f.status {
                    // A literal, not a parameter: only then can SQLite see that the
                    // partial status index covers it (an enum's fixed name, never input).
                    clauses.push(status_is(s));
                }
                if let Some(t) = f.message_type {
                    clauses.push("message_type = ?".into());
                    params.push(SqlValue::Text(t.as_str().into()));
                }
                if let Some(s) = f.stage {
                    clauses.push("stage = ?".into());
                    params.push(SqlValue::Text(s.as_str().into()));
                }
                if let Some(b) = f.created_by {
                    clauses.push("created_by = ?".into());
                    params.push(SqlValue::Text(b.as_str().into()));
                }
                if let Some(a) = f.created_after {
                    clauses.push("created_ms >= ?".into());
                    params.push(SqlValue::Integer(a.timestamp_millis()));
                }
                if let Some(b) = f.created_before {
                    clauses.push("created_ms < ?".into());
                    params.push(SqlValue::Integer(b.timestamp_millis()));
                }
                if let Some(cur) = &f.cursor {
                    let id = MessageId::parse(cur).map_err(|_| StoreError::InvalidCursor)?;
                    clauses.push("id < ?".into());
                    params.push(SqlValue::Text(id.as_str().into()));
                }
                let limit = f.limit.clamp(1, 100);
                let where_ =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let q = format!("SELECT {MESSAGE_COLUMNS} FROM messages {where_} ORDER BY id DESC LIMIT {}", limit + 1);
                let mut stmt = c.prepare(&q).map_err(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(sql)?;
                let mut items = Vec::new();
                while let Some(r) = rows.next().map_err(sql)? {
                    items.push(message_from_row(r, 0)?);
                }
                let next_cursor = if items.len() > limit {
                    items.truncate(limit);
                    items.last().map(|m| m.id.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            })
            .await
    }

    async fn hourly_outcomes(&self, since: Timestamp, hours: u32) -> StoreResult<Vec<HourOutcomes>> {
        // Ids start with their creation time: the hours are one range of the primary key.
        let bound = |t: Timestamp| {
            let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
            format!("{}_{}", MessageId::PREFIX, ulid::Ulid::from_parts(ms, 0))
        };
        let until = since + chrono::TimeDelta::hours(hours.into());
        let (lo, hi, since_ms) = (bound(since), bound(until), since.timestamp_millis());
        let mut out = HourOutcomes::empty(since, hours);
        let counts = self
            .db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT (created_ms - ?1) / 3600000, SUM(status = 'completed'), \
                         SUM(status IN ('failed', 'dead_lettered')) \
                         FROM messages WHERE id >= ?2 AND id < ?3 AND created_ms >= ?1 GROUP BY 1",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(rusqlite::params![since_ms, lo, hi], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql)
            })
            .await?;
        for (h, completed, failed) in counts {
            if let Some(slot) = usize::try_from(h).ok().and_then(|h| out.get_mut(h)) {
                slot.completed = u64::try_from(completed).unwrap_or(0);
                slot.failed = u64::try_from(failed).unwrap_or(0);
            }
        }
        Ok(out)
    }

    async fn retry(&self, id: &MessageId) -> StoreResult<Message> {
        let id = id.clone();
        let now = self.clock.now();
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                let mut m = load_message(tx, id.as_str())?.ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
                if !matches!(m.status, Status::Failed | Status::DeadLettered) {
                    return Err(StoreError::Conflict(format!(
                        "only failed or dead-lettered messages can be retried; {id} is {}",
                        m.status
                    )));
                }
                // Counted as a retry: a later first receive is not the message's first
                // delivery (see `MessageStore::retry`).
                set_status(tx, &mut m, Status::Queued, None, true, now)?;
                let queue = primary_queue(m.message_type);
                tx.execute(&format!("DELETE FROM queue_items WHERE {} AND message_id = ?1", *ANY_QUEUE), [id.as_str()])
                    .map_err(sql)?;
                tx.execute(
                    "INSERT INTO queue_items (queue, message_id, source_queue, visible_ms, enqueued_ms) VALUES (?1, ?2, ?1, ?3, ?3)",
                    rusqlite::params![queue.as_str(), id.as_str(), now.timestamp_millis()],
                )
                .map_err(sql)?;
                ctx.wake(queue);
                Ok(m)
            })
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read(|c| {
                c.query_row("SELECT count(*) FROM instances", [], |r| r.get::<_, i64>(0)).map_err(sql)?;
                Ok(())
            })
            .await?;
        // The writer must answer too: a deep health check that passes while writes hang is a lie.
        self.db.write(|_| Ok(())).await
    }
}

/// The SQL condition `status = '<status>'`, with the status as a literal.
fn status_is(status: Status) -> String {
    format!("status = '{}'", status.as_str())
}

/// A new message made ready for [`submit_encoded`]: status `queued`, `updated_date` set,
/// JSON columns encoded. Building it does no I/O, so callers can do it before handing
/// the write to the writer thread.
pub(crate) struct EncodedMessage {
    pub message: Message,
    payload: String,
    arguments: String,
}

impl EncodedMessage {
    pub fn new(message: Message, now: rez_core::time::Timestamp) -> StoreResult<Self> {
        let mut message = message;
        message.status = Status::Created.transition(Status::Queued)?;
        message.updated_date = now;
        let payload = json_object(&message.payload)?;
        let arguments = json_object(&message.arguments)?;
        Ok(Self { message, payload, arguments })
    }
}

/// Store an encoded message and enqueue it on its topic's queues inside the caller's
/// transaction, or return the earlier message with the same idempotency key (24 h window).
///
/// With a claim (see `handoff.rs`), the item on the claimed queue is written as received
/// by `owner` (receipt, receive count 1, the claim's visibility), the message is stored
/// `processing`, and `owner`'s lease is renewed with it, exactly as a receive would; the
/// returned message is the stored one. Nobody is woken for that queue: the caller hands
/// the delivery over first.
///
/// Every check comes before the first write, and the first write is the message itself
/// (a duplicate id fails there, with nothing written), so this can run without a
/// savepoint ([`crate::db::Db::write_unisolated`]).
pub(crate) fn submit_encoded(
    ctx: &mut WriteCtx<'_>,
    encoded: EncodedMessage,
    now: rez_core::time::Timestamp,
    claim: Option<(&Claim, &str)>,
) -> StoreResult<Submitted> {
    let tx = ctx.tx;
    let now_ms = now.timestamp_millis();
    let EncodedMessage { message, payload, arguments } = encoded;
    if let Some(key) = &message.idempotency_key {
        let held: Option<(String, i64)> = tx
            .prepare_cached("SELECT message_id, created_ms FROM idempotency_keys WHERE key = ?1")
            .map_err(sql)?
            .query_row([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql)?;
        if let Some((id, created_ms)) = held
            && created_ms > (now - IDEMPOTENCY_WINDOW).timestamp_millis()
            && let Some(existing) = load_message(tx, &id)?
        {
            return Ok(Submitted::Existing(existing));
        }
        // Free, expired, or its message is gone: the key is this message's now (written
        // after the message below).
    }
    let mut message = message;
    let claim = claim.filter(|(c, _)| c.queue == primary_queue(message.message_type));
    if claim.is_some() {
        message.status = message.status.transition(Status::Processing)?;
    }
    insert_message_encoded(tx, &message, &payload, &arguments)?;
    if let Some(key) = &message.idempotency_key {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (key, message_id, created_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT(key) DO UPDATE SET message_id = excluded.message_id, created_ms = excluded.created_ms",
        )
        .map_err(sql)?
        .execute(rusqlite::params![key.as_str(), message.id.as_str(), now_ms])
        .map_err(sql)?;
    }
    for queue in topic_for(message.message_type).subscribers() {
        match claim {
            Some((c, owner)) if c.queue == *queue => {
                tx.prepare_cached(
                    "INSERT INTO queue_items (queue, message_id, source_queue, visible_ms, enqueued_ms, receive_count, \
                     receipt, owner) VALUES (?1, ?2, ?1, ?3, ?4, 1, ?5, ?6)",
                )
                .map_err(sql)?
                .execute(rusqlite::params![queue.as_str(), message.id.as_str(), c.visible_ms, now_ms, c.receipt, owner])
                .map_err(sql)?;
                crate::lease::renew(tx, owner, now_ms)?;
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO queue_items (queue, message_id, source_queue, visible_ms, enqueued_ms) \
                     VALUES (?1, ?2, ?1, ?3, ?3)",
                )
                .map_err(sql)?
                .execute(rusqlite::params![queue.as_str(), message.id.as_str(), now_ms])
                .map_err(sql)?;
                ctx.wake(*queue);
            }
        }
    }
    Ok(Submitted::Created(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partial status index serves a list filtered on any status but `completed`
    /// (which walks the table newest first); the filter must be written so that SQLite
    /// can tell (`status_is`).
    #[test]
    fn a_status_filter_uses_the_partial_index_except_for_completed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::test_support::migrated(dir.path());
        for status in Status::ALL {
            let q = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {} AND id < ?1 ORDER BY id DESC LIMIT 11",
                status_is(status)
            );
            let plan = crate::test_support::query_plan(&conn, &q, ["z"]);
            let indexed = plan.iter().any(|p| p.contains("INDEX messages_by_status"));
            assert_eq!(indexed, status != Status::Completed, "{status}: {plan:?}");
        }
    }
}

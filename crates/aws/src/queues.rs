//! `Queues` on SQS, with DynamoDB as the record of each message's status. SQS holds the
//! deliveries (visibility timeout, receive counts, a DLQ with a redrive policy of 3 as
//! the backstop when a consumer dies); the message item holds what SQS cannot tell us:
//! the current receipt (so a stale receipt is refused, as locally), receives given back
//! by `release`, and the dead-letter record that `dead_letters`, `redrive` and
//! `delete_dead_letter` work from.
//!
//! Where SQS differs from the local queues:
//! - visibility and backoff are whole seconds (rounded up);
//! - `stats.depth` counts visible and delayed messages; a message backing off after a
//!   failure counts as in flight (SQS cannot tell the two apart);
//! - a DLQ copy can only be removed by receiving it, so redrive and delete look for it
//!   with a bounded number of receives on the DLQ; DynamoDB stays the source of truth.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use rand::Rng;
use rez_core::MessageId;
use rez_core::message::Message;
use rez_core::notify::NotifyPayload;
use rez_core::ports::{
    AttemptOutcome, DeadLetter, Delivery, FailOutcome, FailureKind, Inbox, MAX_BATCH, MAX_RECEIVES, Page, QueueStats,
    Queues, RedriveSelector, StoreError, StoreResult,
};
use rez_core::routing::{QueueName, primary_queue};
use rez_core::status::Status;

use crate::AwsStore;
use crate::codec::s;
use crate::config::QueueAddress;
use crate::error::backend;
use crate::messages::{
    DeadLetterInfo, Record, TYPE_ATTR, modify, record_from_item, restore, status_listing, status_query,
};
use crate::shards::{Order, ShardedListing, in_any_partition};

/// Longest visibility timeout SQS accepts (12 h).
const MAX_VISIBILITY_SECONDS: i32 = 43_200;
/// Receives on a DLQ spent looking for the copies to remove.
const DLQ_SEARCH_ROUNDS: usize = 10;
/// Longest error text kept on a message.
const MAX_ERROR_CHARS: usize = 2000;

fn address(store: &AwsStore, q: QueueName) -> StoreResult<&QueueAddress> {
    store.names.queue(q).ok_or_else(|| StoreError::Unavailable(format!("no SQS queue configured for {q}")))
}

pub(crate) fn url(store: &AwsStore, q: QueueName, dlq: bool) -> StoreResult<&str> {
    let a = address(store, q)?;
    Ok(if dlq { &a.dlq_url } else { &a.url })
}

/// Whole seconds for SQS, rounded up, within SQS's bounds.
fn seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(MAX_VISIBILITY_SECONDS).min(MAX_VISIBILITY_SECONDS)
}

/// Backoff after the `receive_count`-th failed receive: base × 2^(n-1), capped, ±20 %
/// jitter (as locally).
fn backoff(store: &AwsStore, receive_count: u32) -> Duration {
    let cfg = store.queue_config;
    let exp = 2u32.saturating_pow(receive_count.saturating_sub(1).min(20));
    let base = cfg.backoff_base.saturating_mul(exp).min(cfg.backoff_max);
    base.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Just enough of a message body to find the record.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: MessageId,
}

fn sqs_attr(v: &str) -> StoreResult<MessageAttributeValue> {
    MessageAttributeValue::builder().data_type("String").string_value(v).build().map_err(|e| backend("sqs attr", e))
}

/// Send `m` as the body of a new SQS message on `queue` (or its DLQ, with the source
/// queue and error as message attributes).
pub(crate) async fn send_message(
    store: &AwsStore,
    queue: QueueName,
    to_dlq: bool,
    m: &Message,
    error: Option<&str>,
) -> StoreResult<()> {
    let body = serde_json::to_string(m).map_err(|e| StoreError::Corrupt(format!("cannot encode message: {e}")))?;
    send_body(store, queue, to_dlq, body, error).await
}

async fn send_body(
    store: &AwsStore,
    queue: QueueName,
    to_dlq: bool,
    body: String,
    error: Option<&str>,
) -> StoreResult<()> {
    let mut req = store.clients.sqs.send_message().queue_url(url(store, queue, to_dlq)?).message_body(body);
    if to_dlq {
        req = req.message_attributes("source_queue", sqs_attr(queue.as_str())?);
        if let Some(e) = error.filter(|e| !e.is_empty()) {
            req = req.message_attributes("error", sqs_attr(e)?);
        }
    }
    req.send().await.map_err(|e| backend("sqs send_message", e))?;
    Ok(())
}

async fn delete_message(store: &AwsStore, queue: QueueName, dlq: bool, receipt: &str) -> StoreResult<()> {
    store
        .clients
        .sqs
        .delete_message()
        .queue_url(url(store, queue, dlq)?)
        .receipt_handle(receipt)
        .send()
        .await
        .map_err(|e| backend("sqs delete_message", e))?;
    Ok(())
}

/// Delete an SQS message whose fate is already recorded; a failure only means a copy
/// that will be dropped when it is received again.
pub(crate) async fn delete_quietly(store: &AwsStore, queue: QueueName, dlq: bool, receipt: &str) {
    if let Err(e) = delete_message(store, queue, dlq, receipt).await {
        tracing::warn!(queue = %queue, dlq, error = %e, "could not delete an SQS message; it will be dropped on receipt");
    }
}

pub(crate) async fn change_visibility(
    store: &AwsStore,
    queue: QueueName,
    dlq: bool,
    receipt: &str,
    secs: i32,
) -> StoreResult<()> {
    store
        .clients
        .sqs
        .change_message_visibility()
        .queue_url(url(store, queue, dlq)?)
        .receipt_handle(receipt)
        .visibility_timeout(secs)
        .send()
        .await
        .map_err(|e| backend("sqs change_message_visibility", e))?;
    Ok(())
}

/// Remove the DLQ copies of `ids` from `queue`'s DLQ: receive from the DLQ a bounded
/// number of times, delete the copies of those ids, and make every other message
/// visible again. Best effort: a copy not found stays in the DLQ, but its record no
/// longer lists it as a dead letter, and if it is ever redriven by hand the consumer
/// drops it. Returns how many copies were deleted.
pub(crate) async fn purge_dead_letter_copies(store: &AwsStore, queue: QueueName, ids: &[MessageId]) -> usize {
    match purge(store, queue, ids).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(queue = %queue, error = %e, "could not remove dead-letter copies from the DLQ");
            0
        }
    }
}

async fn purge(store: &AwsStore, queue: QueueName, ids: &[MessageId]) -> StoreResult<usize> {
    let dlq_url = url(store, queue, true)?;
    let mut remaining: Vec<&MessageId> = ids.iter().collect();
    let mut held = Vec::new();
    let mut deleted = 0;
    for _ in 0..DLQ_SEARCH_ROUNDS {
        if remaining.is_empty() {
            break;
        }
        let out = store
            .clients
            .sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| backend("sqs receive_message (dlq)", e))?;
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let Some(receipt) = m.receipt_handle else { continue };
            let id = m.body.as_deref().and_then(|b| serde_json::from_str::<Envelope>(b).ok()).map(|e| e.id);
            match id {
                Some(id) if ids.contains(&id) => {
                    delete_message(store, queue, true, &receipt).await?;
                    remaining.retain(|r| **r != id);
                    deleted += 1;
                }
                _ => held.push(receipt),
            }
        }
    }
    for receipt in held {
        if let Err(e) = change_visibility(store, queue, true, &receipt, 0).await {
            tracing::debug!(queue = %queue, error = %e, "could not release a DLQ message; it reappears in 30 s");
        }
    }
    Ok(deleted)
}

/// What to do with one received SQS message.
enum Verdict {
    Deliver(u32),
    Drop(&'static str),
    DeadLetter(u32),
}

/// Turn one received SQS message into a delivery: read the current record (the body may
/// be stale), mark it `processing` and remember the receipt. Messages without a record,
/// or that cannot be processed any more (completed, dead-lettered), are deleted and
/// skipped; one received more than [`MAX_RECEIVES`] times (net of releases) goes to
/// the DLQ. Shared by [`Queues::receive`] and the Lambda SQS event path.
pub(crate) async fn take_delivery(
    store: &AwsStore,
    queue: QueueName,
    receipt: &str,
    body: &str,
    sqs_receive_count: u32,
) -> StoreResult<Option<Delivery>> {
    let Ok(Envelope { id }) = serde_json::from_str::<Envelope>(body) else {
        tracing::error!(queue = %queue, "unreadable SQS message body; moving it to the DLQ");
        send_body(store, queue, true, body.to_owned(), Some("unreadable message body")).await?;
        delete_quietly(store, queue, false, receipt).await;
        return Ok(None);
    };
    let now = store.clock.now();
    let mut verdict = Verdict::Drop("no such message");
    let changed = modify(store, &id, |rec| {
        let count = sqs_receive_count.saturating_sub(rec.released).max(1);
        let primary = queue == primary_queue(rec.message.message_type);
        if count > MAX_RECEIVES {
            // Received the maximum number of times without an outcome (the consumer
            // crashed each time and SQS's own redrive did not catch it).
            let error = "maximum receives exceeded";
            if primary && rec.message.status.can_transition(Status::DeadLettered) {
                rec.message.status = Status::DeadLettered;
                rec.message.error_message = Some(error.to_owned());
                rec.message.updated_date = now;
            }
            rec.dead_letter = Some(DeadLetterInfo {
                source_queue: queue,
                at: now,
                receive_count: count - 1,
                last_error: Some(error.to_owned()),
            });
            rec.receipt = None;
            verdict = Verdict::DeadLetter(count);
            return Ok(true);
        }
        if primary {
            // Published but not yet marked queued, or redelivered after a failure.
            if matches!(rec.message.status, Status::Created | Status::Failed) {
                rec.message.status = rec.message.status.transition(Status::Queued)?;
            }
            if !rec.message.status.can_transition(Status::Processing) {
                verdict = Verdict::Drop("message cannot be processed any more");
                return Ok(false);
            }
            rec.message.status = Status::Processing;
            rec.message.updated_date = now;
        }
        rec.receipt = Some(receipt.to_owned());
        rec.parked = None;
        verdict = Verdict::Deliver(count);
        Ok(true)
    })
    .await?;
    let Some((rec, _)) = changed else {
        tracing::warn!(message_id = %id, queue = %queue, "queued message has no record; dropping it");
        delete_quietly(store, queue, false, receipt).await;
        return Ok(None);
    };
    match verdict {
        Verdict::Deliver(receive_count) => {
            tracing::debug!(message_id = %id, queue = %queue, receive_count, "received");
            Ok(Some(Delivery { queue, receipt: receipt.to_owned(), message: rec.message, receive_count }))
        }
        Verdict::Drop(why) => {
            tracing::warn!(message_id = %id, queue = %queue, status = %rec.message.status, why, "dropping queued copy");
            delete_quietly(store, queue, false, receipt).await;
            Ok(None)
        }
        Verdict::DeadLetter(receive_count) => {
            tracing::warn!(message_id = %id, queue = %queue, receive_count, "message dead-lettered");
            send_message(store, queue, true, &rec.message, Some("maximum receives exceeded")).await?;
            delete_quietly(store, queue, false, receipt).await;
            Ok(None)
        }
    }
}

/// The stale-receipt error of a delivery that is no longer the current one.
fn stale(d: &Delivery) -> StoreError {
    StoreError::Conflict(format!(
        "receipt for {} on {} is stale (the message was redelivered or removed)",
        d.message.id, d.queue
    ))
}

fn check_receipt(rec: &Record, d: &Delivery) -> StoreResult<()> {
    if rec.receipt.as_deref() == Some(d.receipt.as_str()) { Ok(()) } else { Err(stale(d)) }
}

/// Numeric queue attributes.
async fn queue_numbers(store: &AwsStore, url: &str, names: &[QueueAttributeName]) -> StoreResult<Vec<u64>> {
    let out = store
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| backend("sqs get_queue_attributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    Ok(names.iter().map(|n| attrs.get(n).and_then(|v| v.parse().ok()).unwrap_or(0)).collect())
}

/// Age in seconds of the oldest message of `queue` that is queued, processing or
/// failed, from the messages table (SQS does not expose the age of its oldest message
/// through its API; CloudWatch has `ApproximateAgeOfOldestMessage`). Measured from the
/// message's creation, not from when it entered the queue.
async fn oldest_age(store: &AwsStore, queue: QueueName) -> StoreResult<f64> {
    let types: Vec<&str> =
        rez_core::MessageType::ALL.into_iter().filter(|t| primary_queue(*t) == queue).map(|t| t.as_str()).collect();
    if types.is_empty() {
        return Ok(0.0);
    }
    let (filter, operands) = in_any_partition("#mt", "t", &types);
    let mut query = status_query(store);
    query.filter(&filter, &[("#mt", TYPE_ATTR)], operands);
    // One status after another: each queries its 9 partitions at once.
    let mut firsts = Vec::new();
    for status in [Status::Queued, Status::Processing, Status::Failed] {
        let listing = status_listing("oldest", status, query.clone(), Order::OldestFirst, "dynamodb query oldest");
        let (items, _) = listing.page(&store.clients.dynamodb, 1, None).await?;
        firsts.extend(items.first().and_then(|i| crate::codec::opt_s(i, "id")).map(str::to_owned));
    }
    let Some(id) = firsts.into_iter().min().and_then(|o| MessageId::parse(&o).ok()) else {
        return Ok(0.0);
    };
    let now_ms = store.clock.now().timestamp_millis();
    let created_ms = i64::try_from(id.timestamp_ms()).unwrap_or(now_ms);
    Ok((now_ms - created_ms).max(0) as f64 / 1000.0)
}

/// The listing of dead letters, newest first, of one source queue or of every queue: the
/// `dead_lettered` partitions of `by-status`, filtered on the dead-letter record.
fn dead_letter_listing(store: &AwsStore, queue: Option<QueueName>) -> ShardedListing<'static> {
    let mut query = status_query(store);
    match queue {
        None => query.filter("attribute_exists(#dlq)", &[("#dlq", "dlq")], Vec::new()),
        Some(q) => query.filter("#dlq = :q", &[("#dlq", "dlq")], vec![(":q".into(), s(q.as_str()))]),
    }
    status_listing("dead-letters", Status::DeadLettered, query, Order::NewestFirst, "dynamodb query dead letters")
}

fn dead_letter_of(item: &crate::codec::Item) -> StoreResult<DeadLetter> {
    let rec = record_from_item(item)?;
    let dl = rec.dead_letter.ok_or_else(|| StoreError::Corrupt(format!("{} is not a dead letter", rec.message.id)))?;
    Ok(DeadLetter {
        message: rec.message,
        source_queue: dl.source_queue,
        receive_count: dl.receive_count,
        dead_lettered_date: dl.at,
        last_error: dl.last_error,
    })
}

#[async_trait]
impl Queues for AwsStore {
    async fn receive(&self, queue: QueueName, max: usize, visibility: Duration) -> StoreResult<Vec<Delivery>> {
        let max = max.clamp(1, MAX_BATCH);
        let queue_url = url(self, queue, false)?;
        let mut out = Vec::new();
        let mut first_error = None;
        // A short poll samples a subset of SQS's servers and can come back short: ask
        // again (a few times) while messages keep coming.
        for _ in 0..3 {
            if out.len() >= max {
                break;
            }
            let want = i32::try_from(max - out.len()).unwrap_or(1);
            let resp = self
                .clients
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(want)
                .visibility_timeout(seconds(visibility))
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| backend("sqs receive_message", e))?;
            let msgs = resp.messages.unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let (Some(receipt), Some(body)) = (m.receipt_handle.as_deref(), m.body.as_deref()) else { continue };
                let count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                match take_delivery(self, queue, receipt, body, count).await {
                    Ok(Some(d)) => out.push(d),
                    Ok(None) => {}
                    Err(e) => {
                        // Leave it to reappear after the visibility timeout; deliver the rest.
                        tracing::warn!(queue = %queue, error = %e, "could not take a received message");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    async fn complete(&self, d: &Delivery) -> StoreResult<()> {
        let now = self.clock.now();
        let primary = d.queue == primary_queue(d.message.message_type);
        let done = modify(self, &d.message.id, |rec| {
            check_receipt(rec, d)?;
            if primary {
                rec.message.status = rec.message.status.transition(Status::Completed)?;
                rec.message.updated_date = now;
            }
            rec.receipt = None;
            Ok(true)
        })
        .await?;
        if done.is_none() {
            return Err(StoreError::NotFound(format!("message {}", d.message.id)));
        }
        delete_quietly(self, d.queue, false, &d.receipt).await;
        tracing::debug!(message_id = %d.message.id, queue = %d.queue, "completed");
        Ok(())
    }

    async fn complete_notified(
        &self,
        d: &Delivery,
        notification: &NotifyPayload,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        // Two items in two tables: the record first, so a push is on record before the
        // delivery can be seen as done (and survives a stale receipt).
        self.record(&d.message.id, notification, outcome).await?;
        self.complete(d).await
    }

    async fn fail(&self, d: &Delivery, error: &str, kind: FailureKind) -> StoreResult<FailOutcome> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let now = self.clock.now();
        let primary = d.queue == primary_queue(d.message.message_type);
        let dead = kind == FailureKind::Permanent || d.receive_count >= MAX_RECEIVES;
        let wait = backoff(self, d.receive_count);
        let secs = seconds(wait).max(1);
        let changed = modify(self, &d.message.id, |rec| {
            check_receipt(rec, d)?;
            if primary {
                rec.message.status = rec.message.status.transition(Status::Failed)?;
                rec.message.error_message = Some(error.clone());
                rec.message.retry_count += 1;
                rec.message.updated_date = now;
                if dead {
                    rec.message.status = rec.message.status.transition(Status::DeadLettered)?;
                }
            }
            rec.receipt = None;
            if dead {
                rec.dead_letter = Some(DeadLetterInfo {
                    source_queue: d.queue,
                    at: now,
                    receive_count: d.receive_count,
                    last_error: Some(error.clone()),
                });
            } else {
                rec.parked = Some(d.receipt.clone());
            }
            Ok(true)
        })
        .await?;
        let Some((rec, _)) = changed else { return Err(StoreError::NotFound(format!("message {}", d.message.id))) };
        if dead {
            tracing::warn!(message_id = %d.message.id, queue = %d.queue, receive_count = d.receive_count, "message dead-lettered");
            // The record is the dead letter; the DLQ copy is for SQS tooling. If the
            // send fails the dead letter is still listed and can be redriven.
            if let Err(e) = send_message(self, d.queue, true, &rec.message, Some(&error)).await {
                tracing::warn!(message_id = %d.message.id, error = %e, "could not copy the dead letter to the DLQ");
            }
            delete_quietly(self, d.queue, false, &d.receipt).await;
            return Ok(FailOutcome::DeadLettered);
        }
        change_visibility(self, d.queue, false, &d.receipt, secs).await?;
        let visible_at = now + chrono::Duration::seconds(i64::from(secs));
        tracing::info!(message_id = %d.message.id, queue = %d.queue, receive_count = d.receive_count, backoff_s = secs, "delivery failed; retrying");
        Ok(FailOutcome::Retrying { visible_at })
    }

    /// A new copy of the message, delayed, replaces the received one: SQS counts the
    /// receives of a copy (and its redrive policy dead-letters on them), so only a fresh
    /// copy starts the count afresh. Crashing between the send and the delete leaves two
    /// copies; the later receive supersedes the earlier's receipt, as after any
    /// redelivery.
    async fn defer(&self, d: &Delivery, delay: Duration) -> StoreResult<()> {
        let delay = delay.min(rez_core::ports::MAX_DEFER);
        let done = modify(self, &d.message.id, |rec| {
            check_receipt(rec, d)?;
            rec.receipt = None;
            rec.released = 0;
            Ok(true)
        })
        .await?;
        let Some((rec, _)) = done else { return Err(StoreError::NotFound(format!("message {}", d.message.id))) };
        let body = serde_json::to_string(&rec.message)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode message: {e}")))?;
        self.clients
            .sqs
            .send_message()
            .queue_url(url(self, d.queue, false)?)
            .message_body(body)
            .delay_seconds(seconds(delay))
            .send()
            .await
            .map_err(|e| backend("sqs send_message (deferred)", e))?;
        delete_quietly(self, d.queue, false, &d.receipt).await;
        tracing::info!(message_id = %d.message.id, queue = %d.queue, delay_s = seconds(delay), "delivery deferred");
        Ok(())
    }

    async fn release(&self, d: &Delivery) -> StoreResult<()> {
        let done = modify(self, &d.message.id, |rec| {
            check_receipt(rec, d)?;
            rec.receipt = None;
            rec.released += 1;
            Ok(true)
        })
        .await?;
        if done.is_none() {
            return Err(StoreError::NotFound(format!("message {}", d.message.id)));
        }
        change_visibility(self, d.queue, false, &d.receipt, 0).await
    }

    /// SQS has no way to wait for a message without receiving it, so this polls the
    /// queue's `ApproximateNumberOfMessages` (a cheap attribute read) once a second
    /// until something is visible or `timeout` ends. In Lambda the event source
    /// replaces this entirely.
    async fn wait_for_work(&self, queue: QueueName, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(queue_url) = url(self, queue, false) else {
            tokio::time::sleep(timeout).await;
            return;
        };
        loop {
            if let Ok(v) = queue_numbers(self, queue_url, &[QueueAttributeName::ApproximateNumberOfMessages]).await
                && v.first().is_some_and(|n| *n > 0)
            {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
        }
    }

    async fn stats(&self) -> StoreResult<Vec<QueueStats>> {
        let mut out = Vec::new();
        for q in QueueName::ALL {
            let a = address(self, q)?;
            let main = queue_numbers(
                self,
                &a.url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesDelayed,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ],
            )
            .await?;
            let dlq = queue_numbers(
                self,
                &a.dlq_url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ],
            )
            .await?;
            out.push(QueueStats {
                queue: q,
                depth: main[0] + main[1],
                in_flight: main[2],
                oldest_age_seconds: oldest_age(self, q).await?,
                dlq_depth: dlq.iter().sum(),
            });
        }
        Ok(out)
    }

    async fn dead_letters(
        &self,
        queue: Option<QueueName>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Page<DeadLetter>> {
        let limit = limit.clamp(1, 100);
        let (items, next_cursor) =
            dead_letter_listing(self, queue).page(&self.clients.dynamodb, limit, cursor.as_deref()).await?;
        let items = items.iter().map(dead_letter_of).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn redrive(&self, selector: &RedriveSelector) -> StoreResult<u64> {
        let candidates: Vec<MessageId> = match selector {
            RedriveSelector::Ids(ids) => ids.clone(),
            RedriveSelector::All | RedriveSelector::Queue(_) => {
                let queue = match selector {
                    RedriveSelector::Queue(q) => Some(*q),
                    _ => None,
                };
                dead_letter_listing(self, queue)
                    .all(&self.clients.dynamodb)
                    .await?
                    .iter()
                    .map(|i| record_from_item(i).map(|r| r.message.id))
                    .collect::<StoreResult<_>>()?
            }
        };
        let now = self.clock.now();
        let mut moved = 0u64;
        let mut by_queue: Vec<(QueueName, Vec<MessageId>)> = Vec::new();
        for id in candidates {
            let mut prev: Option<Record> = None;
            let changed = modify(self, &id, |rec| {
                let Some(dl) = &rec.dead_letter else { return Ok(false) };
                if let RedriveSelector::Queue(q) = selector
                    && dl.source_queue != *q
                {
                    return Ok(false);
                }
                prev = Some(rec.clone());
                let source = dl.source_queue;
                if source == primary_queue(rec.message.message_type) {
                    // Counted as a retry (see `Queues::redrive`).
                    rec.message.retry_count += 1;
                    rec.message.updated_date = now;
                    if rec.message.status.can_transition(Status::Queued) {
                        rec.message.status = Status::Queued;
                    }
                }
                rec.dead_letter = None;
                rec.receipt = None;
                rec.parked = None;
                rec.released = 0;
                Ok(true)
            })
            .await?;
            let (Some((rec, true)), Some(prev)) = (changed, prev) else { continue };
            let Some(source) = prev.dead_letter.as_ref().map(|d| d.source_queue) else { continue };
            if let Err(e) = send_message(self, source, false, &rec.message, None).await {
                if !restore(self, &prev, rec.rev).await.unwrap_or(false) {
                    tracing::error!(message_id = %id, "redrive: send failed and the record could not be restored");
                }
                return Err(e);
            }
            match by_queue.iter_mut().find(|(q, _)| *q == source) {
                Some((_, ids)) => ids.push(id.clone()),
                None => by_queue.push((source, vec![id.clone()])),
            }
            moved += 1;
        }
        for (q, ids) in by_queue {
            purge_dead_letter_copies(self, q, &ids).await;
        }
        if moved > 0 {
            tracing::info!(moved, "dead letters redriven");
        }
        Ok(moved)
    }

    async fn delete_dead_letter(&self, id: &MessageId) -> StoreResult<bool> {
        let mut source = None;
        let changed = modify(self, id, |rec| {
            let Some(dl) = rec.dead_letter.take() else { return Ok(false) };
            source = Some(dl.source_queue);
            Ok(true)
        })
        .await?;
        let (Some((_, true)), Some(q)) = (changed, source) else { return Ok(false) };
        purge_dead_letter_copies(self, q, std::slice::from_ref(id)).await;
        tracing::info!(message_id = %id, queue = %q, "dead letter deleted");
        Ok(true)
    }
}

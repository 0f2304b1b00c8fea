//! `MessageStore` on DynamoDB + SNS. DynamoDB cannot enqueue in the same transaction
//! that stores, so a submission is: put the message (and its idempotency key) in one
//! transaction as `created`, publish it to its topic's SNS topic (fanned out to SQS with
//! raw delivery), then mark it `queued`. A message whose publish failed stays `created`
//! and is re-published by [`crate::sweeper`], so nothing accepted is lost for good (one
//! SNS refuses for good is dead-lettered there with the reason, and can be redriven).
//!
//! The message item also carries the queue-side state SQS cannot hold for us: the
//! receipt handle of the current delivery (to refuse stale receipts), how many receives
//! were given back by `release`, and the dead-letter record (DynamoDB is the source of
//! truth for dead letters; the DLQ holds copies). Every write is a full put conditional
//! on the revision read (`rev`), so concurrent writers never overwrite each other.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_sdk_sns::types::MessageAttributeValue;
use rez_core::MessageId;
use rez_core::message::{IdempotencyKey, Message};
use rez_core::ports::{IDEMPOTENCY_WINDOW, MessageFilter, MessageStore, Page, StoreError, StoreResult, Submitted};
use rez_core::routing::{QueueName, primary_queue, topic_for};
use rez_core::status::Status;
use rez_core::time::Timestamp;

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, get_s, n, opt_n, opt_s, s};
use crate::error::backend;
use crate::publish_refusal::{Attribute, PublishError, oversize_reason, permanent_refusal, publish_size};
use crate::shards::{IndexQuery, LEGACY_PK, LIST_PK_ATTR, Order, ShardedListing, in_any_partition, list_pk, sharded};

/// GSIs of the messages table (see `deploy/template.yaml`). Each is partitioned by a
/// sharded key attribute (`<value>#<shard>`, the shard from the message id, see
/// [`crate::shards`]): `by-status` by [`STATUS_ATTR`], `by-type` by [`TYPE_ATTR`],
/// `by-all` by `list_pk`.
pub(crate) const BY_STATUS: &str = "by-status";
pub(crate) const BY_TYPE: &str = "by-type";
pub(crate) const BY_ALL: &str = "by-all";
/// The message's status, sharded: `queued#3`.
pub(crate) const STATUS_ATTR: &str = "status";
/// The message's type, sharded: `notify#5`.
pub(crate) const TYPE_ATTR: &str = "message_type";

/// A listing of one status's partitions of `by-status`, by message id, asking each
/// partition `query` (see [`status_query`]).
pub(crate) fn status_listing(
    listing: &'static str,
    status: Status,
    query: IndexQuery,
    order: Order,
    context: &'static str,
) -> ShardedListing<'static> {
    ShardedListing {
        listing,
        query,
        base: status.as_str(),
        id_attr: "id",
        sort_key: None,
        valid_id: |id| MessageId::parse(id).is_ok(),
        order,
        context,
    }
}

/// The query of a `by-status` partition of the messages table, to narrow or filter.
pub(crate) fn status_query(store: &AwsStore) -> IndexQuery {
    IndexQuery::new(&store.names.messages_table, BY_STATUS, STATUS_ATTR)
}

/// How often a conditional write is retried after losing a race before giving up.
const MAX_RACES: usize = 8;

/// Where a dead letter came from, as stored on its message item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeadLetterInfo {
    pub source_queue: QueueName,
    pub at: Timestamp,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

/// A message item: the message plus its queue-side state.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub message: Message,
    pub rev: i64,
    /// Receipt handle of the delivery in flight, if any.
    pub receipt: Option<String>,
    /// Receipt handle of a failed delivery waiting out its backoff (so `retry` can
    /// remove that copy instead of delivering twice).
    pub parked: Option<String>,
    /// Receives handed back with `release`, subtracted from SQS's receive count.
    pub released: u32,
    /// Set while the message is listed as a dead letter.
    pub dead_letter: Option<DeadLetterInfo>,
}

impl Record {
    pub(crate) fn new(message: Message) -> Self {
        Self { message, rev: 0, receipt: None, parked: None, released: 0, dead_letter: None }
    }
}

fn u32_of(v: Option<i64>) -> u32 {
    v.and_then(|x| u32::try_from(x).ok()).unwrap_or(0)
}

fn ts_ms(ms: i64) -> StoreResult<Timestamp> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("bad timestamp {ms}")))
}

pub(crate) fn record_from_item(item: &Item) -> StoreResult<Record> {
    let message: Message = from_doc(item)?;
    let dead_letter = match opt_s(item, "dlq") {
        None => None,
        Some(q) => Some(DeadLetterInfo {
            source_queue: QueueName::parse(q).ok_or_else(|| StoreError::Corrupt(format!("bad queue `{q}`")))?,
            at: ts_ms(opt_n(item, "dl_ms")?.unwrap_or(0))?,
            receive_count: u32_of(opt_n(item, "dl_count")?),
            last_error: opt_s(item, "dl_error").map(str::to_owned),
        }),
    };
    Ok(Record {
        message,
        rev: opt_n(item, "rev")?.unwrap_or(0),
        receipt: opt_s(item, "receipt").map(str::to_owned),
        parked: opt_s(item, "parked").map(str::to_owned),
        released: u32_of(opt_n(item, "released")?),
        dead_letter,
    })
}

/// The full item of `rec` (its key, index attributes, document and queue state).
pub(crate) fn record_item(rec: &Record) -> StoreResult<Item> {
    let m = &rec.message;
    let mut item = HashMap::from([
        ("id".to_owned(), s(m.id.as_str())),
        (STATUS_ATTR.to_owned(), s(&sharded(m.status.as_str(), m.id.as_str()))),
        (TYPE_ATTR.to_owned(), s(&sharded(m.message_type.as_str(), m.id.as_str()))),
        ("stage".to_owned(), s(m.stage.as_str())),
        ("created_by".to_owned(), s(m.created_by.as_str())),
        (LIST_PK_ATTR.to_owned(), s(&list_pk(m.id.as_str()))),
        ("rev".to_owned(), n(rec.rev)),
        (DOC.to_owned(), doc(m)?),
    ]);
    if let Some(r) = &rec.receipt {
        item.insert("receipt".into(), s(r));
    }
    if let Some(r) = &rec.parked {
        item.insert("parked".into(), s(r));
    }
    if rec.released > 0 {
        item.insert("released".into(), n(i64::from(rec.released)));
    }
    if let Some(dl) = &rec.dead_letter {
        item.insert("dlq".into(), s(dl.source_queue.as_str()));
        item.insert("dl_ms".into(), n(dl.at.timestamp_millis()));
        item.insert("dl_count".into(), n(i64::from(dl.receive_count)));
        if let Some(e) = &dl.last_error {
            item.insert("dl_error".into(), s(e));
        }
    }
    Ok(item)
}

/// A put of a new message, conditional on its id not existing. For transactions that
/// create a message together with other writes (a schedule firing).
pub(crate) fn message_put(store: &AwsStore, m: &Message) -> StoreResult<Put> {
    Put::builder()
        .table_name(&store.names.messages_table)
        .set_item(Some(record_item(&Record::new(m.clone()))?))
        .condition_expression("attribute_not_exists(#id)")
        .expression_attribute_names("#id", "id")
        .build()
        .map_err(|e| backend("build message put", e))
}

/// A put of the idempotency item `key → id`, conditional on the key being free or its
/// 24 h window over. `expires_at` (seconds) is the table's TTL attribute; `expires_ms`
/// is the precise end of the window the condition checks.
pub(crate) fn idempotency_put(
    store: &AwsStore,
    key: &IdempotencyKey,
    id: &MessageId,
    now: Timestamp,
) -> StoreResult<Put> {
    let expires = now + IDEMPOTENCY_WINDOW;
    Put::builder()
        .table_name(&store.names.idempotency_table)
        .item("key", s(key.as_str()))
        .item("message_id", s(id.as_str()))
        .item("created_ms", n(now.timestamp_millis()))
        .item("expires_ms", n(expires.timestamp_millis()))
        .item("expires_at", n(expires.timestamp()))
        .condition_expression("attribute_not_exists(#k) OR #e <= :now")
        .expression_attribute_names("#k", "key")
        .expression_attribute_names("#e", "expires_ms")
        .expression_attribute_values(":now", n(now.timestamp_millis()))
        .build()
        .map_err(|e| backend("build idempotency put", e))
}

/// The message an unexpired idempotency key points at, if any.
pub(crate) async fn message_for_idempotency_key(
    store: &AwsStore,
    key: &IdempotencyKey,
) -> StoreResult<Option<Message>> {
    let out = store
        .clients
        .dynamodb
        .get_item()
        .table_name(&store.names.idempotency_table)
        .key("key", s(key.as_str()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| backend("dynamodb get idempotency key", e))?;
    let Some(item) = out.item else { return Ok(None) };
    let now = store.clock.now().timestamp_millis();
    // TTL deletion is lazy: an expired item can still be read.
    if opt_n(&item, "expires_ms")?.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    let id = get_s(&item, "message_id")?;
    let id = MessageId::parse(id).map_err(|_| StoreError::Corrupt(format!("bad message id `{id}`")))?;
    Ok(get_record(store, &id).await?.map(|r| r.message))
}

/// The message item, read consistently.
pub(crate) async fn get_record(store: &AwsStore, id: &MessageId) -> StoreResult<Option<Record>> {
    let out = store
        .clients
        .dynamodb
        .get_item()
        .table_name(&store.names.messages_table)
        .key("id", s(id.as_str()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| backend("dynamodb get message", e))?;
    out.item.as_ref().map(record_from_item).transpose()
}

/// Write `rec` as revision `rec.rev + 1` if the stored revision is still `rec.rev`.
/// `Ok(false)` if another writer got there first.
pub(crate) async fn put_record(store: &AwsStore, rec: &Record) -> StoreResult<bool> {
    let mut next = rec.clone();
    next.rev = rec.rev + 1;
    let res = store
        .clients
        .dynamodb
        .put_item()
        .table_name(&store.names.messages_table)
        .set_item(Some(record_item(&next)?))
        .condition_expression("#rev = :rev")
        .expression_attribute_names("#rev", "rev")
        .expression_attribute_values(":rev", n(rec.rev))
        .send()
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(backend("dynamodb put message", e)),
    }
}

/// Read-modify-write of one message. `change` edits the record and says whether to
/// write it; it is called again on a fresh read if another writer raced us. Returns the
/// record as stored afterwards and whether it was written; `None` if there is no such
/// message.
pub(crate) async fn modify<F>(store: &AwsStore, id: &MessageId, mut change: F) -> StoreResult<Option<(Record, bool)>>
where
    F: FnMut(&mut Record) -> StoreResult<bool>,
{
    for _ in 0..MAX_RACES {
        let Some(mut rec) = get_record(store, id).await? else { return Ok(None) };
        if !change(&mut rec)? {
            return Ok(Some((rec, false)));
        }
        if put_record(store, &rec).await? {
            rec.rev += 1;
            return Ok(Some((rec, true)));
        }
        tracing::debug!(message_id = %id, "message changed under us; retrying the update");
    }
    Err(StoreError::Conflict(format!("message {id} keeps changing; gave up updating it")))
}

/// Publish `m` to its topic, with the attributes subscribers can filter on. A message
/// over SNS's size limit is refused here, before the call; SNS's own refusals are
/// classified by [`permanent_refusal`].
pub(crate) async fn publish(store: &AwsStore, m: &Message) -> Result<(), PublishError> {
    let topic = topic_for(m.message_type);
    let arn = store
        .names
        .topic_arn(topic)
        .ok_or_else(|| StoreError::Unavailable(format!("no SNS topic configured for {topic}")))?;
    let body = serde_json::to_string(m).map_err(|e| StoreError::Corrupt(format!("cannot encode message: {e}")))?;
    let attributes = [
        Attribute { name: "message_type", data_type: "String", value: m.message_type.as_str() },
        Attribute { name: "stage", data_type: "String", value: m.stage.as_str() },
        Attribute { name: "id", data_type: "String", value: m.id.as_str() },
    ];
    if let Some(reason) = oversize_reason(publish_size(&body, &attributes)) {
        return Err(PublishError::Refused(reason));
    }
    let mut request = store.clients.sns.publish().topic_arn(arn).message(body);
    for a in &attributes {
        let value = MessageAttributeValue::builder()
            .data_type(a.data_type)
            .string_value(a.value)
            .build()
            .map_err(|e| backend("sns attr", e))?;
        request = request.message_attributes(a.name, value);
    }
    if let Err(e) = request.send().await {
        if let Some(reason) = e.as_service_error().and_then(permanent_refusal) {
            return Err(PublishError::Refused(reason));
        }
        return Err(backend("sns publish", e).into());
    }
    tracing::debug!(message_id = %m.id, topic = %topic, "published");
    Ok(())
}

/// Publish a stored `created` message and mark it `queued`. The published body is the
/// message as it will be stored once queued.
///
/// `Err` means the publish failed: the message stays `created` (durable) and the
/// sweeper publishes it later, or dead-letters it if the failure is
/// [`PublishError::Refused`]. If the publish succeeded but marking it queued failed,
/// this still answers `Ok` with the queued message (it is on its way; the sweeper may
/// publish it once more, which at-least-once consumers tolerate).
pub(crate) async fn publish_and_mark_queued(store: &AwsStore, m: Message) -> Result<Message, PublishError> {
    let now = store.clock.now();
    let mut queued = m;
    queued.status = queued.status.transition(Status::Queued).map_err(StoreError::from)?;
    queued.updated_date = now;
    publish(store, &queued).await?;
    let marked = modify(store, &queued.id, |rec| {
        if rec.message.status != Status::Created {
            // A consumer (or the sweeper) moved it on already.
            return Ok(false);
        }
        rec.message.status = Status::Queued;
        rec.message.updated_date = now;
        Ok(true)
    })
    .await;
    match marked {
        Ok(Some((rec, _))) => Ok(rec.message),
        Ok(None) => Err(StoreError::NotFound(format!("message {}", queued.id)).into()),
        Err(e) => {
            tracing::warn!(message_id = %queued.id, error = %e, "published but could not mark queued; the sweeper will settle it");
            Ok(queued)
        }
    }
}

/// Put `prev` back over the record written as revision `current_rev` (undo of a change
/// whose side effect, such as a send, failed).
pub(crate) async fn restore(store: &AwsStore, prev: &Record, current_rev: i64) -> StoreResult<bool> {
    let mut back = prev.clone();
    back.rev = current_rev;
    put_record(store, &back).await
}

/// The lowest message id minted at `t` (ids sort by creation time).
fn id_floor(t: Timestamp) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    format!("{}_{}", MessageId::PREFIX, ulid::Ulid::from_parts(ms, 0))
}

/// The highest message id minted before `t`, or `None` if there is none.
fn id_ceiling_before(t: Timestamp) -> Option<String> {
    let ms = u64::try_from(t.timestamp_millis()).ok()?.checked_sub(1)?;
    Some(format!("{}_{}", MessageId::PREFIX, ulid::Ulid::from_parts(ms, u128::MAX)))
}

#[async_trait]
impl MessageStore for AwsStore {
    async fn submit(&self, message: Message) -> StoreResult<Submitted> {
        if message.status != Status::Created {
            return Err(StoreError::Conflict(format!("a new message must be `created`, not `{}`", message.status)));
        }
        let now = self.clock.now();
        let mut items = vec![TransactWriteItem::builder().put(message_put(self, &message)?).build()];
        if let Some(key) = &message.idempotency_key {
            items.push(TransactWriteItem::builder().put(idempotency_put(self, key, &message.id, now)?).build());
        }
        let res = self.clients.dynamodb.transact_write_items().set_transact_items(Some(items)).send().await;
        if let Err(e) = res {
            let cancelled = e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception());
            if !cancelled {
                return Err(backend("dynamodb submit", e));
            }
            // A condition failed: the key is taken (the usual case) or the id exists.
            if let Some(key) = &message.idempotency_key
                && let Some(existing) = message_for_idempotency_key(self, key).await?
            {
                tracing::debug!(message_id = %existing.id, "idempotency key already used; returning the first message");
                return Ok(Submitted::Existing(existing));
            }
            return Err(StoreError::Conflict(format!("message {} or its idempotency key already exists", message.id)));
        }
        tracing::info!(message_id = %message.id, message_type = %message.message_type, "message stored");
        let id = message.id.clone();
        match publish_and_mark_queued(self, message.clone()).await {
            Ok(m) => Ok(Submitted::Created(m)),
            // Stored durably; the sweeper publishes it. Answering with the `created`
            // message is honest: it will be delivered, just not yet.
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "publish failed; the sweeper will publish the message");
                Ok(Submitted::Created(message))
            }
        }
    }

    async fn get_message(&self, id: &MessageId) -> StoreResult<Option<Message>> {
        Ok(get_record(self, id).await?.map(|r| r.message))
    }

    async fn list_messages(&self, f: &MessageFilter) -> StoreResult<Page<Message>> {
        let limit = f.limit.clamp(1, 100);
        let (listing, index, pk_attr, base) = match (f.status, f.message_type) {
            (Some(st), _) => ("messages-by-status", BY_STATUS, STATUS_ATTR, st.as_str()),
            (None, Some(t)) => ("messages-by-type", BY_TYPE, TYPE_ATTR, t.as_str()),
            (None, None) => ("messages", BY_ALL, LIST_PK_ATTR, LEGACY_PK),
        };
        let mut query = IndexQuery::new(&self.names.messages_table, index, pk_attr);
        let lo = f.created_after.map(id_floor);
        let hi = match f.created_before {
            None => None,
            Some(t) => match id_ceiling_before(t) {
                Some(h) => Some(h),
                None => return Ok(Page { items: Vec::new(), next_cursor: None }),
            },
        };
        let id = [("#id", "id")];
        match (lo, hi) {
            (Some(lo), Some(hi)) => {
                if lo > hi {
                    return Ok(Page { items: Vec::new(), next_cursor: None });
                }
                query.key("#id BETWEEN :lo AND :hi", &id, vec![(":lo".into(), s(&lo)), (":hi".into(), s(&hi))]);
            }
            (Some(lo), None) => query.key("#id >= :lo", &id, vec![(":lo".into(), s(&lo))]),
            (None, Some(hi)) => query.key("#id <= :hi", &id, vec![(":hi".into(), s(&hi))]),
            (None, None) => {}
        }
        if let (Some(_), Some(t)) = (f.status, f.message_type) {
            let (condition, operands) = in_any_partition("#mt", "mt", &[t.as_str()]);
            query.filter(&condition, &[("#mt", TYPE_ATTR)], operands);
        }
        if let Some(st) = f.stage {
            query.filter_eq("stage", s(st.as_str()));
        }
        if let Some(by) = f.created_by {
            query.filter_eq("created_by", s(by.as_str()));
        }
        let listing = ShardedListing {
            listing,
            query,
            base,
            id_attr: "id",
            sort_key: None,
            valid_id: |id| MessageId::parse(id).is_ok(),
            order: Order::NewestFirst,
            context: "dynamodb query messages",
        };
        let (items, next_cursor) = listing.page(&self.clients.dynamodb, limit, f.cursor.as_deref()).await?;
        let items = items.iter().map(|i| record_from_item(i).map(|r| r.message)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn retry(&self, id: &MessageId) -> StoreResult<Message> {
        let now = self.clock.now();
        let mut prev: Option<Record> = None;
        let changed = modify(self, id, |rec| {
            if !matches!(rec.message.status, Status::Failed | Status::DeadLettered) {
                return Err(StoreError::Conflict(format!(
                    "only failed or dead-lettered messages can be retried; {id} is {}",
                    rec.message.status
                )));
            }
            prev = Some(rec.clone());
            rec.message.status = rec.message.status.transition(Status::Queued)?;
            // Counted as a retry (see `MessageStore::retry`).
            rec.message.retry_count += 1;
            rec.message.updated_date = now;
            rec.receipt = None;
            rec.parked = None;
            rec.released = 0;
            rec.dead_letter = None;
            Ok(true)
        })
        .await?;
        let Some((rec, _)) = changed else { return Err(StoreError::NotFound(format!("message {id}"))) };
        let Some(prev) = prev else { return Err(StoreError::NotFound(format!("message {id}"))) };
        let queue = primary_queue(rec.message.message_type);
        if let Err(e) = crate::queues::send_message(self, queue, false, &rec.message, None).await {
            if !restore(self, &prev, rec.rev).await.unwrap_or(false) {
                tracing::error!(message_id = %id, "retry: send failed and the record could not be restored");
            }
            return Err(e);
        }
        // Remove the copies the fresh one replaces, so it is not delivered twice.
        if let Some(receipt) = &prev.parked {
            crate::queues::delete_quietly(self, queue, false, receipt).await;
        }
        if let Some(dl) = &prev.dead_letter {
            crate::queues::purge_dead_letter_copies(self, dl.source_queue, std::slice::from_ref(id)).await;
        }
        tracing::info!(message_id = %id, queue = %queue, "message retried");
        Ok(rec.message)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.clients
            .dynamodb
            .describe_table()
            .table_name(&self.names.messages_table)
            .send()
            .await
            .map_err(|e| backend("dynamodb describe_table", e))?;
        Ok(())
    }
}

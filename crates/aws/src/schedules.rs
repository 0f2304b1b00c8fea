//! `ScheduleStore` on DynamoDB (the schedules table), the AWS counterpart of
//! `rez_local::schedules`. On AWS EventBridge Scheduler decides *when* to fire; this
//! store keeps the definitions and makes each firing exactly-once: the schedule's new
//! state, the message and its idempotency key commit in one `TransactWriteItems`,
//! conditional on the version the firing was planned from.
//!
//! Item layout (index attributes beside the schedule's JSON in `doc`):
//!
//! - `id` (hash key), `version` (N; every write is conditional on it), `status`,
//!   `target_type`;
//! - `list_pk = "all"` only while the schedule is not deleted: the `by-all` index lists
//!   exactly what an unfiltered listing shows (deleted schedules are listed only when
//!   asked for by status, through `by-status`);
//! - `due_pk = "due"` and `due_at` (N, epoch ms, [`due_at`] of the next fire time) only
//!   while the schedule is active with a next fire time: the sparse `by-due` index is
//!   the engine's queue of due schedules.
//!
//! Every write is a whole-item put computed from the schedule, so index attributes
//! that no longer apply are dropped by construction.
//!
//! The in-process engine's lease (`acquire_engine_lease`) lives in the same table as
//! the item `id = "lease#engine"`, which is not a schedule id and carries none of the
//! index attributes, so no listing or due query ever sees it.
//!
//! Reads through indexes are eventually consistent on AWS (a just-written schedule may
//! be missing from a listing or due query for a moment); `get_schedule` and every
//! conditional write are strongly consistent, which is what correctness rests on.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use rez_core::ScheduleId;
use rez_core::ports::{FireOutcome, Firing, Page, ScheduleFilter, ScheduleStore, StoreError, StoreResult};
use rez_core::schedules::{Schedule, ScheduleStatus, due_at};
use rez_core::time::Timestamp;

use crate::AwsStore;
use crate::codec::{DOC, Item, decode_cursor, doc, encode_cursor, from_doc, n, opt_n, query_until, s};
use crate::error::backend;
use crate::messages::{idempotency_put, message_for_idempotency_key, message_put, publish_and_mark_queued};

const BY_STATUS: &str = "by-status";
const BY_ALL: &str = "by-all";
const BY_DUE: &str = "by-due";
const LIST_PK: &str = "all";
const DUE_PK: &str = "due";
/// The id of the engine lease item (never a valid `ScheduleId`).
const LEASE_ID: &str = "lease#engine";
/// How often a firing is retried when DynamoDB cancels it for a concurrent transaction
/// on the same items (not a condition failure: the outcome is still unknown).
const TRANSACTION_CONFLICT_RETRIES: u32 = 5;

fn due_ms(s: &Schedule) -> Option<i64> {
    match (s.status, s.next_fire_at) {
        (ScheduleStatus::Active, Some(next)) => {
            Some(due_at(&s.id, next, s.flexible_time_window_minutes).timestamp_millis())
        }
        _ => None,
    }
}

fn version_n(v: u64) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(v.to_string())
}

/// The whole item of `sc`.
fn item_of(sc: &Schedule) -> StoreResult<Item> {
    let mut item = Item::new();
    item.insert("id".into(), s(sc.id.as_str()));
    item.insert("version".into(), version_n(sc.version));
    item.insert("status".into(), s(sc.status.as_str()));
    item.insert("target_type".into(), s(sc.target_type.as_str()));
    item.insert(DOC.into(), doc(sc)?);
    if sc.status != ScheduleStatus::Deleted {
        item.insert("list_pk".into(), s(LIST_PK));
    }
    if let Some(ms) = due_ms(sc) {
        item.insert("due_pk".into(), s(DUE_PK));
        item.insert("due_at".into(), n(ms));
    }
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<Schedule> {
    from_doc(item)
}

/// A put of `sc`, conditional on the stored version being `expected` (or, with `None`,
/// on the id being new).
fn schedule_put(store: &AwsStore, sc: &Schedule, expected: Option<u64>) -> StoreResult<Put> {
    let put = Put::builder()
        .table_name(&store.names.schedules_table)
        .set_item(Some(item_of(sc)?))
        .expression_attribute_names("#id", "id");
    let put = match expected {
        None => put.condition_expression("attribute_not_exists(#id)"),
        Some(v) => put
            .condition_expression("attribute_exists(#id) AND #v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", version_n(v)),
    };
    put.build().map_err(|e| backend("build schedule put", e))
}

fn conflict(id: &ScheduleId) -> StoreError {
    StoreError::Conflict(format!("schedule {id} changed concurrently; reload and retry"))
}

/// The listing cursor: the id of the last schedule returned, made opaque.
fn encode_list_cursor(id: &ScheduleId) -> StoreResult<String> {
    let mut key = Item::new();
    key.insert("id".into(), s(id.as_str()));
    encode_cursor(&key)
}

fn decode_list_cursor(cursor: &str) -> StoreResult<ScheduleId> {
    let key = decode_cursor(cursor)?;
    let raw = key.get("id").and_then(|v| v.as_s().ok()).ok_or(StoreError::InvalidCursor)?;
    ScheduleId::parse(raw).map_err(|_| StoreError::InvalidCursor)
}

/// How a firing's transaction was cancelled.
enum Cancelled {
    /// The schedule's version condition failed (it fired or changed since the plan).
    Version,
    /// Only the idempotency key was taken: the occurrence already has its message.
    Occurrence,
    /// A concurrent transaction touched the same items; the outcome is unknown.
    Contention,
    Other(String),
}

fn classify(e: &TransactWriteItemsError) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(t) = e else { return None };
    let codes: Vec<&str> = t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
    let failed = |i: usize| codes.get(i).is_some_and(|c| *c == "ConditionalCheckFailed");
    Some(if failed(0) {
        Cancelled::Version
    } else if failed(2) && !failed(1) {
        Cancelled::Occurrence
    } else if codes.contains(&"TransactionConflict") {
        Cancelled::Contention
    } else {
        Cancelled::Other(codes.join(","))
    })
}

impl AwsStore {
    async fn schedule_item(&self, id: &str) -> StoreResult<Option<Item>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.names.schedules_table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item schedule", e))?;
        Ok(out.item)
    }

    /// Write `sc` alone, conditional on version `expected`; false if the condition failed.
    async fn put_schedule_if(&self, sc: &Schedule, expected: u64) -> StoreResult<bool> {
        let put = schedule_put(self, sc, Some(expected))?;
        let out = self
            .clients
            .dynamodb
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(backend("dynamodb put_item schedule", e)),
        }
    }

    /// A firing's version condition failed: `Stale`, or `NotFound` if there is no such
    /// schedule at all (what the local store answers).
    async fn stale_or_missing(&self, id: &ScheduleId) -> StoreResult<FireOutcome> {
        match self.schedule_item(id.as_str()).await? {
            None => Err(StoreError::NotFound(format!("schedule {id}"))),
            Some(_) => {
                tracing::debug!(schedule_id = %id, "firing is stale; nothing applied");
                Ok(FireOutcome::Stale)
            }
        }
    }

    /// Queries one schedule index newest first, `limit + 1` matches at most.
    async fn list_page(&self, filter: &ScheduleFilter, before: Option<&ScheduleId>) -> StoreResult<Vec<Item>> {
        let limit = filter.limit.clamp(1, 100);
        let table = &self.names.schedules_table;
        let build = || {
            let mut q = self.clients.dynamodb.query().table_name(table).scan_index_forward(false);
            let mut cond = match filter.status {
                Some(st) => {
                    q = q
                        .index_name(BY_STATUS)
                        .expression_attribute_names("#pk", "status")
                        .expression_attribute_values(":pk", s(st.as_str()));
                    "#pk = :pk".to_owned()
                }
                None => {
                    q = q
                        .index_name(BY_ALL)
                        .expression_attribute_names("#pk", "list_pk")
                        .expression_attribute_values(":pk", s(LIST_PK));
                    "#pk = :pk".to_owned()
                }
            };
            if let Some(id) = before {
                cond.push_str(" AND #id < :before");
                q = q.expression_attribute_names("#id", "id").expression_attribute_values(":before", s(id.as_str()));
            }
            if let Some(t) = filter.target_type {
                q = q
                    .filter_expression("#tt = :tt")
                    .expression_attribute_names("#tt", "target_type")
                    .expression_attribute_values(":tt", s(t.as_str()));
            }
            q.key_condition_expression(cond)
        };
        query_until(build, filter.target_type.is_some(), limit + 1, None, "dynamodb query schedules").await
    }
}

#[async_trait]
impl ScheduleStore for AwsStore {
    async fn insert_schedule(&self, schedule: &Schedule) -> StoreResult<()> {
        let put = schedule_put(self, schedule, None)?;
        let out = self
            .clients
            .dynamodb
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(schedule_id = %schedule.id, "schedule stored");
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict(format!("schedule {} already exists", schedule.id)))
            }
            Err(e) => Err(backend("dynamodb put_item schedule", e)),
        }
    }

    async fn get_schedule(&self, id: &ScheduleId) -> StoreResult<Option<Schedule>> {
        self.schedule_item(id.as_str()).await?.as_ref().map(decode).transpose()
    }

    async fn list_schedules(&self, filter: &ScheduleFilter) -> StoreResult<Page<Schedule>> {
        let before = filter.cursor.as_deref().map(decode_list_cursor).transpose()?;
        let limit = filter.limit.clamp(1, 100);
        let items = self.list_page(filter, before.as_ref()).await?;
        let mut page = items.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|sc| encode_list_cursor(&sc.id)).transpose()?
        } else {
            None
        };
        Ok(Page { items: page, next_cursor })
    }

    async fn update_schedule(&self, schedule: &Schedule, expected_version: u64) -> StoreResult<Schedule> {
        let mut sc = schedule.clone();
        sc.version = expected_version + 1;
        sc.updated_date = self.clock.now();
        if !self.put_schedule_if(&sc, expected_version).await? {
            return Err(conflict(&sc.id));
        }
        tracing::info!(schedule_id = %sc.id, version = sc.version, status = %sc.status, "schedule updated");
        Ok(sc)
    }

    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let table = &self.names.schedules_table;
        let build = || {
            self.clients
                .dynamodb
                .query()
                .table_name(table)
                .index_name(BY_DUE)
                .key_condition_expression("#pk = :pk AND #due <= :now")
                .expression_attribute_names("#pk", "due_pk")
                .expression_attribute_names("#due", "due_at")
                .expression_attribute_values(":pk", s(DUE_PK))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .scan_index_forward(true)
        };
        let items = query_until(build, false, limit, None, "dynamodb query due schedules").await?;
        items.iter().map(decode).collect()
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        let out = self
            .clients
            .dynamodb
            .query()
            .table_name(&self.names.schedules_table)
            .index_name(BY_DUE)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "due_pk")
            .expression_attribute_values(":pk", s(DUE_PK))
            .scan_index_forward(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| backend("dynamodb query next due", e))?;
        let Some(item) = out.items().first() else { return Ok(None) };
        let ms = opt_n(item, "due_at")?.ok_or_else(|| StoreError::Corrupt("due schedule without due_at".into()))?;
        chrono::DateTime::from_timestamp_millis(ms)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("due_at out of range: {ms}")))
    }

    async fn fire(&self, firing: &Firing) -> StoreResult<FireOutcome> {
        let expected = firing.schedule.version;
        let id = &firing.schedule.id;
        // The schedule's state after this firing, as if the message is new; the
        // occurrence-already-fired path below recomputes it without counting.
        let next_state = |counted: bool| {
            let mut sc = (*firing.schedule).clone();
            if counted {
                sc.execution_count += 1;
                sc.last_fired_at = Some(firing.at);
            }
            sc.missed_count += firing.missed;
            sc.next_fire_at = firing.next_fire_at;
            sc.status = firing.status;
            sc.last_error = firing.last_error.clone().or(sc.last_error);
            sc.version += 1;
            sc.updated_date = firing.at;
            sc
        };

        let Some(message) = &firing.message else {
            let sc = next_state(false);
            if !self.put_schedule_if(&sc, expected).await? {
                return self.stale_or_missing(id).await;
            }
            tracing::info!(schedule_id = %id, version = sc.version, missed = firing.missed, "schedule advanced without firing");
            return Ok(FireOutcome::Applied { schedule: Box::new(sc), message: None });
        };
        let key = message.idempotency_key.as_ref().ok_or_else(|| {
            StoreError::Conflict(format!("firing of schedule {id} carries a message without an idempotency key"))
        })?;

        let sc = next_state(true);
        let items = vec![
            TransactWriteItem::builder().put(schedule_put(self, &sc, Some(expected))?).build(),
            TransactWriteItem::builder().put(message_put(self, message)?).build(),
            TransactWriteItem::builder().put(idempotency_put(self, key, &message.id, firing.at)?).build(),
        ];
        let mut attempt = 0;
        let cancelled = loop {
            let out = self.clients.dynamodb.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let e = match out {
                Ok(_) => break None,
                Err(e) => e,
            };
            match e.as_service_error().and_then(classify) {
                Some(Cancelled::Contention) if attempt < TRANSACTION_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(schedule_id = %id, attempt, "firing raced another transaction; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Some(Cancelled::Other(codes)) => {
                    return Err(StoreError::Unavailable(format!(
                        "firing schedule {id}: transaction cancelled ({codes})"
                    )));
                }
                Some(c) => break Some(c),
                None => return Err(backend("dynamodb transact_write_items firing", e)),
            }
        };

        match cancelled {
            None => {
                tracing::info!(schedule_id = %id, message_id = %message.id, version = sc.version, "schedule fired");
                let message = match publish_and_mark_queued(self, message.clone()).await {
                    Ok(m) => m,
                    Err(e) => {
                        // Stored as `created`; the sweeper publishes it later.
                        tracing::warn!(schedule_id = %id, message_id = %message.id, error = %e,
                            "fired message not published yet; the sweeper will publish it");
                        message.clone()
                    }
                };
                Ok(FireOutcome::Applied { schedule: Box::new(sc), message: Some(message) })
            }
            Some(Cancelled::Version) => self.stale_or_missing(id).await,
            Some(Cancelled::Occurrence) => {
                // An earlier attempt (an EventBridge retry, another engine re-planning)
                // already created this occurrence's message: advance the schedule alone
                // and answer with that message.
                let existing = message_for_idempotency_key(self, key).await?.ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "idempotency key of schedule {id}'s occurrence is taken but its message is not readable yet"
                    ))
                })?;
                let sc = next_state(false);
                if !self.put_schedule_if(&sc, expected).await? {
                    return self.stale_or_missing(id).await;
                }
                tracing::info!(schedule_id = %id, message_id = %existing.id, version = sc.version,
                    "occurrence already fired; schedule advanced with its existing message");
                Ok(FireOutcome::Applied { schedule: Box::new(sc), message: Some(existing) })
            }
            Some(Cancelled::Contention) => {
                Err(StoreError::Unavailable(format!("firing schedule {id}: transactions kept conflicting; try again")))
            }
            Some(Cancelled::Other(codes)) => {
                Err(StoreError::Unavailable(format!("firing schedule {id}: transaction cancelled ({codes})")))
            }
        }
    }

    async fn acquire_engine_lease(&self, owner: &str, ttl: Duration) -> StoreResult<bool> {
        let now = self.clock.now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let out = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.names.schedules_table)
            .item("id", s(LEASE_ID))
            .item("owner", s(owner))
            .item("expires_at", n(until))
            .condition_expression("attribute_not_exists(#id) OR #owner = :me OR #exp < :now")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(backend("dynamodb put_item engine lease", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cursors_round_trip_and_reject_garbage() {
        let id = ScheduleId::new(chrono::Utc::now());
        assert_eq!(decode_list_cursor(&encode_list_cursor(&id).unwrap()).unwrap(), id);
        let mut other = Item::new();
        other.insert("id".into(), s("msg_nope"));
        let bad = encode_cursor(&other).unwrap();
        for c in ["garbage", bad.as_str()] {
            assert!(matches!(decode_list_cursor(c), Err(StoreError::InvalidCursor)), "{c}");
        }
    }

    #[test]
    fn index_attributes_follow_the_schedule() {
        let json = serde_json::json!({
            "id": ScheduleId::new(chrono::Utc::now()), "name": "n", "schedule_expression": "rate(1 hour)",
            "timezone": "UTC", "flexible_time_window_minutes": 0,
            "retry_policy": {"maximum_retry_attempts": 1, "maximum_event_age_seconds": 60},
            "action_after_completion": "NONE", "target_type": "notify", "target": {"payload": {"message": "x"}},
            "stage": "dev", "status": "active", "next_fire_at": "2026-01-01T00:00:00.000Z",
            "execution_count": 0, "missed_count": 0, "created_by": "api",
            "created_date": "2026-01-01T00:00:00.000Z", "updated_date": "2026-01-01T00:00:00.000Z", "version": 1
        });
        let mut sc: Schedule = serde_json::from_value(json).unwrap();
        let item = item_of(&sc).unwrap();
        assert!(item.contains_key("due_pk") && item.contains_key("list_pk"));
        sc.status = ScheduleStatus::Paused;
        let item = item_of(&sc).unwrap();
        assert!(!item.contains_key("due_pk") && !item.contains_key("due_at") && item.contains_key("list_pk"));
        sc.status = ScheduleStatus::Deleted;
        assert!(!item_of(&sc).unwrap().contains_key("list_pk"));
    }
}

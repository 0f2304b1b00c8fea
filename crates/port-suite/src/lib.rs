//! The port conformance suite. Every adapter of `MessageStore`, `Queues`, `Inbox` and
//! `ApiKeyStore` runs these same checks (Garage's one-suite-for-all-backends model), so
//! the embedded and the AWS deployment behave the same.
//!
//! An adapter's test file implements [`Fixture`] and expands [`port_suite!`], which makes
//! one `#[tokio::test]` per check. Timing-dependent checks use real, short durations
//! (visibility timeouts and backoffs of a few hundred ms) so they also hold on a remote
//! emulator whose clock we cannot pause.
//!
//! The agent's ports (run store and budget ledger) have their own suite in [`agent`],
//! with its own fixture and macro.

pub mod agent;
pub mod approvals;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, IdempotencyKey, Message, MessageType, NewMessage, Stage};
use rez_core::notify::NotifyPayload;
use rez_core::ports::*;
use rez_core::routing::QueueName;
use rez_core::status::Status;

/// Everything the suite needs from one adapter.
pub trait Store:
    MessageStore + Queues + Inbox + ApiKeyStore + ScheduleStore + ResultStore + rez_core::booking::BookingLedger
{
}
impl<T> Store for T where
    T: MessageStore + Queues + Inbox + ApiKeyStore + ScheduleStore + ResultStore + rez_core::booking::BookingLedger
{
}

/// Builds a fresh, empty store. The store's retry backoff must be at most
/// [`Fixture::MAX_BACKOFF`] for the first two retries.
#[async_trait]
pub trait Fixture: Send + Sync {
    const MAX_BACKOFF: Duration = Duration::from_millis(500);
    async fn fresh(&self) -> Arc<dyn Store>;
}

const VIS: Duration = Duration::from_secs(30);

fn msg(t: MessageType, payload: serde_json::Value) -> Message {
    let new = NewMessage {
        message_type: t,
        stage: Stage::Dev,
        payload: payload.as_object().cloned().unwrap_or_default(),
        arguments: Default::default(),
        idempotency_key: None,
    };
    Message::create(new, CreatedBy::Api, SystemClock.now())
}

fn notify(text: &str) -> Message {
    msg(MessageType::Notify, serde_json::json!({ "message": text }))
}

async fn receive_all(s: &dyn Store, q: QueueName, vis: Duration) -> Vec<Delivery> {
    s.receive(q, 10, vis).await.expect("receive")
}

/// Receive until something arrives or `within` passes.
async fn receive_eventually(s: &dyn Store, q: QueueName, within: Duration) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = receive_all(s, q, VIS).await;
        if !got.is_empty() || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn submit_stores_and_queues(s: Arc<dyn Store>) {
    let m = notify("hello");
    let id = m.id.clone();
    let out = s.submit(m).await.unwrap();
    assert!(matches!(out, Submitted::Created(_)));
    assert_eq!(out.message().status, Status::Queued);
    let got = s.get_message(&id).await.unwrap().expect("stored");
    assert_eq!(got.status, Status::Queued);
    assert_eq!(got.payload["message"], "hello");
    assert_eq!(got.created_by, CreatedBy::Api);
    let d = receive_all(&*s, QueueName::Notifications, VIS).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message.id, id);
    assert_eq!(d[0].receive_count, 1);
    assert_eq!(d[0].message.status, Status::Processing);
}

pub async fn routes_by_message_type(s: Arc<dyn Store>) {
    let w = msg(MessageType::WebAction, serde_json::json!({"action": "weather"}));
    let wid = w.id.clone();
    s.submit(w).await.unwrap();
    assert!(receive_all(&*s, QueueName::Notifications, VIS).await.is_empty());
    let d = receive_all(&*s, QueueName::WebActions, VIS).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message.id, wid);
}

pub async fn rejects_non_created_submissions(s: Arc<dyn Store>) {
    let mut m = notify("x");
    m.status = Status::Completed;
    assert!(s.submit(m).await.is_err());
}

pub async fn idempotency_key_returns_first_message(s: Arc<dyn Store>) {
    let mut a = notify("a");
    a.idempotency_key = Some(IdempotencyKey::parse("key-1").unwrap());
    let mut b = notify("b");
    b.idempotency_key = Some(IdempotencyKey::parse("key-1").unwrap());
    let first = s.submit(a).await.unwrap();
    let second = s.submit(b).await.unwrap();
    assert!(matches!(second, Submitted::Existing(_)));
    assert_eq!(first.message().id, second.message().id);
    assert_eq!(second.message().payload["message"], "a");
    // Only one queue item exists.
    let d = receive_all(&*s, QueueName::Notifications, VIS).await;
    assert_eq!(d.len(), 1);
}

pub async fn batches_of_at_most_ten(s: Arc<dyn Store>) {
    for i in 0..15 {
        s.submit(notify(&format!("m{i}"))).await.unwrap();
    }
    let a = s.receive(QueueName::Notifications, 50, VIS).await.unwrap();
    assert_eq!(a.len(), 10);
    let b = s.receive(QueueName::Notifications, 10, VIS).await.unwrap();
    assert_eq!(b.len(), 5);
    assert!(receive_all(&*s, QueueName::Notifications, VIS).await.is_empty(), "in-flight messages are invisible");
}

pub async fn complete_removes_and_completes(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let d = receive_all(&*s, QueueName::Notifications, VIS).await.remove(0);
    s.complete(&d).await.unwrap();
    assert_eq!(s.get_message(&d.message.id).await.unwrap().unwrap().status, Status::Completed);
    let stats = s.stats().await.unwrap();
    let q = stats.iter().find(|q| q.queue == QueueName::Notifications).unwrap();
    assert_eq!((q.depth, q.in_flight, q.dlq_depth), (0, 0, 0));
    // Completing twice is refused: the receipt is gone.
    assert!(s.complete(&d).await.is_err());
}

pub async fn complete_notified_records_and_completes(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let d = receive_all(&*s, QueueName::Notifications, VIS).await.remove(0);
    let n = NotifyPayload::text("x");
    s.complete_notified(&d, &n, AttemptOutcome::Delivered { push_id: Some("p1".into()) }).await.unwrap();
    assert_eq!(s.get_message(&d.message.id).await.unwrap().unwrap().status, Status::Completed);
    let e = s.get_entry(&d.message.id).await.unwrap().expect("the push is recorded");
    assert_eq!((e.state, e.attempts, e.push_id.as_deref()), (DeliveryState::Delivered, 1, Some("p1")));
    let stats = s.stats().await.unwrap();
    let q = stats.iter().find(|q| q.queue == QueueName::Notifications).unwrap();
    assert_eq!((q.depth, q.in_flight), (0, 0));
}

/// A push whose delivery went stale (redelivered meanwhile) is still recorded, so the
/// redelivery sees it; the completion is refused like `complete`'s.
pub async fn complete_notified_keeps_the_record_when_the_receipt_is_stale(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let first = s.receive(QueueName::Notifications, 1, Duration::from_millis(300)).await.unwrap().remove(0);
    let second = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await.remove(0);
    let n = NotifyPayload::text("x");
    let stale = s.complete_notified(&first, &n, AttemptOutcome::Delivered { push_id: None }).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let e = s.get_entry(&first.message.id).await.unwrap().expect("recorded despite the stale receipt");
    assert_eq!(e.state, DeliveryState::Delivered);
    assert_eq!(s.get_message(&first.message.id).await.unwrap().unwrap().status, Status::Processing);
    s.complete(&second).await.unwrap();
    assert_eq!(s.get_message(&first.message.id).await.unwrap().unwrap().status, Status::Completed);
}

pub async fn visibility_timeout_redelivers(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let first = s.receive(QueueName::Notifications, 1, Duration::from_millis(300)).await.unwrap().remove(0);
    assert!(is_first_delivery(&first.message, first.receive_count));
    let second = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await.remove(0);
    assert_eq!(second.message.id, first.message.id);
    assert_eq!(second.receive_count, 2);
    assert!(!is_first_delivery(&second.message, second.receive_count));
    assert!(s.complete(&first).await.is_err(), "a stale receipt cannot complete");
    s.complete(&second).await.unwrap();
}

pub async fn failure_backs_off_then_redelivers(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let d = receive_all(&*s, QueueName::Notifications, VIS).await.remove(0);
    let out = s.fail(&d, "ntfy said 503", FailureKind::Transient).await.unwrap();
    assert!(matches!(out, FailOutcome::Retrying { .. }));
    let m = s.get_message(&d.message.id).await.unwrap().unwrap();
    assert_eq!(m.status, Status::Failed);
    assert_eq!(m.error_message.as_deref(), Some("ntfy said 503"));
    assert_eq!(m.retry_count, 1);
    let again = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await.remove(0);
    assert_eq!(again.receive_count, 2);
    assert_eq!(again.message.status, Status::Processing);
}

async fn fail_to_dlq(s: &dyn Store) -> Message {
    s.submit(notify("doomed")).await.unwrap();
    let mut last = None;
    for attempt in 1..=3u32 {
        let d = receive_eventually(s, QueueName::Notifications, Duration::from_secs(10)).await.remove(0);
        assert_eq!(d.receive_count, attempt);
        let out = s.fail(&d, &format!("boom {attempt}"), FailureKind::Transient).await.unwrap();
        if attempt < 3 {
            assert!(matches!(out, FailOutcome::Retrying { .. }), "attempt {attempt}");
        } else {
            assert_eq!(out, FailOutcome::DeadLettered);
        }
        last = Some(d.message.id);
    }
    s.get_message(&last.unwrap()).await.unwrap().unwrap()
}

pub async fn dead_letters_after_three_receives(s: Arc<dyn Store>) {
    let m = fail_to_dlq(&*s).await;
    assert_eq!(m.status, Status::DeadLettered);
    assert_eq!(m.error_message.as_deref(), Some("boom 3"));
    let page = s.dead_letters(Some(QueueName::Notifications), 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message.id, m.id);
    assert_eq!(page.items[0].source_queue, QueueName::Notifications);
    assert_eq!(page.items[0].last_error.as_deref(), Some("boom 3"));
    let stats = s.stats().await.unwrap();
    assert_eq!(stats.iter().find(|q| q.queue == QueueName::Notifications).unwrap().dlq_depth, 1);
    assert!(receive_all(&*s, QueueName::Notifications, VIS).await.is_empty());
}

pub async fn permanent_failure_dead_letters_at_once(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let d = receive_all(&*s, QueueName::Notifications, VIS).await.remove(0);
    assert_eq!(s.fail(&d, "400 bad request", FailureKind::Permanent).await.unwrap(), FailOutcome::DeadLettered);
    assert_eq!(s.get_message(&d.message.id).await.unwrap().unwrap().status, Status::DeadLettered);
}

pub async fn redrive_returns_dead_letters(s: Arc<dyn Store>) {
    let m = fail_to_dlq(&*s).await;
    // Redriving another queue moves nothing.
    assert_eq!(s.redrive(&RedriveSelector::Queue(QueueName::WebActions)).await.unwrap(), 0);
    assert_eq!(s.redrive(&RedriveSelector::Ids(vec![m.id.clone()])).await.unwrap(), 1);
    let redriven = s.get_message(&m.id).await.unwrap().unwrap();
    assert_eq!(redriven.status, Status::Queued);
    assert_eq!(redriven.retry_count, m.retry_count + 1, "a redrive counts as a retry");
    let d = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await.remove(0);
    assert_eq!(d.message.id, m.id);
    assert_eq!(d.receive_count, 1, "redrive resets the receive count");
    assert!(!is_first_delivery(&d.message, d.receive_count));
    s.complete(&d).await.unwrap();
    assert_eq!(s.get_message(&m.id).await.unwrap().unwrap().status, Status::Completed);
    assert!(s.dead_letters(None, 10, None).await.unwrap().items.is_empty());
}

pub async fn delete_dead_letter(s: Arc<dyn Store>) {
    let m = fail_to_dlq(&*s).await;
    assert!(s.delete_dead_letter(&m.id).await.unwrap());
    assert!(!s.delete_dead_letter(&m.id).await.unwrap());
    assert!(s.dead_letters(None, 10, None).await.unwrap().items.is_empty());
    assert_eq!(s.redrive(&RedriveSelector::All).await.unwrap(), 0);
}

pub async fn retry_requeues_failed_messages(s: Arc<dyn Store>) {
    let m = fail_to_dlq(&*s).await;
    let r = s.retry(&m.id).await.unwrap();
    assert_eq!(r.status, Status::Queued);
    assert_eq!(r.retry_count, m.retry_count + 1, "a retry counts in retry_count");
    assert_eq!(s.get_message(&m.id).await.unwrap().unwrap().retry_count, r.retry_count);
    assert!(s.dead_letters(None, 10, None).await.unwrap().items.is_empty());
    let d = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await.remove(0);
    assert_eq!(d.message.id, m.id);
    s.complete(&d).await.unwrap();
    // A completed message cannot be retried.
    assert!(matches!(s.retry(&m.id).await, Err(StoreError::Conflict(_))));
    let missing = rez_core::MessageId::new(SystemClock.now());
    assert!(matches!(s.retry(&missing).await, Err(StoreError::NotFound(_))));
}

pub async fn release_makes_visible_again(s: Arc<dyn Store>) {
    s.submit(notify("x")).await.unwrap();
    let d = receive_all(&*s, QueueName::Notifications, VIS).await.remove(0);
    s.release(&d).await.unwrap();
    let again = receive_all(&*s, QueueName::Notifications, VIS).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 1, "a released delivery does not count as a receive");
    assert!(is_first_delivery(&again[0].message, again[0].receive_count), "nothing handled it");
}

pub async fn list_filters_and_paginates(s: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let m = notify(&format!("n{i}"));
        ids.push(m.id.clone());
        s.submit(m).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.submit(msg(MessageType::WebAction, serde_json::json!({}))).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list_messages(&MessageFilter {
                message_type: Some(MessageType::Notify),
                limit: 3,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|m| m.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every notify message exactly once");
    let queued = s
        .list_messages(&MessageFilter { status: Some(Status::Queued), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(queued.items.len(), 8);
    let none = s
        .list_messages(&MessageFilter { status: Some(Status::Completed), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let bad = s.list_messages(&MessageFilter { limit: 10, cursor: Some("garbage".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)));
}

pub async fn inbox_is_keyed_by_message(s: Arc<dyn Store>) {
    let id = rez_core::MessageId::new(SystemClock.now());
    let n = NotifyPayload::text("hi");
    let e = s.open(&id, &n).await.unwrap();
    assert_eq!((e.state, e.attempts), (DeliveryState::Pending, 0));
    let e = s.record(&id, &n, AttemptOutcome::Failed { error: "503".into() }).await.unwrap();
    assert_eq!((e.state, e.attempts), (DeliveryState::Failed, 1));
    let e = s.record(&id, &n, AttemptOutcome::Delivered { push_id: Some("abc".into()) }).await.unwrap();
    assert_eq!((e.state, e.attempts), (DeliveryState::Delivered, 2));
    assert_eq!(e.push_id.as_deref(), Some("abc"));
    // Opening again returns the recorded entry, not a fresh one.
    let again = s.open(&id, &NotifyPayload::text("other")).await.unwrap();
    assert_eq!(again.state, DeliveryState::Delivered);
    assert_eq!(again.notification.message, "hi");
    let page = s.list_entries(Some(DeliveryState::Delivered), 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    // Recording without opening first creates the entry.
    let other = rez_core::MessageId::new(SystemClock.now());
    let e = s.record(&other, &n, AttemptOutcome::InboxOnly).await.unwrap();
    assert_eq!((e.state, e.attempts), (DeliveryState::InboxOnly, 1));
    assert_eq!(s.get_entry(&other).await.unwrap().unwrap().state, DeliveryState::InboxOnly);
}

pub async fn api_keys_store_hashes_and_revoke(s: Arc<dyn Store>) {
    let rec = ApiKeyRecord {
        id: ApiKeyId::new(SystemClock.now()),
        name: "ci".into(),
        scope: Scope::Write,
        hash: [7u8; 32],
        created_date: SystemClock.now(),
        revoked_date: None,
    };
    s.insert(&rec).await.unwrap();
    let got = s.get_key(&rec.id).await.unwrap().unwrap();
    assert_eq!((got.hash, got.scope, got.name.as_str()), (rec.hash, Scope::Write, "ci"));
    assert!(s.revoke(&rec.id, SystemClock.now()).await.unwrap());
    assert!(!s.revoke(&rec.id, SystemClock.now()).await.unwrap());
    assert!(s.get_key(&rec.id).await.unwrap().unwrap().revoked_date.is_some());
    assert_eq!(s.list_keys().await.unwrap().len(), 1);
}

/// An active `notify` schedule named `name`, due at its first occurrence (fixture shared
/// with adapter-specific tests).
pub fn schedule(name: &str, expr: &str) -> rez_core::schedules::Schedule {
    use rez_core::schedule_spec::ScheduleSpec;
    let spec = ScheduleSpec::from_json(
        &serde_json::json!({"name": name, "schedule_expression": expr, "target_type": "notify", "target": {"payload": {"message": name}}}),
        Stage::Dev,
    )
    .expect("spec");
    let now = SystemClock.now();
    let mut s = rez_core::schedules::Schedule {
        id: rez_core::ScheduleId::new(now),
        name: spec.name,
        description: None,
        schedule_expression: spec.schedule_expression,
        timezone: spec.timezone,
        start_date: None,
        end_date: None,
        flexible_time_window_minutes: 0,
        retry_policy: spec.retry_policy,
        action_after_completion: spec.action_after_completion,
        target_type: spec.target_type,
        target: spec.target,
        stage: Stage::Dev,
        status: rez_core::schedules::ScheduleStatus::Active,
        next_fire_at: None,
        last_fired_at: None,
        execution_count: 0,
        missed_count: 0,
        last_error: None,
        created_by: CreatedBy::Api,
        created_date: now,
        updated_date: now,
        version: 1,
    };
    s.next_fire_at = s.next_after(now - chrono::TimeDelta::milliseconds(1));
    s
}

/// The firing of `s`'s occurrence at `at`, planned from `s` as it is.
pub fn firing_of(s: &rez_core::schedules::Schedule, at: rez_core::time::Timestamp) -> Firing {
    let new = s.message_for(at).expect("target");
    Firing {
        schedule: Box::new(s.clone()),
        message: Some(Message::create(new, CreatedBy::Scheduler, SystemClock.now())),
        missed: 0,
        next_fire_at: s.next_after(at),
        status: s.status,
        last_error: None,
        at: SystemClock.now(),
    }
}

pub async fn schedules_crud_and_versioning(s: Arc<dyn Store>) {
    use rez_core::schedules::{ScheduleStatus, TargetType};
    let a = schedule("a", "rate(5 minutes)");
    let b = schedule("b", "cron(0 12 * * ? *)");
    s.insert_schedule(&a).await.unwrap();
    s.insert_schedule(&b).await.unwrap();
    assert!(matches!(s.insert_schedule(&a).await, Err(StoreError::Conflict(_))), "ids are unique");
    assert_eq!(s.get_schedule(&a.id).await.unwrap().unwrap(), a);
    // Conditional update: version goes up; a stale writer is refused.
    let mut changed = a.clone();
    changed.name = "renamed".into();
    let v2 = s.update_schedule(&changed, 1).await.unwrap();
    assert_eq!((v2.version, v2.name.as_str()), (2, "renamed"));
    assert!(matches!(s.update_schedule(&changed, 1).await, Err(StoreError::Conflict(_))));
    // Listing: filters, newest first, deleted hidden unless asked for, cursor.
    let mut del = b.clone();
    del.status = ScheduleStatus::Deleted;
    del.next_fire_at = None;
    s.update_schedule(&del, 1).await.unwrap();
    let page = s.list_schedules(&ScheduleFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(page.items.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![a.id.clone()]);
    let deleted = s
        .list_schedules(&ScheduleFilter { status: Some(ScheduleStatus::Deleted), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(deleted.items.len(), 1);
    let by_type = s
        .list_schedules(&ScheduleFilter { target_type: Some(TargetType::Agent), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert!(by_type.items.is_empty());
    for i in 0..4 {
        s.insert_schedule(&schedule(&format!("p{i}"), "rate(1 hour)")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first = s.list_schedules(&ScheduleFilter { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let rest =
        s.list_schedules(&ScheduleFilter { limit: 3, cursor: first.next_cursor, ..Default::default() }).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
    // The count behind the schedule limit (SPEC §8): every status but deleted.
    assert_eq!(s.count_schedules().await.unwrap(), 5);
}

pub async fn due_schedules_in_order(s: Arc<dyn Store>) {
    let now = SystemClock.now();
    let mut early = schedule("early", "rate(1 hour)");
    early.next_fire_at = Some(now - chrono::TimeDelta::seconds(30));
    let mut late = schedule("late", "rate(1 hour)");
    late.next_fire_at = Some(now - chrono::TimeDelta::seconds(10));
    let mut future = schedule("future", "rate(1 hour)");
    future.next_fire_at = Some(now + chrono::TimeDelta::hours(1));
    let mut paused = schedule("paused", "rate(1 hour)");
    paused.status = rez_core::schedules::ScheduleStatus::Paused;
    paused.next_fire_at = Some(now - chrono::TimeDelta::hours(1));
    for x in [&late, &future, &paused, &early] {
        s.insert_schedule(x).await.unwrap();
    }
    let due = s.due_schedules(now, 10).await.unwrap();
    assert_eq!(due.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["early", "late"]);
    assert_eq!(s.due_schedules(now, 1).await.unwrap().len(), 1);
    let next = s.next_due().await.unwrap().unwrap();
    assert_eq!(next.timestamp_millis(), early.next_fire_at.unwrap().timestamp_millis());
}

pub async fn a_firing_is_atomic_and_happens_once(s: Arc<dyn Store>) {
    let sc = schedule("f", "rate(1 hour)");
    s.insert_schedule(&sc).await.unwrap();
    let at = sc.next_fire_at.unwrap();
    let firing = firing_of(&sc, at);
    let FireOutcome::Applied { schedule: after, message: Some(m) } = s.fire(&firing).await.unwrap() else {
        panic!("first firing must apply");
    };
    assert_eq!((after.version, after.execution_count), (2, 1));
    assert_eq!(after.next_fire_at, sc.next_after(at));
    assert_eq!(m.status, Status::Queued);
    assert_eq!(m.created_by, CreatedBy::Scheduler);
    // The same plan again (a restart, a second engine): stale, nothing new.
    assert!(matches!(s.fire(&firing).await.unwrap(), FireOutcome::Stale));
    // Even re-planned from the new version, the same occurrence maps to the same message.
    let again = firing_of(&after, at);
    let FireOutcome::Applied { message: Some(m2), schedule: after2 } = s.fire(&again).await.unwrap() else {
        panic!("applies");
    };
    assert_eq!(m2.id, m.id, "one occurrence, one message");
    assert_eq!(after2.execution_count, 1);
    let msgs = s
        .list_messages(&MessageFilter { created_by: Some(CreatedBy::Scheduler), limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(msgs.items.len(), 1);
    // The fired message is queued for delivery.
    let d = receive_all(&*s, QueueName::Notifications, VIS).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message.id, m.id);
}

pub async fn engine_lease_is_exclusive(s: Arc<dyn Store>) {
    assert!(s.acquire_engine_lease("a", Duration::from_millis(400)).await.unwrap());
    assert!(!s.acquire_engine_lease("b", Duration::from_millis(400)).await.unwrap());
    assert!(s.acquire_engine_lease("a", Duration::from_millis(400)).await.unwrap(), "the holder renews");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(s.acquire_engine_lease("b", Duration::from_millis(400)).await.unwrap(), "an expired lease can be taken");
    assert!(!s.acquire_engine_lease("a", Duration::from_millis(400)).await.unwrap());
}

pub async fn results_are_kept_per_message_and_expire(s: Arc<dyn Store>) {
    use rez_core::web_action::{RESULT_TTL, ResultStatus, WebActionResult};
    let now = SystemClock.now();
    let mid = rez_core::MessageId::new(now);
    let mk = |status, created: rez_core::time::Timestamp| WebActionResult {
        id: rez_core::ResultId::new(created),
        message_id: mid.clone(),
        action: "weather".into(),
        operation: "forecast".into(),
        status,
        response_code: Some(200),
        response_body: None,
        output: serde_json::json!({"periods": 14}),
        error_message: None,
        execution_time_ms: 12,
        attempt: 1,
        created_date: created,
        ttl: created + RESULT_TTL,
    };
    let old = mk(ResultStatus::Failed, now - chrono::TimeDelta::days(4));
    let fresh = mk(ResultStatus::Success, now);
    s.put_result(&old).await.unwrap();
    s.put_result(&fresh).await.unwrap();
    let got = s.results_for(&mid).await.unwrap();
    assert_eq!(got, vec![old.clone(), fresh.clone()], "oldest first, round-tripped exactly");
    assert!(s.results_for(&rez_core::MessageId::new(now)).await.unwrap().is_empty());
    assert_eq!(s.purge_expired_results(now).await.unwrap(), 1);
    assert_eq!(s.results_for(&mid).await.unwrap(), vec![fresh]);
}

fn booking_intent(recorded_at: chrono::DateTime<chrono::Utc>) -> rez_core::booking::BookingIntent {
    rez_core::booking::BookingIntent {
        course_id: "birdsfoot".into(),
        course_name: "Birdsfoot Golf Course".into(),
        tee_sheet_id: 502,
        start_time: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(8, 40, 0).unwrap(),
        players: 4,
        holes: 18,
        recorded_at,
    }
}

fn booking_confirmation() -> rez_core::booking::BookingConfirmation {
    let i = booking_intent(SystemClock.now());
    rez_core::booking::BookingConfirmation {
        course_id: i.course_id,
        course_name: i.course_name,
        reservation_id: Some(77),
        confirmation_key: "CONF-77".into(),
        tee_sheet_id: i.tee_sheet_id,
        start_time: i.start_time,
        players: i.players,
        holes: i.holes,
        total: Some(180.0),
        total_due_at_course: None,
        confirmed_at: SystemClock.now(),
    }
}

fn lease_for(now: chrono::DateTime<chrono::Utc>, secs: i64) -> rez_core::booking::Lease {
    rez_core::booking::Lease {
        attempt: rez_core::booking::AttemptId::new(now),
        until: now + chrono::TimeDelta::seconds(secs),
    }
}

/// One attempt owns a pending key under a lease; only the owner changes it; a lapsed
/// lease is taken over with the intent; failed keys start afresh; confirmed keys stay.
pub async fn booking_ledger_leases_a_pending_key(s: Arc<dyn Store>) {
    use rez_core::booking::*;
    let key = BookingKey::new("msg_booking_1").unwrap();
    let now = SystemClock.now();
    let (a, b) = (lease_for(now, 60), lease_for(now, 60));
    let intent = booking_intent(now);
    assert!(s.get(&key).await.unwrap().is_none());
    assert_eq!(s.claim(&key, &a, now).await.unwrap(), ClaimOutcome::Claimed(None));
    // A second attempt while the lease is live changes nothing and is told until when.
    assert_eq!(s.claim(&key, &b, now).await.unwrap(), ClaimOutcome::Held { until: a.until });
    assert!(!s.record_intent(&key, &b.attempt, &intent).await.unwrap(), "b does not own the key");
    assert!(!s.mark_failed(&key, &b.attempt, "not b's").await.unwrap());
    assert!(!s.end_lease(&key, &b.attempt).await.unwrap());
    assert!(s.record_intent(&key, &a.attempt, &intent).await.unwrap());
    let entry = s.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (entry.state, entry.intent.as_ref(), entry.lease.as_ref()),
        (LedgerState::Pending, Some(&intent), Some(&a))
    );
    // The lease lapses: b takes the key over, with a's intent; a can change nothing now.
    let later = now + chrono::TimeDelta::seconds(61);
    let b_later = Lease { attempt: b.attempt.clone(), until: later + chrono::TimeDelta::seconds(60) };
    let ClaimOutcome::Claimed(Some(before)) = s.claim(&key, &b_later, later).await.unwrap() else {
        panic!("a lapsed lease is taken over");
    };
    assert_eq!((before.intent.as_ref(), before.lease.as_ref()), (Some(&intent), Some(&a)));
    assert!(!s.record_confirmation(&key, &a.attempt, &booking_confirmation()).await.unwrap(), "a lost the key");
    assert!(!s.mark_failed(&key, &a.attempt, "late").await.unwrap());
    // Failing releases the key: the next claim starts without an intent.
    assert!(s.mark_failed(&key, &b.attempt, "reserve refused").await.unwrap());
    assert!(matches!(s.get(&key).await.unwrap().unwrap().state, LedgerState::Failed { .. }));
    let c = lease_for(later, 60);
    let ClaimOutcome::Claimed(Some(before)) = s.claim(&key, &c, later).await.unwrap() else { panic!("claimed") };
    assert!(matches!(before.state, LedgerState::Failed { .. }));
    assert_eq!(s.get(&key).await.unwrap().unwrap().intent, None, "a failed key starts afresh");
    assert!(s.record_intent(&key, &c.attempt, &intent).await.unwrap());
    let confirmation = booking_confirmation();
    assert!(s.record_confirmation(&key, &c.attempt, &confirmation).await.unwrap());
    assert!(!s.mark_failed(&key, &c.attempt, "late failure").await.unwrap(), "a confirmed key stays confirmed");
    assert_eq!(s.claim(&key, &a, later).await.unwrap(), ClaimOutcome::Confirmed(confirmation.clone()));
    let entry = s.get(&key).await.unwrap().unwrap();
    assert_eq!(entry.state, LedgerState::Confirmed { confirmation });
    assert_eq!(entry.intent, Some(intent));
}

/// The search for an uncertain reserve is kept in the row and survives a hand-over: an
/// ended lease leaves the key pending with its intent and progress, claimable at once.
pub async fn booking_ledger_keeps_the_search_progress(s: Arc<dyn Store>) {
    use rez_core::booking::*;
    let key = BookingKey::new("msg_booking_2").unwrap();
    let now = SystemClock.now();
    let a = lease_for(now, 300);
    assert_eq!(s.claim(&key, &a, now).await.unwrap(), ClaimOutcome::Claimed(None));
    let intent = booking_intent(now);
    assert!(s.record_intent(&key, &a.attempt, &intent).await.unwrap());
    let mut progress = Verification { uncertain_since: now, lookups_done: 0 };
    assert!(s.record_verification(&key, &a.attempt, &progress).await.unwrap());
    progress.lookups_done = 2;
    assert!(s.record_verification(&key, &a.attempt, &progress).await.unwrap());
    assert!(s.end_lease(&key, &a.attempt).await.unwrap());
    // The next delivery claims at once (well within a's 300 s) and continues the search.
    let b = lease_for(now, 300);
    let ClaimOutcome::Claimed(Some(before)) = s.claim(&key, &b, now).await.unwrap() else {
        panic!("an ended lease is claimable at once");
    };
    assert_eq!(before.state, LedgerState::Pending);
    assert_eq!((before.intent, before.verification.clone()), (Some(intent.clone()), Some(progress.clone())));
    assert!(!s.record_verification(&key, &a.attempt, &progress).await.unwrap(), "a ended its lease");
    // A new intent (a new reserve after the whole search found nothing) clears it.
    assert!(s.record_intent(&key, &b.attempt, &intent).await.unwrap());
    assert_eq!(s.get(&key).await.unwrap().unwrap().verification, None);
}

/// Many attempts claiming one key at the same moment: exactly one owns it.
pub async fn booking_ledger_admits_one_claim_at_once(s: Arc<dyn Store>) {
    use rez_core::booking::*;
    for round in 0..5 {
        let key = BookingKey::new(format!("msg_booking_race_{round}")).unwrap();
        let now = SystemClock.now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, key, lease) = (Arc::clone(&s), key.clone(), lease_for(now, 60));
                tokio::spawn(async move {
                    let outcome = s.claim(&key, &lease, now).await.unwrap();
                    let wrote = s.record_intent(&key, &lease.attempt, &booking_intent(now)).await.unwrap();
                    (outcome, wrote)
                })
            })
            .collect();
        let (mut claimed, mut held, mut wrote) = (0, 0, 0);
        for t in tasks {
            let (outcome, w) = t.await.unwrap();
            match outcome {
                ClaimOutcome::Claimed(_) => claimed += 1,
                ClaimOutcome::Held { .. } => held += 1,
                other => panic!("unexpected {other:?}"),
            }
            wrote += usize::from(w);
        }
        assert_eq!((claimed, held, wrote), (1, 7, 1), "round {round}");
    }
}

/// A deferred delivery comes back after its delay, and its receives start afresh: a
/// message deferred many times is never dead-lettered for it.
pub async fn defer_redelivers_later_without_counting(s: Arc<dyn Store>) {
    let m = s.submit(msg(MessageType::WebAction, serde_json::json!({}))).await.unwrap().into_message();
    let d = receive_all(&*s, QueueName::WebActions, VIS).await.remove(0);
    s.fail(&d, "boom", FailureKind::Transient).await.unwrap();
    let mut d = receive_eventually(&*s, QueueName::WebActions, Duration::from_secs(5)).await.remove(0);
    assert_eq!(d.receive_count, 2);
    for _ in 0..2 {
        s.defer(&d, Duration::from_secs(1)).await.unwrap();
        assert!(receive_all(&*s, QueueName::WebActions, VIS).await.is_empty(), "not visible before its delay");
        d = receive_eventually(&*s, QueueName::WebActions, Duration::from_secs(5)).await.remove(0);
        assert_eq!((d.message.id.clone(), d.receive_count), (m.id.clone(), 1), "deferrals are not receives");
    }
    // A stale receipt cannot defer.
    let stale = d.clone();
    s.defer(&d, Duration::from_secs(1)).await.unwrap();
    assert!(matches!(s.defer(&stale, Duration::from_secs(1)).await, Err(StoreError::Conflict(_))));
    let d = receive_eventually(&*s, QueueName::WebActions, Duration::from_secs(5)).await.remove(0);
    s.complete(&d).await.unwrap();
    assert_eq!(s.get_message(&m.id).await.unwrap().unwrap().status, Status::Completed);
}

/// The overview chart's counts: per hour of creation, completed and failed messages;
/// other states, and messages outside the window, are not counted.
pub async fn hourly_outcomes_count_each_hour(s: Arc<dyn Store>) {
    let now = SystemClock.now();
    let since = now - chrono::TimeDelta::hours(5);
    let at = |minutes: i64| {
        let mut m = notify(&format!("at {minutes}"));
        m.created_date = since + chrono::TimeDelta::minutes(minutes);
        m.updated_date = m.created_date;
        m.id = rez_core::MessageId::new(m.created_date);
        m
    };
    let (done, waiting, dead, before, after) = (at(30), at(40), at(130), at(-10), at(185));
    for m in [&done, &waiting, &dead, &before, &after] {
        s.submit(m.clone()).await.unwrap();
    }
    let got = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await;
    let mut got = got;
    while got.len() < 5 {
        let more = receive_eventually(&*s, QueueName::Notifications, Duration::from_secs(5)).await;
        assert!(!more.is_empty(), "all five are received");
        got.extend(more);
    }
    for d in &got {
        if d.message.id == dead.id {
            s.fail(d, "refused", FailureKind::Permanent).await.unwrap();
        } else if [&done.id, &before.id, &after.id].contains(&&d.message.id) {
            s.complete(d).await.unwrap();
        }
    }
    let hours = s.hourly_outcomes(since, 3).await.unwrap();
    assert_eq!(hours.len(), 3);
    assert_eq!(hours[0].hour_start, since);
    assert_eq!(hours[2].hour_start, since + chrono::TimeDelta::hours(2));
    let counts: Vec<(u64, u64)> = hours.iter().map(|h| (h.completed, h.failed)).collect();
    assert_eq!(counts, vec![(1, 0), (0, 0), (0, 1)], "in flight, before and after the window: not counted");
}

/// Expand the whole suite for one adapter: `port_suite!(MyFixture);` where `MyFixture:
/// Fixture + Default`.
#[macro_export]
macro_rules! port_suite {
    ($fixture:ty) => {
        $crate::port_suite!(@tests $fixture;
            submit_stores_and_queues, routes_by_message_type, rejects_non_created_submissions,
            idempotency_key_returns_first_message, batches_of_at_most_ten, complete_removes_and_completes,
            complete_notified_records_and_completes, complete_notified_keeps_the_record_when_the_receipt_is_stale,
            visibility_timeout_redelivers, failure_backs_off_then_redelivers, dead_letters_after_three_receives,
            permanent_failure_dead_letters_at_once, redrive_returns_dead_letters, delete_dead_letter,
            retry_requeues_failed_messages, release_makes_visible_again, list_filters_and_paginates,
            inbox_is_keyed_by_message, api_keys_store_hashes_and_revoke, schedules_crud_and_versioning,
            due_schedules_in_order, a_firing_is_atomic_and_happens_once, engine_lease_is_exclusive,
            results_are_kept_per_message_and_expire, booking_ledger_leases_a_pending_key,
            booking_ledger_keeps_the_search_progress, booking_ledger_admits_one_claim_at_once,
            defer_redelivers_later_without_counting, hourly_outcomes_count_each_hour);
    };
    (@tests $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = <$fixture as ::core::default::Default>::default();
                let store = $crate::Fixture::fresh(&fixture).await;
                $crate::$name(store).await;
            }
        )*
    };
}

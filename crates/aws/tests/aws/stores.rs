//! AWS-specific checks of the DynamoDB stores (api keys, schedules, results, booking
//! ledger) on moto, beyond the shared port suite: the item layouts the listings and
//! indexes rely on, optimistic concurrency, racing firings, lease expiry, pagination.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use rez_aws::AwsStore;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::booking::{AttemptId, BookingIntent, BookingKey, BookingLedger, ClaimOutcome, Lease, LedgerState};
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::{ApiKeyStore, ResultStore};
use rez_core::web_action::{RESULT_TTL, ResultStatus, WebActionResult};

fn now() -> rez_core::time::Timestamp {
    SystemClock.now()
}

fn key(name: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::new(now()),
        name: name.into(),
        scope: Scope::Read,
        hash: [name.len() as u8; 32],
        created_date: now(),
        revoked_date: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_round_trip_list_in_order_and_refuse_duplicates() {
    let s = common::store().await;
    let mut keys = Vec::new();
    for i in 0..3 {
        let k = key(&format!("k{i}"));
        s.insert(&k).await.unwrap();
        keys.push(k);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(matches!(s.insert(&keys[0]).await, Err(rez_core::ports::StoreError::Conflict(_))));
    assert_eq!(s.list_keys().await.unwrap(), keys, "oldest first, exact round trip");
    let at = now();
    assert!(s.revoke(&keys[1].id, at).await.unwrap());
    assert_eq!(s.get_key(&keys[1].id).await.unwrap().unwrap().revoked_date, Some(at));
    assert!(!s.revoke(&ApiKeyId::new(now()), at).await.unwrap(), "an unknown key is not revoked");
    assert!(s.get_key(&ApiKeyId::new(now())).await.unwrap().is_none());
    // A record inserted already revoked keeps its revocation.
    let mut gone = key("gone");
    gone.revoked_date = Some(now());
    s.insert(&gone).await.unwrap();
    assert_eq!(s.get_key(&gone.id).await.unwrap().unwrap(), gone);
    assert!(!s.revoke(&gone.id, now()).await.unwrap());
}

fn result(mid: &rez_core::MessageId, created: rez_core::time::Timestamp) -> WebActionResult {
    WebActionResult {
        id: rez_core::ResultId::new(created),
        message_id: mid.clone(),
        action: "weather".into(),
        operation: "forecast".into(),
        status: ResultStatus::Success,
        response_code: Some(200),
        response_body: Some("x".repeat(1000)),
        output: serde_json::json!({"n": 1}),
        error_message: None,
        execution_time_ms: 3,
        attempt: 1,
        created_date: created,
        ttl: created + RESULT_TTL,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_finds_expired_results_across_messages_and_pages() {
    let s = common::store().await;
    let t = now();
    let mut expired = 0;
    let mut kept = Vec::new();
    for i in 0..30i64 {
        let mid = rez_core::MessageId::new(t);
        let old = result(&mid, t - chrono::TimeDelta::days(3) - chrono::TimeDelta::minutes(i + 1));
        s.put_result(&old).await.unwrap();
        expired += 1;
        let fresh = result(&mid, t - chrono::TimeDelta::hours(i));
        s.put_result(&fresh).await.unwrap();
        kept.push((mid, fresh));
    }
    assert_eq!(s.purge_expired_results(t).await.unwrap(), expired);
    assert_eq!(s.purge_expired_results(t).await.unwrap(), 0, "nothing left to purge");
    for (mid, fresh) in kept {
        assert_eq!(s.results_for(&mid).await.unwrap(), vec![fresh]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_result_is_not_purged_by_its_old_expiry() {
    let s = common::store().await;
    let t = now();
    let mid = rez_core::MessageId::new(t);
    let mut r = result(&mid, t - chrono::TimeDelta::days(4));
    s.put_result(&r).await.unwrap();
    r.ttl = t + RESULT_TTL;
    s.put_result(&r).await.unwrap();
    assert_eq!(s.purge_expired_results(t).await.unwrap(), 0);
    assert_eq!(s.results_for(&mid).await.unwrap(), vec![r]);
}

fn intent() -> BookingIntent {
    BookingIntent {
        course_id: "birdsfoot".into(),
        course_name: "Birdsfoot".into(),
        tee_sheet_id: 1,
        start_time: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(8, 0, 0).unwrap(),
        players: 2,
        holes: 18,
        recorded_at: now(),
    }
}

fn lease(secs: i64) -> Lease {
    Lease { attempt: AttemptId::new(now()), until: now() + chrono::TimeDelta::seconds(secs) }
}

/// A row whose parts cannot be decoded holds the key: it is never claimed, and nothing
/// can be written over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_item_holds_the_key() {
    let (clients, names) = common::deployment().await;
    let s = common::store_on(clients.clone(), names.clone());
    let key = BookingKey::new("msg_corrupt").unwrap();
    let a = lease(60);
    assert_eq!(s.claim(&key, &a, now()).await.unwrap(), ClaimOutcome::Claimed(None));
    assert!(s.record_intent(&key, &a.attempt, &intent()).await.unwrap());
    // The intent is damaged in storage (a bad write, a hand edit, an old format).
    clients
        .dynamodb
        .update_item()
        .table_name(&names.ledger_table)
        .key("key", AttributeValue::S(key.as_str().into()))
        .update_expression("SET #intent = :bad REMOVE lease_attempt, lease_until_ms")
        .expression_attribute_names("#intent", "intent")
        .expression_attribute_values(":bad", AttributeValue::S("{\"course_id\": 12".into()))
        .send()
        .await
        .unwrap();
    let entry = s.get(&key).await.unwrap().unwrap();
    assert!(matches!(entry.state, LedgerState::Unreadable { ref reason } if reason.starts_with("intent")), "{entry:?}");
    let b = lease(60);
    assert!(matches!(s.claim(&key, &b, now()).await.unwrap(), ClaimOutcome::Unreadable(_)));
    assert!(!s.mark_failed(&key, &b.attempt, "x").await.unwrap());
    assert!(matches!(s.get(&key).await.unwrap().unwrap().state, LedgerState::Unreadable { .. }), "unchanged");
}

/// Items written before leases existed (no `rev`, no lease) are claimed like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_from_before_leases_is_claimed() {
    let (clients, names) = common::deployment().await;
    let s = common::store_on(clients.clone(), names.clone());
    let key = BookingKey::new("msg_old").unwrap();
    let old = intent();
    let body = serde_json::to_string(&old).unwrap();
    clients
        .dynamodb
        .put_item()
        .table_name(&names.ledger_table)
        .item("key", AttributeValue::S(key.as_str().into()))
        .item("state", AttributeValue::S("pending".into()))
        .item("intent", AttributeValue::S(body))
        .item("updated_ms", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let a = lease(60);
    let ClaimOutcome::Claimed(Some(before)) = s.claim(&key, &a, now()).await.unwrap() else { panic!("claimed") };
    assert_eq!((before.state, before.intent), (LedgerState::Pending, Some(old)));
    assert!(matches!(s.claim(&key, &lease(60), now()).await.unwrap(), ClaimOutcome::Held { .. }));
}

/// Two deliveries of one booking at once, many times over, through the claim and the
/// intent: exactly one goes ahead each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_on_one_key_admit_exactly_one() {
    let s = Arc::new(common::store().await);
    for round in 0..25 {
        let key = BookingKey::new(format!("msg_race_{round}")).unwrap();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (s, key, l) = (Arc::clone(&s), key.clone(), lease(60));
                tokio::spawn(async move {
                    let claimed = matches!(s.claim(&key, &l, now()).await.unwrap(), ClaimOutcome::Claimed(_));
                    let wrote = s.record_intent(&key, &l.attempt, &intent()).await.unwrap();
                    (claimed, wrote)
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results.sort();
        assert_eq!(results, vec![(false, false), (true, true)], "round {round}");
    }
}

// ------------------------------------------------------------------------ schedules

use rez_core::ports::{FireOutcome, MessageStore, ScheduleFilter, ScheduleStore, StoreError};
use rez_core::schedules::{Schedule, ScheduleStatus, TargetType};

use rez_port_suite::{firing_of, schedule};

async fn list_all(s: &AwsStore, mut filter: ScheduleFilter) -> Vec<Schedule> {
    let mut out = Vec::new();
    loop {
        let page = s.list_schedules(&filter).await.unwrap();
        assert!(page.items.len() <= filter.limit);
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_through_filters_and_never_show_the_lease() {
    let s = common::store().await;
    assert!(s.acquire_engine_lease("engine-1", Duration::from_secs(60)).await.unwrap());
    let mut all = Vec::new();
    for i in 0..13 {
        let mut sc = schedule(&format!("s{i}"), "rate(1 hour)");
        if i % 4 == 0 {
            sc.target_type = TargetType::Agent;
            sc.target = serde_json::json!({"prompt": "book"}).as_object().unwrap().clone();
        }
        if i % 5 == 0 {
            sc.status = ScheduleStatus::Paused;
        }
        s.insert_schedule(&sc).await.unwrap();
        all.push(sc);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    all.reverse(); // newest first
    let ids = |v: &[Schedule]| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
    let listed = list_all(&s, ScheduleFilter { limit: 4, ..Default::default() }).await;
    assert_eq!(ids(&listed), ids(&all), "every schedule once, newest first, no lease item");
    let agents =
        list_all(&s, ScheduleFilter { target_type: Some(TargetType::Agent), limit: 2, ..Default::default() }).await;
    let want: Vec<_> = all.iter().filter(|x| x.target_type == TargetType::Agent).cloned().collect();
    assert_eq!(ids(&agents), ids(&want), "filtered pages are filled across short DynamoDB pages");
    let paused_agents = list_all(
        &s,
        ScheduleFilter {
            status: Some(ScheduleStatus::Paused),
            target_type: Some(TargetType::Agent),
            limit: 1,
            ..Default::default()
        },
    )
    .await;
    let want: Vec<_> = all
        .iter()
        .filter(|x| x.target_type == TargetType::Agent && x.status == ScheduleStatus::Paused)
        .cloned()
        .collect();
    assert_eq!(ids(&paused_agents), ids(&want));
    // Deleting hides a schedule from the default listing but not from a status listing.
    let victim = all[0].clone();
    let mut del = victim.clone();
    del.status = ScheduleStatus::Deleted;
    s.update_schedule(&del, 1).await.unwrap();
    let listed = list_all(&s, ScheduleFilter { limit: 100, ..Default::default() }).await;
    assert_eq!(listed.len(), 12);
    assert!(!listed.iter().any(|x| x.id == victim.id));
    let deleted =
        list_all(&s, ScheduleFilter { status: Some(ScheduleStatus::Deleted), limit: 5, ..Default::default() }).await;
    assert_eq!(ids(&deleted), vec![victim.id]);
    let bad =
        s.list_schedules(&ScheduleFilter { limit: 5, cursor: Some("garbage".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_conditional_on_the_version() {
    let s = common::store().await;
    let a = schedule("a", "rate(5 minutes)");
    s.insert_schedule(&a).await.unwrap();
    let v2 = s.update_schedule(&a, 1).await.unwrap();
    assert_eq!(v2.version, 2);
    assert!(matches!(s.update_schedule(&a, 1).await, Err(StoreError::Conflict(_))));
    assert!(matches!(s.update_schedule(&a, 5).await, Err(StoreError::Conflict(_))));
    let missing = schedule("missing", "rate(5 minutes)");
    assert!(matches!(s.update_schedule(&missing, 1).await, Err(StoreError::Conflict(_))));
    assert!(s.get_schedule(&missing.id).await.unwrap().is_none());
    assert_eq!(s.get_schedule(&a.id).await.unwrap().unwrap(), v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_due_index_follows_status_and_the_flexible_window() {
    let s = common::store().await;
    let t = now();
    let mut a = schedule("a", "rate(1 hour)");
    a.next_fire_at = Some(t - chrono::TimeDelta::minutes(5));
    let mut flex = schedule("flex", "rate(1 hour)");
    flex.flexible_time_window_minutes = 15;
    flex.next_fire_at = Some(t - chrono::TimeDelta::hours(2));
    s.insert_schedule(&a).await.unwrap();
    s.insert_schedule(&flex).await.unwrap();
    let flex_due = rez_core::schedules::due_at(&flex.id, flex.next_fire_at.unwrap(), 15);
    let due = s.due_schedules(t, 10).await.unwrap();
    assert_eq!(due.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["flex", "a"]);
    assert_eq!(s.next_due().await.unwrap(), Some(flex_due), "the due time includes the window offset");
    assert!(s.due_schedules(t, 0).await.unwrap().is_empty());
    // Pausing removes it from the due index; completing the other empties it.
    let mut paused = flex.clone();
    paused.status = ScheduleStatus::Paused;
    s.update_schedule(&paused, 1).await.unwrap();
    let mut done = a.clone();
    done.status = ScheduleStatus::Completed;
    done.next_fire_at = None;
    s.update_schedule(&done, 1).await.unwrap();
    assert!(s.due_schedules(t, 10).await.unwrap().is_empty());
    assert_eq!(s.next_due().await.unwrap(), None);
}

/// moto's own `TransactWriteItems` is not isolated (a cancelled transaction puts back a
/// snapshot over one that committed meanwhile, moto 5.2.5); the tests' proxy passes
/// DynamoDB calls on one at a time, which gives the isolation DynamoDB guarantees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_firings_of_one_plan_apply_once() {
    let s = Arc::new(common::store().await);
    let sc = schedule("race", "rate(1 hour)");
    s.insert_schedule(&sc).await.unwrap();
    let at = sc.next_fire_at.unwrap();
    // Each racer builds its own message (as two engines would), for the same occurrence.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (s, f) = (Arc::clone(&s), firing_of(&sc, at));
            tokio::spawn(async move { s.fire(&f).await.unwrap() })
        })
        .collect();
    let mut applied = Vec::new();
    let mut stale = 0;
    for t in tasks {
        match t.await.unwrap() {
            FireOutcome::Applied { schedule, message } => applied.push((schedule, message)),
            FireOutcome::Stale => stale += 1,
        }
    }
    assert_eq!((applied.len(), stale), (1, 3));
    let (after, message) = applied.remove(0);
    let m = message.expect("fired");
    assert_eq!((after.version, after.execution_count), (2, 1));
    assert_eq!(s.get_schedule(&sc.id).await.unwrap().unwrap(), *after);
    assert_eq!(s.get_message(&m.id).await.unwrap().unwrap().status, rez_core::status::Status::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_fired_before_keeps_its_message() {
    let s = common::store().await;
    let sc = schedule("retry", "rate(1 hour)");
    s.insert_schedule(&sc).await.unwrap();
    let at = sc.next_fire_at.unwrap();
    // The occurrence's message already exists (an earlier firing whose schedule update
    // was superseded, or an EventBridge retry).
    let first = firing_of(&sc, at).message.unwrap();
    let first = s.submit(first).await.unwrap().into_message();
    let FireOutcome::Applied { schedule: after, message: Some(m) } = s.fire(&firing_of(&sc, at)).await.unwrap() else {
        panic!("applies");
    };
    assert_eq!(m.id, first.id);
    assert_eq!((after.version, after.execution_count, after.last_fired_at), (2, 0, None));
    assert_eq!(after.next_fire_at, sc.next_after(at));
    assert_eq!(s.get_schedule(&sc.id).await.unwrap().unwrap(), *after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firings_without_a_message_and_of_unknown_schedules() {
    let s = common::store().await;
    let sc = schedule("missed", "rate(1 hour)");
    s.insert_schedule(&sc).await.unwrap();
    let mut f = firing_of(&sc, sc.next_fire_at.unwrap());
    f.message = None;
    f.missed = 3;
    f.last_error = Some("down".into());
    let FireOutcome::Applied { schedule: after, message: None } = s.fire(&f).await.unwrap() else {
        panic!("applies without a message");
    };
    assert_eq!((after.version, after.missed_count, after.execution_count), (2, 3, 0));
    assert_eq!(after.last_error.as_deref(), Some("down"));
    assert!(matches!(s.fire(&f).await.unwrap(), FireOutcome::Stale));
    let ghost = schedule("ghost", "rate(1 hour)");
    let g = firing_of(&ghost, ghost.next_fire_at.unwrap());
    assert!(matches!(s.fire(&g).await, Err(StoreError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_lease_expires_and_is_taken_over() {
    let s = common::store().await;
    assert!(s.acquire_engine_lease("a", Duration::from_millis(300)).await.unwrap());
    assert!(!s.acquire_engine_lease("b", Duration::from_secs(60)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(s.acquire_engine_lease("b", Duration::from_secs(60)).await.unwrap());
    assert!(!s.acquire_engine_lease("a", Duration::from_millis(300)).await.unwrap(), "b's fresh lease holds");
    assert!(s.acquire_engine_lease("b", Duration::from_secs(60)).await.unwrap(), "the holder renews");
    assert!(s.due_schedules(now(), 10).await.unwrap().is_empty());
    assert_eq!(s.next_due().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_plan_is_stale_even_with_a_fresh_message() {
    // Two engines planned the same firing, each with its own message for the occurrence:
    // the second finds both the version and the idempotency key taken, and is stale.
    let s = common::store().await;
    let sc = schedule("replay", "rate(1 hour)");
    s.insert_schedule(&sc).await.unwrap();
    let at = sc.next_fire_at.unwrap();
    let (one, two) = (firing_of(&sc, at), firing_of(&sc, at));
    let FireOutcome::Applied { schedule: after, message: Some(m) } = s.fire(&one).await.unwrap() else {
        panic!("the first firing applies");
    };
    assert!(matches!(s.fire(&two).await.unwrap(), FireOutcome::Stale));
    assert_eq!(s.get_schedule(&sc.id).await.unwrap().unwrap(), *after);
    assert_eq!(s.get_message(&m.id).await.unwrap().unwrap().status, rez_core::status::Status::Queued);
    let second = two.message.unwrap().id;
    assert!(s.get_message(&second).await.unwrap().is_none(), "the stale firing stored nothing");
}

//! AWS-specific checks of the DynamoDB stores (api keys, schedules, results, booking
//! ledger) on moto, beyond the shared port suite: the item layouts the listings and
//! indexes rely on, optimistic concurrency, racing firings, lease expiry, pagination.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rez_aws::AwsStore;
use rez_core::auth::{ApiKeyId, ApiKeyRecord, Scope};
use rez_core::booking::{BookingIntent, BookingKey, BookingLedger, IntentOutcome, LedgerState};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_intents_on_one_key_admit_exactly_one() {
    let s = Arc::new(common::store().await);
    let key = BookingKey::new("msg_race").unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, key) = (Arc::clone(&s), key.clone());
            tokio::spawn(async move { s.record_intent(&key, &intent()).await.unwrap() })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        match t.await.unwrap() {
            IntentOutcome::New => new += 1,
            IntentOutcome::Pending(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(new, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_failed_before_any_intent_admits_one_later() {
    let s: AwsStore = common::store().await;
    let key = BookingKey::new("msg_early_failure").unwrap();
    s.mark_failed(&key, "no credentials").await.unwrap();
    let e = s.get(&key).await.unwrap().unwrap();
    assert_eq!((e.intent, e.state), (None, LedgerState::Failed { error: "no credentials".into() }));
    let i = intent();
    assert_eq!(s.record_intent(&key, &i).await.unwrap(), IntentOutcome::New);
    let e = s.get(&key).await.unwrap().unwrap();
    assert_eq!((e.intent, e.state), (Some(i), LedgerState::Pending));
}

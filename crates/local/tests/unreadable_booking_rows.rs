//! A booking ledger row that can no longer be read (a damaged intent, an unknown state)
//! holds its key: it reads as unreadable, is never claimed, and nothing is written over
//! it. Reading it as "no intent" would release the key and allow a second booking.

use std::sync::Arc;

use rez_core::booking::{AttemptId, BookingIntent, BookingKey, BookingLedger, ClaimOutcome, Lease, LedgerState};
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::StoreError;
use rez_local::{LocalStore, QueueConfig};

fn lease(clock: &dyn Clock) -> Lease {
    Lease { attempt: AttemptId::new(clock.now()), until: clock.now() + chrono::TimeDelta::seconds(60) }
}

async fn damage(store: &LocalStore, sql: &'static str, key: &str) {
    let key = key.to_owned();
    store
        .db()
        .write(move |ctx| ctx.tx.execute(sql, [&key]).map(|_| ()).map_err(|e| StoreError::Unavailable(e.to_string())))
        .await
        .expect("damage the row");
}

#[tokio::test]
async fn an_unreadable_booking_row_holds_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = LocalStore::open(&dir.path().join("rez.db"), clock.clone(), QueueConfig::default()).expect("open");
    let intent = BookingIntent {
        course_id: "birdsfoot".into(),
        course_name: "Birdsfoot Golf Course".into(),
        tee_sheet_id: 5,
        start_time: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).unwrap().and_hms_opt(8, 10, 0).unwrap(),
        players: 2,
        holes: 18,
        recorded_at: clock.now(),
    };
    for (name, sql) in [
        ("msg_bad_intent", "UPDATE booking_ledger SET intent = '{\"course_id\": 1' WHERE key = ?1"),
        ("msg_bad_state", "UPDATE booking_ledger SET state = 'reserving' WHERE key = ?1"),
        ("msg_half_lease", "UPDATE booking_ledger SET lease_until_ms = NULL WHERE key = ?1"),
    ] {
        let key = BookingKey::new(name).unwrap();
        let a = lease(&*clock);
        assert_eq!(store.claim(&key, &a, clock.now()).await.unwrap(), ClaimOutcome::Claimed(None));
        assert!(store.record_intent(&key, &a.attempt, &intent).await.unwrap());
        damage(&store, sql, name).await;
        let entry = store.get(&key).await.unwrap().unwrap();
        assert!(matches!(entry.state, LedgerState::Unreadable { .. }), "{name}: {entry:?}");
        // Not even the attempt that wrote it, nor a later one, can claim or change it.
        assert!(matches!(store.claim(&key, &lease(&*clock), clock.now()).await.unwrap(), ClaimOutcome::Unreadable(_)));
        assert!(!store.mark_failed(&key, &a.attempt, "x").await.unwrap(), "{name}");
        assert!(!store.end_lease(&key, &a.attempt).await.unwrap(), "{name}");
        assert!(matches!(store.get(&key).await.unwrap().unwrap().state, LedgerState::Unreadable { .. }), "{name}");
    }
}

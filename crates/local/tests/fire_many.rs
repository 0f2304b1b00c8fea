//! `ScheduleStore::fire_many` on SQLite: a batch is one writer job, but every firing in it
//! stands alone (its own savepoint), and a batch replayed after a restart fires nothing
//! twice.

use std::path::Path;
use std::sync::Arc;

use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, Message};
use rez_core::ports::*;
use rez_core::schedules::Schedule;
use rez_core::time::Timestamp;
use rez_local::{LocalStore, QueueConfig};

fn open(path: &Path) -> LocalStore {
    LocalStore::open(path, Arc::new(SystemClock), QueueConfig::default()).expect("open")
}

fn schedule(name: &str) -> Schedule {
    rez_port_suite::schedule(name, "rate(1 hour)")
}

/// The firing of `s`'s occurrence at `at`, planned as of that instant (the engine's
/// look-ahead does so; `rez_port_suite::firing_of` plans as of now).
fn firing(s: &Schedule, at: Timestamp) -> Firing {
    let new = s.message_for(at).expect("target");
    Firing {
        schedule: Box::new(s.clone()),
        message: Some(Message::create(new, CreatedBy::Scheduler, at)),
        missed: 0,
        next_fire_at: s.next_after(at),
        status: s.status,
        last_error: None,
        at,
    }
}

async fn scheduler_messages(store: &LocalStore) -> Vec<Message> {
    store
        .list_messages(&MessageFilter { created_by: Some(CreatedBy::Scheduler), limit: 100, ..Default::default() })
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn one_stale_missing_or_failing_firing_does_not_affect_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("rez.db"));
    let (a, b, c, d) = (schedule("a"), schedule("b"), schedule("c"), schedule("d"));
    for s in [&a, &b, &c, &d] {
        store.insert_schedule(s).await.unwrap();
    }
    let missing = schedule("never stored");
    // `b` changes after it was planned: its firing is stale.
    let mut renamed = b.clone();
    renamed.name = "b2".into();
    store.update_schedule(&renamed, 1).await.unwrap();
    let at = a.next_fire_at.unwrap();
    let fa = firing(&a, at);
    // `c`'s message reuses `a`'s id: its insert fails after its schedule row and key were
    // written, so its savepoint must undo both.
    let mut fc = firing(&c, at);
    fc.message.as_mut().unwrap().id = fa.message.as_ref().unwrap().id.clone();
    let batch = [fa.clone(), firing(&b, at), firing(&missing, at), fc, firing(&d, at)];

    let out = store.fire_many(&batch).await;
    assert_eq!(out.len(), 5, "one outcome per firing, in order");
    let Ok(FireOutcome::Applied { schedule: after_a, message: Some(ma) }) = &out[0] else {
        panic!("a applies: {:?}", out[0]);
    };
    assert_eq!((after_a.version, after_a.execution_count, after_a.last_fired_at), (2, 1, Some(at)));
    assert!(matches!(out[1], Ok(FireOutcome::Stale)), "{:?}", out[1]);
    assert!(matches!(out[2], Err(StoreError::NotFound(_))), "{:?}", out[2]);
    assert!(matches!(out[3], Err(StoreError::Conflict(_))), "{:?}", out[3]);
    assert!(matches!(out[4], Ok(FireOutcome::Applied { message: Some(_), .. })), "{:?}", out[4]);

    // What the store holds matches the outcomes.
    assert_eq!(store.get_schedule(&a.id).await.unwrap().unwrap(), **after_a);
    assert_eq!(store.get_schedule(&b.id).await.unwrap().unwrap().version, 2, "only the update");
    let c_now = store.get_schedule(&c.id).await.unwrap().unwrap();
    assert_eq!((c_now.version, c_now.execution_count), (1, 0), "the failed firing left no trace");
    assert_eq!(store.get_schedule(&d.id).await.unwrap().unwrap().execution_count, 1);
    let msgs = scheduler_messages(&store).await;
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().any(|m| m.id == ma.id && m.payload["message"] == "a"));
    // The failed firing's idempotency key was rolled back too: a retry creates its message.
    let Ok(FireOutcome::Applied { message: Some(mc), .. }) = store.fire(&firing(&c, at)).await else {
        panic!("c fires on retry");
    };
    assert_eq!(mc.payload["message"], "c");
    assert_eq!(scheduler_messages(&store).await.len(), 3);
    // All three queued for delivery.
    let q = store.stats().await.unwrap();
    assert_eq!(q.iter().find(|s| s.queue == rez_core::QueueName::Notifications).unwrap().depth, 3);
}

#[tokio::test]
async fn a_batch_replayed_across_a_restart_fires_each_occurrence_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rez.db");
    let schedules: Vec<Schedule> = (0..20).map(|i| schedule(&format!("s{i}"))).collect();
    let at = schedules[0].next_fire_at.unwrap();
    let plans: Vec<Firing> = schedules.iter().map(|s| firing(s, at)).collect();
    let first = {
        let store = open(&path);
        for s in &schedules {
            store.insert_schedule(s).await.unwrap();
        }
        let out = store.fire_many(&plans).await;
        assert!(out.iter().all(|o| matches!(o, Ok(FireOutcome::Applied { message: Some(_), .. }))));
        scheduler_messages(&store).await
    };
    assert_eq!(first.len(), 20);

    // "Restart": a new process on the same database.
    let store = open(&path);
    // The same plans again (an engine that crashed after the commit): all stale.
    let out = store.fire_many(&plans).await;
    assert!(out.iter().all(|o| matches!(o, Ok(FireOutcome::Stale))), "{out:?}");
    // Re-planned from the stored versions, the same occurrences map to the same messages,
    // and the counters are not bumped twice.
    let mut replanned = Vec::new();
    for s in &schedules {
        let stored = store.get_schedule(&s.id).await.unwrap().unwrap();
        let mut f = firing(&stored, at);
        f.at = at + chrono::TimeDelta::seconds(1);
        replanned.push(f);
    }
    let out = store.fire_many(&replanned).await;
    for o in &out {
        let Ok(FireOutcome::Applied { schedule, message: Some(m) }) = o else { panic!("{o:?}") };
        assert!(first.iter().any(|f| f.id == m.id), "an occurrence got a second message");
        assert_eq!((schedule.version, schedule.execution_count, schedule.last_fired_at), (3, 1, Some(at)));
        assert_eq!(store.get_schedule(&schedule.id).await.unwrap().unwrap(), **schedule);
    }
    assert_eq!(scheduler_messages(&store).await.len(), 20);
}

/// A big batch planned ahead is written ahead, but committed only once the gate opens:
/// nothing it creates is visible before the instant, and all of it is after.
#[tokio::test]
async fn a_batch_written_ahead_commits_only_when_the_gate_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("rez.db")));
    let schedules: Vec<Schedule> = (0..100).map(|i| schedule(&format!("s{i}"))).collect();
    for s in &schedules {
        store.insert_schedule(s).await.unwrap();
    }
    let lead = std::time::Duration::from_millis(400);
    let instant = SystemClock.now() + chrono::Duration::from_std(lead).unwrap();
    let firings: Vec<Firing> = schedules.iter().map(|s| firing(s, instant)).collect();
    let gate: Gate = Box::pin(async move {
        loop {
            let d = (instant - SystemClock.now()).to_std().unwrap_or_default();
            if d.is_zero() {
                return;
            }
            tokio::time::sleep(d).await;
        }
    });
    let s = store.clone();
    let fired = tokio::spawn(async move { s.fire_many_after(&firings, gate).await });
    // Until shortly before the instant, nothing is visible (the batch may already be
    // written, uncommitted, in the writer).
    while SystemClock.now() + chrono::Duration::milliseconds(5) < instant {
        assert!(scheduler_messages(&store).await.is_empty(), "a firing was visible before its instant");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let outcomes = fired.await.unwrap();
    assert!(SystemClock.now() >= instant, "fire_many_after returned before the gate opened");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(FireOutcome::Applied { .. }))), "{outcomes:?}");
    let all = store
        .list_messages(&MessageFilter { created_by: Some(CreatedBy::Scheduler), limit: 200, ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 100);
}

//! The shared port suite against the SQLite adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::clock::SystemClock;
use rez_local::{LocalStore, QueueConfig};
use rez_port_suite::{Fixture, Store};

#[derive(Default)]
struct Sqlite;

fn fresh_store(direct_handoff: bool) -> Arc<LocalStore> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    // Keep the directory for the life of the test process.
    std::mem::forget(dir);
    let config = QueueConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        direct_handoff,
    };
    Arc::new(LocalStore::open(&path, Arc::new(SystemClock), config).expect("open"))
}

#[async_trait]
impl Fixture for Sqlite {
    async fn fresh(&self) -> Arc<dyn Store> {
        fresh_store(false)
    }
}

rez_port_suite::port_suite!(Sqlite);

/// The same suite with the direct hand-off on, as `rez serve` runs: messages published
/// while a consumer keeps up are claimed for it at publish, which must not change what
/// the ports promise.
mod with_direct_handoff {
    use super::*;

    #[derive(Default)]
    struct SqliteHandoff;

    #[async_trait]
    impl Fixture for SqliteHandoff {
        async fn fresh(&self) -> Arc<dyn Store> {
            fresh_store(true)
        }
    }

    rez_port_suite::port_suite!(SqliteHandoff);
}

fn notify_message(text: &str) -> rez_core::message::Message {
    use rez_core::clock::{Clock, SystemClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": text}}), Stage::Dev)
            .expect("notify");
    Message::create(new, CreatedBy::Api, SystemClock.now())
}

/// SQLite-specific: a message published while this process's consumer keeps up is
/// claimed for it in the publish transaction and handed over in memory; the database
/// shows it in flight and `processing`, and completing it works as after any receive.
#[tokio::test]
async fn a_message_for_a_caught_up_consumer_is_handed_over() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    assert!(store.receive(q, 10, Duration::from_secs(30)).await.expect("receive").is_empty());
    let m = notify_message("handed");
    let id = m.id.clone();
    let accepted = store.submit(m).await.expect("submit").into_message();
    assert_eq!(accepted.status, Status::Queued, "the answer is the message as accepted");
    let stored = store.get_message(&id).await.expect("get").expect("stored");
    assert_eq!(stored.status, Status::Processing, "claimed in the same transaction");
    let stats = store.stats().await.expect("stats");
    let notify = stats.iter().find(|s| s.queue == q).expect("queue stats");
    assert_eq!((notify.depth, notify.in_flight), (0, 1));

    let got = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].message.id.clone(), got[0].receive_count), (id.clone(), 1));
    assert_eq!(got[0].message.status, Status::Processing);
    store.complete(&got[0]).await.expect("complete");
    assert_eq!(store.get_message(&id).await.expect("get").expect("stored").status, Status::Completed);
    assert!(store.receive(q, 10, Duration::from_secs(30)).await.expect("receive").is_empty(), "handed over once");
}

/// SQLite-specific: while the consumer has a backlog in the database, new messages queue
/// behind it instead of being handed over ahead of it.
#[tokio::test]
async fn a_backlog_is_not_overtaken_by_handed_over_messages() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    let mut first = Vec::new();
    for i in 0..12 {
        first.push(store.submit(notify_message(&format!("backlog {i}"))).await.expect("submit").into_message().id);
    }
    let ten = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    assert_eq!(ten.len(), 10, "a full batch: the consumer has a backlog");
    let late = store.submit(notify_message("late")).await.expect("submit").into_message().id;
    assert_eq!(store.get_message(&late).await.expect("get").expect("stored").status, Status::Queued);
    let rest = store.receive(q, 10, Duration::from_secs(30)).await.expect("receive");
    let mut ids: Vec<_> = rest.iter().map(|d| d.message.id.clone()).collect();
    assert_eq!(ids.pop(), Some(late), "after the backlog, from the database");
    // The backlog, in either batch (messages enqueued in the same millisecond come in
    // any order).
    ids.extend(ten.iter().map(|d| d.message.id.clone()));
    ids.sort();
    first.sort();
    assert_eq!(ids, first, "the whole backlog before the late message");
    // Now it keeps up: the next message is handed over.
    let next = store.submit(notify_message("next")).await.expect("submit").into_message().id;
    assert_eq!(store.get_message(&next).await.expect("get").expect("stored").status, Status::Processing);
}

/// SQLite-specific: once the hand-off is full, new messages wait in the database, and
/// later ones queue behind them until the consumer has caught up with the database.
#[tokio::test]
async fn a_full_hand_off_queues_new_messages_behind_it() {
    use rez_core::QueueName;
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::status::Status;

    let store = fresh_store(true);
    let q = QueueName::Notifications;
    let vis = Duration::from_secs(30);
    let status = |id: rez_core::MessageId| {
        let store = store.clone();
        async move { store.get_message(&id).await.expect("get").expect("stored").status }
    };
    assert!(store.receive(q, 10, vis).await.expect("receive").is_empty());
    for i in 0..rez_local::HANDOFF_MAX_WAITING {
        let id = store.submit(notify_message(&format!("handed {i}"))).await.expect("submit").into_message().id;
        assert_eq!(status(id).await, Status::Processing);
    }
    let overflow = store.submit(notify_message("overflow")).await.expect("submit").into_message().id;
    assert_eq!(status(overflow.clone()).await, Status::Queued, "the hand-off is full");
    assert_eq!(store.receive(q, 10, vis).await.expect("receive").len(), 10, "handed over");
    let behind = store.submit(notify_message("behind")).await.expect("submit").into_message().id;
    assert_eq!(status(behind.clone()).await, Status::Queued, "queues behind the one waiting in the database");
    let mut handed = 10;
    let mut from_db = Vec::new();
    loop {
        let got = store.receive(q, 10, vis).await.expect("receive");
        if got.is_empty() {
            break;
        }
        for d in got {
            if d.message.id == overflow || d.message.id == behind {
                from_db.push(d.message.id);
            } else {
                assert!(from_db.is_empty(), "handed-over messages come before the database's");
                handed += 1;
            }
        }
    }
    // The two waited in the database; enqueued in the same millisecond, they come in
    // either order.
    from_db.sort();
    let mut waited = vec![overflow, behind];
    waited.sort();
    assert_eq!((handed, from_db), (rez_local::HANDOFF_MAX_WAITING, waited));
    let next = store.submit(notify_message("next")).await.expect("submit").into_message().id;
    assert_eq!(status(next).await, Status::Processing, "caught up again");
}

/// SQLite-specific: a claim made for a process that then dies is reclaimed like any
/// in-flight delivery once its lease is stale, and received again elsewhere.
#[tokio::test]
async fn a_claim_of_a_dead_process_is_reclaimed() {
    use rez_core::QueueName;
    use rez_core::clock::ManualClock;
    use rez_core::ports::{MessageStore, Queues};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let config = QueueConfig { direct_handoff: true, ..QueueConfig::default() };
    let dead = LocalStore::open(&path, clock.clone(), config.clone()).expect("open");
    let alive = LocalStore::open(&path, clock.clone(), config).expect("open");
    let q = QueueName::Notifications;
    let vis = Duration::from_secs(360);
    assert!(dead.receive(q, 10, vis).await.expect("receive").is_empty());
    let id = dead.submit(notify_message("claimed")).await.expect("submit").into_message().id;
    // `dead` never takes it and stops heartbeating.
    assert!(alive.receive(q, 10, vis).await.expect("receive").is_empty(), "claimed by the other process");
    clock.advance(chrono::Duration::seconds(7));
    assert_eq!(alive.heartbeat().await.expect("heartbeat"), 1);
    let again = alive.receive(q, 10, vis).await.expect("receive");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message.id.clone(), again[0].receive_count), (id, 2));
    alive.complete(&again[0]).await.expect("complete");
}

/// SQLite-specific: the in-flight work of a process that died is reclaimed by the next
/// heartbeat of a live process once the dead lease is stale, long before the
/// visibility timeout.
#[tokio::test]
async fn dead_process_work_is_reclaimed() {
    use rez_core::clock::{Clock, ManualClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    use rez_core::ports::{MessageStore, Queues};
    use rez_core::{MessageType, QueueName};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rez.db");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let dead = LocalStore::open(&path, clock.clone(), QueueConfig::default()).unwrap();
    let alive = LocalStore::open(&path, clock.clone(), QueueConfig::default()).unwrap();
    dead.heartbeat().await.unwrap();
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}), Stage::Dev)
            .unwrap();
    assert_eq!(new.message_type, MessageType::Notify);
    dead.submit(Message::create(new, CreatedBy::Api, clock.now())).await.unwrap();
    let d = dead.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap();
    assert_eq!(d.len(), 1);
    // `dead` stops heartbeating. Within the stale window nothing is reclaimed...
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(alive.heartbeat().await.unwrap(), 0);
    assert!(alive.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().is_empty());
    // ...after it, the work is visible again, long before the 6-minute visibility timeout.
    clock.advance(chrono::Duration::seconds(5));
    assert_eq!(alive.heartbeat().await.unwrap(), 1);
    let again = alive.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    // The dead process's receipt no longer works.
    assert!(dead.complete(&d[0]).await.is_err());
    alive.complete(&again[0]).await.unwrap();
}

/// SQLite-specific: a process that resigned (clean shutdown) with deliveries still in
/// flight does not strand them.
#[tokio::test]
async fn resigned_process_work_is_reclaimed() {
    use rez_core::QueueName;
    use rez_core::clock::{Clock, SystemClock};
    use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
    use rez_core::ports::{MessageStore, Queues};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rez.db");
    let a = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).unwrap();
    let b = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).unwrap();
    a.heartbeat().await.unwrap();
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}), Stage::Dev)
            .unwrap();
    a.submit(Message::create(new, CreatedBy::Api, SystemClock.now())).await.unwrap();
    assert_eq!(a.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().len(), 1);
    a.resign().await.unwrap();
    assert_eq!(b.heartbeat().await.unwrap(), 1);
    assert_eq!(b.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.unwrap().len(), 1);
}

/// The agent's run store and budget ledger on the same database.
mod agent {
    use super::*;
    use rez_core::agent::store::{AgentStore, BudgetLedger};
    use rez_port_suite::agent::AgentFixture;

    #[derive(Default)]
    struct SqliteAgent;

    #[async_trait]
    impl AgentFixture for SqliteAgent {
        async fn fresh_agent(&self) -> (Arc<dyn AgentStore>, Arc<dyn BudgetLedger>) {
            let store = fresh_store(false);
            (store.clone(), store)
        }
    }

    rez_port_suite::agent_port_suite!(SqliteAgent);
}

//! The shared port suite against the SQLite adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::clock::SystemClock;
use rez_local::{LocalStore, QueueConfig};
use rez_port_suite::{Fixture, Store};

#[derive(Default)]
struct Sqlite;

#[async_trait]
impl Fixture for Sqlite {
    async fn fresh(&self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rez.db");
        // Keep the directory for the life of the test process.
        std::mem::forget(dir);
        let config = QueueConfig { backoff_base: Duration::from_millis(100), backoff_max: Duration::from_millis(400) };
        Arc::new(LocalStore::open(&path, Arc::new(SystemClock), config).expect("open"))
    }
}

rez_port_suite::port_suite!(Sqlite);

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

//! A stored message that can no longer be read (a damaged row, or a field this build does
//! not know) must not wedge its queue: the receive that meets it dead-letters it with the
//! reason and delivers the rest of the batch. (The receive runs without a savepoint, so a
//! failure there would otherwise take its whole group of writes down, again and again.)

use std::sync::Arc;
use std::time::Duration;

use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
use rez_core::ports::{MessageStore, Queues, StoreError};
use rez_core::routing::QueueName;
use rez_local::{LocalStore, QueueConfig};

fn notify(clock: &dyn Clock, text: &str) -> Message {
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": text}}), Stage::Dev)
            .expect("notify");
    Message::create(new, CreatedBy::Cli, clock.now())
}

#[tokio::test]
async fn an_unreadable_message_is_dead_lettered_and_the_rest_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = LocalStore::open(&dir.path().join("rez.db"), clock.clone(), QueueConfig::default()).expect("open");
    let mut ids = Vec::new();
    for text in ["one", "two", "three", "four"] {
        let m = notify(&*clock, text);
        ids.push(m.id.to_string());
        store.submit(m).await.expect("submit");
    }
    // One bad value, and one column of the wrong type (SQLite's error, not a decoding one).
    let (damaged, mistyped) = (ids[1].clone(), ids[2].clone());
    let targets = (damaged.clone(), mistyped.clone());
    store
        .db()
        .write(move |ctx| {
            ctx.tx
                .execute("UPDATE messages SET payload = '{not json' WHERE id = ?1", [&targets.0])
                .and_then(|_| ctx.tx.execute("UPDATE messages SET created_ms = 'soon' WHERE id = ?1", [&targets.1]))
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
        .expect("damage the rows");

    let taken = store.receive(QueueName::Notifications, 10, Duration::from_secs(60)).await.expect("receive");
    let delivered: Vec<String> = taken.iter().map(|d| d.message.id.to_string()).collect();
    assert_eq!(delivered, vec![ids[0].clone(), ids[3].clone()]);

    for id in [damaged, mistyped] {
        let (queue, error): (String, String) = store
            .db()
            .read(move |c| {
                c.query_row("SELECT queue, last_error FROM queue_items WHERE message_id = ?1", [&id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(|e| StoreError::Unavailable(e.to_string()))
            })
            .await
            .expect("the damaged message's queue item");
        assert_eq!(queue, QueueName::Notifications.dlq_name());
        assert!(error.contains("cannot be read"), "{error}");
    }

    assert!(
        store.receive(QueueName::Notifications, 10, Duration::from_secs(60)).await.expect("receive again").is_empty(),
        "nothing is left to receive and nothing fails"
    );
}

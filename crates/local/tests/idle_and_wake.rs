//! What lets an idle `rez serve` do nothing: the process lease is only renewed while work
//! is in flight (and taking work renews it first), and other processes' commits wake the
//! server through the database's wake socket instead of a poll.

use std::sync::Arc;
use std::time::Duration;

use rez_core::clock::{Clock, ManualClock, SystemClock};
use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
use rez_core::ports::{MessageStore, Queues};
use rez_core::routing::QueueName;
use rez_local::{LocalStore, QueueConfig};

fn notify(clock: &dyn Clock) -> Message {
    let new =
        NewMessage::from_json(&serde_json::json!({"message_type": "notify", "payload": {"message": "x"}}), Stage::Dev)
            .expect("notify");
    Message::create(new, CreatedBy::Cli, clock.now())
}

async fn lease_rows(store: &LocalStore) -> i64 {
    store
        .db()
        .read(|c| {
            c.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))
                .map_err(|e| rez_core::ports::StoreError::Unavailable(e.to_string()))
        })
        .await
        .expect("count")
}

#[tokio::test]
async fn an_idle_process_keeps_no_lease_and_taking_work_renews_it_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let a = LocalStore::open(&path, clock.clone(), QueueConfig::default()).expect("open a");
    let b = LocalStore::open(&path, clock.clone(), QueueConfig::default()).expect("open b");

    // Nothing in flight anywhere: a tick only looks, and writes nothing.
    assert!(!a.lease_tick().await.expect("tick"));
    assert_eq!(lease_rows(&a).await, 0, "an idle tick writes no lease");

    // `a` registered long ago and then idled: its lease is far past stale.
    a.heartbeat().await.expect("heartbeat");
    clock.advance(chrono::Duration::seconds(600));
    a.submit(notify(&*clock)).await.expect("submit");
    let taken = a.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.expect("receive");
    assert_eq!(taken.len(), 1);

    // Another live process must not take it for a dead process's work: the receive
    // renewed `a`'s lease in the same transaction.
    assert!(b.lease_tick().await.expect("tick"), "work is in flight");
    assert!(
        b.receive(QueueName::Notifications, 10, Duration::from_secs(360)).await.expect("receive").is_empty(),
        "the delivery stays with its live owner"
    );
    // And `a`'s own loop is told to start renewing.
    tokio::time::timeout(Duration::from_secs(1), a.work_taken()).await.expect("work_taken is signalled");

    a.complete(&taken[0]).await.expect("complete");
    assert!(!a.lease_tick().await.expect("tick"), "idle again once nothing is in flight");
}

#[tokio::test]
async fn another_process_commit_wakes_the_listening_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rez.db");
    let server = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).expect("open server");
    let cli = LocalStore::open(&path, Arc::new(SystemClock), QueueConfig::default()).expect("open cli");
    assert!(server.db().listen_for_other_processes(), "the first listener gets the socket");
    assert!(!cli.db().listen_for_other_processes(), "a second one defers to it");

    let mut queue = server.db().subscribe(QueueName::Notifications);
    let mut external = server.db().subscribe_external();
    queue.borrow_and_update();
    external.borrow_and_update();
    cli.submit(notify(&SystemClock)).await.expect("submit");
    tokio::time::timeout(Duration::from_secs(5), queue.changed())
        .await
        .expect("the server's notification workers are woken")
        .expect("open channel");
    tokio::time::timeout(Duration::from_secs(5), external.changed())
        .await
        .expect("the server's engine is woken")
        .expect("open channel");

    // The server's own commits wake it in process, never through the socket.
    external.borrow_and_update();
    server.submit(notify(&SystemClock)).await.expect("submit");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), external.changed()).await.is_err(),
        "no datagram to itself"
    );
}

#[tokio::test]
async fn a_caught_up_consumer_looks_with_a_read_and_a_backlog_goes_straight_to_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        LocalStore::open(&dir.path().join("rez.db"), Arc::new(SystemClock), QueueConfig::default()).expect("open");
    let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = commits.clone();
    store.db().on_commit(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let commits = move || commits.load(std::sync::atomic::Ordering::SeqCst);
    let receive = |max| store.receive(QueueName::Notifications, max, Duration::from_secs(360));

    // The first look goes to the database; once it found nothing, idle looks only read.
    assert!(receive(10).await.expect("receive").is_empty());
    let after_first_look = commits();
    for _ in 0..5 {
        assert!(receive(10).await.expect("receive").is_empty());
    }
    assert_eq!(commits(), after_first_look, "an idle consumer's receive writes nothing");

    // A full batch means a backlog: the next receive is a write even if it finds
    // nothing, and once it has found nothing, looks are reads again.
    for _ in 0..3 {
        store.submit(notify(&SystemClock)).await.expect("submit");
    }
    assert_eq!(receive(3).await.expect("receive").len(), 3, "a full batch");
    let after_backlog = commits();
    assert!(receive(3).await.expect("receive").is_empty());
    assert_eq!(commits(), after_backlog + 1, "after a full batch the receive goes to the writer");
    assert!(receive(3).await.expect("receive").is_empty());
    assert_eq!(commits(), after_backlog + 1, "caught up again: a read");
}

//! Notifications end to end through the real server and the fake ntfy: delivery,
//! throttling, dead-lettering and redrive, redelivery without a duplicate push, and
//! graceful shutdown that finishes in-flight work.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::{CreatedBy, Message, NewMessage, Stage};
use rez_core::ports::{MessageStore, Queues};
use rez_core::routing::QueueName;
use rez_local::{LocalStore, QueueConfig};
use rez_runtime::metrics::Metrics;
use rez_runtime::workers::notify::NotificationProcessor;
use rez_runtime::workers::{Handled, Handler};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn notify_goes_from_post_to_delivered_and_completed() {
    let mut t = TestServer::start().await;
    let (s, body) = t
        .post_json(
            "/api/messages",
            json!({"message_type": "notify", "payload": {"message": "Tee time booked", "title": "Golf", "priority": "high", "tags": ["golf"], "click": "https://example.com/r/1", "markdown": true}}),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(body["status"], "queued");
    let id = body["id"].as_str().unwrap().to_owned();
    let m = t.wait_message(&id, WAIT, |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(m["notifications"][0]["state"], "delivered");
    assert_eq!(m["notifications"][0]["attempts"], 1);
    let got = t.ntfy.received();
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(p.topic, "alerts");
    assert_eq!(p.message, "Tee time booked");
    assert_eq!(p.title.as_deref(), Some("Golf"));
    assert_eq!(p.priority, Some(4));
    assert_eq!(p.tags, vec!["golf".to_owned()]);
    assert_eq!(p.click.as_deref(), Some("https://example.com/r/1"));
    assert!(p.markdown);
    let (_, inbox) = t.get_json("/api/notifications?state=delivered").await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn throttled_ntfy_is_retried_until_it_succeeds() {
    let mut t = TestServer::start().await;
    t.ntfy.throttle_next(2, 1);
    let id = t.notify("after a throttle").await;
    let m = t.wait_message(&id, WAIT, |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(t.ntfy.count(), 1);
    assert!(t.ntfy.attempts() >= 3, "two 429s, then success");
    t.stop().await;
}

#[tokio::test]
async fn failing_ntfy_dead_letters_and_redrive_delivers() {
    let mut t = TestServer::start().await;
    t.ntfy.fail_always(500);
    let id = t.notify("doomed for now").await;
    let m = t.wait_message(&id, Duration::from_secs(30), |m| m["status"] == "dead_lettered").await;
    assert_eq!(m["status"], "dead_lettered", "{m}");
    assert!(m["error_message"].as_str().unwrap().contains("500"), "{m}");
    assert_eq!(m["retry_count"], 3);
    assert_eq!(m["notifications"][0]["state"], "failed");
    let (_, dlq) = t.get_json("/api/dlq").await;
    assert_eq!(dlq["items"][0]["message"]["id"], id.as_str());
    assert_eq!(dlq["items"][0]["receive_count"], 3);
    assert_eq!(t.ntfy.count(), 0);

    t.ntfy.reset();
    let (s, r) = t.post_json("/api/dlq/redrive", json!({"queue": "notifications"})).await;
    assert_eq!((s, r["redriven"].as_u64()), (200, Some(1)));
    let m = t.wait_message(&id, WAIT, |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed", "{m}");
    assert_eq!(t.ntfy.count(), 1);
    let (_, dlq) = t.get_json("/api/dlq").await;
    assert!(dlq["items"].as_array().unwrap().is_empty());
    t.stop().await;
}

#[tokio::test]
async fn retry_endpoint_requeues_a_dead_letter_and_delete_drops_one() {
    let mut t = TestServer::start().await;
    t.ntfy.fail_next(100, 400); // 400 is permanent: dead-lettered at once
    let a = t.notify("a").await;
    let b = t.notify("b").await;
    for id in [&a, &b] {
        let m = t.wait_message(id, WAIT, |m| m["status"] == "dead_lettered").await;
        assert_eq!(m["status"], "dead_lettered", "{m}");
        assert_eq!(m["retry_count"], 1, "a permanent failure is not retried");
    }
    t.ntfy.reset();
    let (s, m) = t.post_json(&format!("/api/messages/{a}/retry"), json!({})).await;
    assert_eq!((s, m["status"].as_str()), (202, Some("queued")));
    assert_eq!(t.wait_message(&a, WAIT, |m| m["status"] == "completed").await["status"], "completed");
    let r = t.http.delete(t.url(&format!("/api/dlq/{b}"))).bearer_auth(common::ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = t.http.delete(t.url(&format!("/api/dlq/{b}"))).bearer_auth(common::ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let (s, _) = t.post_json(&format!("/api/messages/{a}/retry"), json!({})).await;
    assert_eq!(s, 409, "a completed message cannot be retried");
    t.stop().await;
}

/// A worker pushes and records the push, then dies before completing the delivery. The
/// restarted server redelivers the message (through the lease, not the 6-minute
/// visibility timeout) and completes it without a second push.
#[tokio::test]
async fn redelivery_after_a_worker_dies_does_not_push_twice() {
    let ntfy = rez_testkit::ntfy::FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path().to_path_buf(), Some(&ntfy));
    {
        // The doomed worker: same data directory, its own process lease.
        let store = rez_cli::wiring::open_store(&config).unwrap();
        store.heartbeat().await.unwrap();
        let new =
            NewMessage::from_json(&json!({"message_type": "notify", "payload": {"message": "only once"}}), Stage::Dev)
                .unwrap();
        let m = Message::create(new, CreatedBy::Api, SystemClock.now());
        store.submit(m).await.unwrap();
        let d = store.receive(QueueName::Notifications, 1, Duration::from_secs(360)).await.unwrap().remove(0);
        let services = rez_cli::wiring::services(&config, &store, Default::default()).unwrap();
        let processor =
            NotificationProcessor::new(services.inbox.clone(), services.notifier.clone(), Arc::new(Metrics::new()));
        let Handled::Notified { notification, outcome } = processor.handle(&d.message, d.receive_count).await.unwrap()
        else {
            panic!("the processor pushed, so it has an attempt to record");
        };
        assert_eq!(ntfy.count(), 1);
        // The record lands but the completion does not: as when the receipt went stale,
        // or on AWS, where they are two writes and the process died between them.
        services.inbox.record(&d.message.id, &notification, outcome).await.unwrap();
        store.resign().await.unwrap(); // the process is gone; `complete` never ran
    }
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = serde_json::Value::Null;
    while tokio::time::Instant::now() < deadline {
        let r = http
            .get(format!("{base}/api/messages?status=completed"))
            .bearer_auth(common::ADMIN_KEY)
            .send()
            .await
            .unwrap();
        last = r.json().await.unwrap();
        if !last["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["items"].as_array().unwrap().len(), 1, "redelivered and completed: {last}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ntfy.count(), 1, "the redelivery did not push again");
    server.shutdown().await.unwrap();
}

/// A first delivery ever skips the inbox lookup (nothing can have been pushed before);
/// everything else looks. A message dead-lettered by receives alone (a worker that died
/// each time, so nothing counted a failure) and then redriven or retried starts its
/// receive count afresh: the redrive and the retry count in `retry_count`, so its next
/// delivery still finds the push the first one recorded, and does not push again.
#[tokio::test]
async fn a_redriven_or_retried_message_whose_push_was_recorded_is_not_pushed_again() {
    use rez_core::ports::{RedriveSelector, is_first_delivery};
    let ntfy = rez_testkit::ntfy::FakeNtfy::start().await;
    for how in ["redrive", "retry"] {
        // A store of its own each time: a consumer that has asked once gets the next
        // message handed over at publish, with its earlier (long) visibility timeout.
        let dir = tempfile::tempdir().unwrap();
        let config = common::config(dir.path().to_path_buf(), Some(&ntfy));
        let store = rez_cli::wiring::open_store(&config).unwrap();
        let services = rez_cli::wiring::services(&config, &store, Default::default()).unwrap();
        let processor =
            NotificationProcessor::new(services.inbox.clone(), services.notifier.clone(), Arc::new(Metrics::new()));
        let new =
            NewMessage::from_json(&json!({"message_type": "notify", "payload": {"message": how}}), Stage::Dev).unwrap();
        let m = Message::create(new, CreatedBy::Api, SystemClock.now());
        store.submit(m).await.unwrap();
        let short = Duration::from_millis(5);
        let d = store.receive(QueueName::Notifications, 1, short).await.unwrap().remove(0);
        assert!(is_first_delivery(&d.message, d.receive_count));
        let Handled::Notified { notification, outcome } = processor.handle(&d.message, d.receive_count).await.unwrap()
        else {
            panic!("the first delivery pushes");
        };
        services.inbox.record(&d.message.id, &notification, outcome).await.unwrap();
        // The completion never lands; the visibility runs out at every receive until the
        // receive limit dead-letters the message.
        let mut receives = 1;
        while store.dead_letters(None, 10, None).await.unwrap().items.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            receives += store.receive(QueueName::Notifications, 1, short).await.unwrap().len();
            assert!(receives <= 3, "dead-lettered after three receives");
        }
        if how == "redrive" {
            assert_eq!(store.redrive(&RedriveSelector::Ids(vec![d.message.id.clone()])).await.unwrap(), 1);
        } else {
            store.retry(&d.message.id).await.unwrap();
        }
        let again = store.receive(QueueName::Notifications, 1, Duration::from_secs(60)).await.unwrap().remove(0);
        assert_eq!(again.receive_count, 1, "{how} starts the receive count afresh");
        assert!(!is_first_delivery(&again.message, again.receive_count), "{how} counts as a retry");
        let handled = processor.handle(&again.message, again.receive_count).await.unwrap();
        assert!(matches!(handled, Handled::Done), "{how}: the recorded push is found");
        store.complete(&again).await.unwrap();
    }
    assert_eq!(ntfy.count(), 2, "one push per message");
}

/// `rez send` and the other CLI commands write to the database from another process; the
/// idle server hears of it through the wake socket, not at its next idle poll (30 s).
#[tokio::test]
async fn a_notification_queued_by_another_process_is_delivered_at_once() {
    let mut t = TestServer::start().await;
    // Let the workers go idle first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = common::config(t.dir.path().to_path_buf(), Some(&t.ntfy));
    let cli = rez_cli::wiring::open_store(&config).unwrap();
    let services = rez_cli::wiring::services(&config, &cli, Default::default()).unwrap();
    let new =
        NewMessage::from_json(&json!({"message_type": "notify", "payload": {"message": "from the CLI"}}), Stage::Dev)
            .unwrap();
    let m = rez_runtime::intake::submit(&services, new, CreatedBy::Cli).await.unwrap().into_message();
    let done = t.wait_message(m.id.as_str(), Duration::from_secs(5), |m| m["status"] == "completed").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(t.ntfy.received()[0].message, "from the CLI");
    t.stop().await;
}

/// Shutdown waits for in-flight work: a slow push that started before the signal
/// finishes and is recorded.
#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_work() {
    let mut t = TestServer::start().await;
    t.ntfy.set_delay(Duration::from_millis(800));
    let id = t.notify("slow push").await;
    // Wait until the push is in flight.
    let deadline = tokio::time::Instant::now() + WAIT;
    while t.ntfy.attempts() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(t.ntfy.attempts() > 0);
    t.stop().await;
    assert_eq!(t.ntfy.count(), 1);
    // Reopen the store offline and check the record.
    let store = LocalStore::open(&t.dir.path().join("rez.db"), Arc::new(SystemClock), QueueConfig::default()).unwrap();
    let m = store.get_message(&rez_core::MessageId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert_eq!(m.status, rez_core::Status::Completed);
}

/// Without a push server, notifications land in the inbox and the message completes.
#[tokio::test]
async fn inbox_only_without_ntfy() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::boot(common::config(dir.path().to_path_buf(), None)).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/messages"))
        .bearer_auth(common::ADMIN_KEY)
        .json(&json!({"message_type": "hello_world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut inbox = serde_json::Value::Null;
    while tokio::time::Instant::now() < deadline {
        inbox = http
            .get(format!("{base}/api/notifications"))
            .bearer_auth(common::ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if inbox["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(inbox["items"][0]["state"], "inbox_only", "{inbox}");
    assert_eq!(inbox["items"][0]["notification"]["message"], "Hello, world");
    server.shutdown().await.unwrap();
}

//! AWS-specific behaviour of the message pipeline, beyond the shared port suite: what
//! SNS fan-out puts on SQS, receive counts net of releases, the DLQ copy, the Lambda
//! record path, the idempotency window and the sweeper.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use rez_aws::AwsStore;
use rez_aws::sqs_event::{RecordOutcome, deliveries_from_records};
use rez_aws::sweeper::CreatedSweep;
use rez_core::clock::{Clock, ManualClock, SystemClock};
use rez_core::message::{CreatedBy, IdempotencyKey, Message, MessageType, NewMessage, Stage};
use rez_core::ports::{FailOutcome, FailureKind, MessageStore, Queues, Submitted};
use rez_core::routing::{QueueName, Topic};
use rez_core::status::Status;

fn notify(text: &str, now: rez_core::time::Timestamp) -> Message {
    let new = NewMessage {
        message_type: MessageType::Notify,
        stage: Stage::Dev,
        payload: serde_json::json!({ "message": text }).as_object().cloned().unwrap_or_default(),
        arguments: Default::default(),
        idempotency_key: None,
    };
    Message::create(new, CreatedBy::Api, now)
}

/// Raw SQS messages of `url`, with their receive counts, invisible for `vis` seconds.
async fn raw_receive(store: &AwsStore, url: &str, vis: i32) -> Vec<aws_sdk_sqs::types::Message> {
    store
        .clients()
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(vis)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

#[tokio::test]
async fn sns_fan_out_with_raw_delivery_lands_exactly_the_message_json() {
    let store = common::store().await;
    let out = store.submit(notify("hi", SystemClock.now())).await.unwrap();
    let m = out.message().clone();
    assert_eq!(m.status, Status::Queued);
    let url = &store.names().queue(QueueName::Notifications).unwrap().url;
    let got = raw_receive(&store, url, 30).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), Some(serde_json::to_string(&m).unwrap().as_str()), "raw delivery: no SNS envelope");
    // Nothing on the other topics' queues.
    let web = &store.names().queue(QueueName::WebActions).unwrap().url;
    assert!(raw_receive(&store, web, 30).await.is_empty());
}

#[tokio::test]
async fn receive_count_comes_from_sqs_net_of_releases() {
    let store = common::store().await;
    store.submit(notify("x", SystemClock.now())).await.unwrap();
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap().remove(0);
    assert_eq!(d.receive_count, 1);
    store.release(&d).await.unwrap();
    assert!(store.release(&d).await.is_err(), "a released receipt is stale");
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(1)).await.unwrap().remove(0);
    assert_eq!(d.receive_count, 1, "SQS counted 2; one was given back");
    // Let the 1 s visibility lapse: a real redelivery counts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap().remove(0);
    assert_eq!(again.receive_count, 2);
    assert!(store.complete(&d).await.is_err(), "the first receipt is stale");
    store.complete(&again).await.unwrap();
}

#[tokio::test]
async fn dead_letter_copy_carries_source_queue_and_error() {
    let store = common::store().await;
    store.submit(notify("doomed", SystemClock.now())).await.unwrap();
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap().remove(0);
    assert_eq!(store.fail(&d, "410 gone", FailureKind::Permanent).await.unwrap(), FailOutcome::DeadLettered);
    let a = store.names().queue(QueueName::Notifications).unwrap().clone();
    assert!(raw_receive(&store, &a.url, 30).await.is_empty(), "removed from the source queue");
    let dlq = raw_receive(&store, &a.dlq_url, 30).await;
    assert_eq!(dlq.len(), 1);
    let body: Message = serde_json::from_str(dlq[0].body().unwrap()).unwrap();
    assert_eq!(body.id, d.message.id);
    assert_eq!(body.status, Status::DeadLettered);
    let attrs = dlq[0].message_attributes().unwrap();
    assert_eq!(attrs["source_queue"].string_value(), Some("notifications"));
    assert_eq!(attrs["error"].string_value(), Some("410 gone"));
    let page = store.dead_letters(None, 10, None).await.unwrap();
    assert_eq!(page.items[0].receive_count, 1);
}

#[tokio::test]
async fn lambda_records_become_deliveries() {
    let store = common::store().await;
    let m = store.submit(notify("from lambda", SystemClock.now())).await.unwrap().into_message();
    let a = store.names().queue(QueueName::Notifications).unwrap().clone();
    let raw = raw_receive(&store, &a.url, 30).await.remove(0);
    let record = |arn: &str| {
        let mut r = SqsMessage::default();
        r.message_id = raw.message_id().map(str::to_owned);
        r.receipt_handle = raw.receipt_handle().map(str::to_owned);
        r.body = raw.body().map(str::to_owned);
        r.event_source_arn = Some(arn.to_owned());
        r.attributes.insert("ApproximateReceiveCount".into(), "1".into());
        r
    };
    let mut out = deliveries_from_records(&store, &[record(&a.arn), record("arn:aws:sqs:us-east-1:1:unknown")]).await;
    assert!(out.pop().unwrap().is_err(), "a record from an unknown queue is a batch item failure");
    let Ok(RecordOutcome::Deliver(d)) = out.pop().unwrap() else { panic!("delivered") };
    assert_eq!((d.message.id.clone(), d.message.status, d.receive_count), (m.id.clone(), Status::Processing, 1));
    store.complete(&d).await.unwrap();
    assert_eq!(store.get_message(&m.id).await.unwrap().unwrap().status, Status::Completed);
    // The same record again (Lambda redelivered it): already completed, skipped.
    let again = deliveries_from_records(&store, &[record(&a.arn)]).await;
    assert!(matches!(again[0], Ok(RecordOutcome::Skipped)));
}

#[tokio::test]
async fn idempotency_key_expires_after_the_window() {
    let (clients, names) = common::deployment().await;
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let store = AwsStore::new(clients, names, clock.clone(), Default::default());
    let key = IdempotencyKey::parse("daily-1").unwrap();
    let mut a = notify("a", clock.now());
    a.idempotency_key = Some(key.clone());
    let first = store.submit(a).await.unwrap();
    clock.advance(chrono::Duration::hours(23));
    let mut b = notify("b", clock.now());
    b.idempotency_key = Some(key.clone());
    assert!(matches!(store.submit(b).await.unwrap(), Submitted::Existing(m) if m.id == first.message().id));
    clock.advance(chrono::Duration::hours(2));
    let mut c = notify("c", clock.now());
    c.idempotency_key = Some(key);
    let third = store.submit(c).await.unwrap();
    assert!(matches!(third, Submitted::Created(_)), "a key older than 24 h is free again");
    assert_ne!(third.message().id, first.message().id);
}

#[tokio::test]
async fn sweeper_publishes_messages_left_created() {
    let (clients, names) = common::deployment().await;
    // A store whose notifications topic does not exist: every publish fails.
    let mut broken = names.clone();
    broken.topics.insert(Topic::Notifications, "arn:aws:sns:us-east-1:123456789012:no-such-topic".into());
    let broken = AwsStore::new(clients.clone(), broken, Arc::new(SystemClock), Default::default());
    let store = AwsStore::new(clients, names, Arc::new(SystemClock), Default::default());

    let out = broken.submit(notify("stuck", SystemClock.now())).await.unwrap();
    assert!(matches!(out, Submitted::Created(_)), "stored durably, so accepted");
    let id = out.message().id.clone();
    assert_eq!(store.get_message(&id).await.unwrap().unwrap().status, Status::Created);
    assert!(store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap().is_empty());

    // Too young to sweep (it may still be mid-submission).
    let none = CreatedSweep::default();
    assert_eq!(rez_aws::sweeper::sweep_created(&store, chrono::Duration::minutes(1), 100).await.unwrap(), none);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A publish that fails for now (no such topic) is left for the next sweep.
    let left = rez_aws::sweeper::sweep_created(&broken, chrono::Duration::milliseconds(10), 100).await.unwrap();
    assert_eq!(left, CreatedSweep { left: 1, ..none });
    assert_eq!(store.get_message(&id).await.unwrap().unwrap().status, Status::Created);
    let swept = rez_aws::sweeper::sweep_created(&store, chrono::Duration::milliseconds(10), 100).await.unwrap();
    assert_eq!(swept, CreatedSweep { published: 1, ..none });
    assert_eq!(store.get_message(&id).await.unwrap().unwrap().status, Status::Queued);
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message.id, id);
    assert_eq!(rez_aws::sweeper::sweep_created(&store, chrono::Duration::zero(), 100).await.unwrap(), none);
}

#[tokio::test]
async fn sweeper_dead_letters_a_message_sns_refuses_and_publishes_the_ones_behind_it() {
    use rez_core::message::MAX_PUBLISHED_BYTES;
    use rez_core::ports::RedriveSelector;
    let (clients, names) = common::deployment().await;
    let mut broken = names.clone();
    broken.topics.insert(Topic::Notifications, "arn:aws:sns:us-east-1:123456789012:no-such-topic".into());
    let broken = AwsStore::new(clients.clone(), broken, Arc::new(SystemClock), Default::default());
    let store = AwsStore::new(clients, names, Arc::new(SystemClock), Default::default());

    // Older data than the intake's size check: the store itself takes a message larger
    // than SNS accepts, keeps it `created` (its publish is refused) and answers as usual.
    let big = notify(&"x".repeat(MAX_PUBLISHED_BYTES), SystemClock.now());
    assert!(big.published_bytes() > MAX_PUBLISHED_BYTES);
    let big_id = store.submit(big).await.unwrap().into_message().id;
    assert_eq!(store.get_message(&big_id).await.unwrap().unwrap().status, Status::Created);
    tokio::time::sleep(Duration::from_millis(2)).await;
    // A newer, normal message whose publish failed for now.
    let small_id = broken.submit(notify("behind it", SystemClock.now())).await.unwrap().into_message().id;
    assert!(big_id < small_id, "the refused message is swept first");
    assert_eq!(store.get_message(&small_id).await.unwrap().unwrap().status, Status::Created);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let swept = rez_aws::sweeper::sweep_created(&store, chrono::Duration::milliseconds(10), 100).await.unwrap();
    assert_eq!(swept, CreatedSweep { published: 1, dead_lettered: 1, left: 0 });
    let refused = store.get_message(&big_id).await.unwrap().unwrap();
    assert_eq!(refused.status, Status::DeadLettered);
    let reason = refused.error_message.unwrap_or_default();
    assert!(reason.contains("bytes as published") && reason.contains(&MAX_PUBLISHED_BYTES.to_string()), "{reason}");
    assert_eq!(store.get_message(&small_id).await.unwrap().unwrap().status, Status::Queued);
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(d.iter().map(|d| d.message.id.clone()).collect::<Vec<_>>(), vec![small_id]);

    // Listed by the DLQ API under the queue it is meant for, with the reason.
    let page = store.dead_letters(Some(QueueName::Notifications), 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message.id, big_id);
    assert_eq!(page.items[0].source_queue, QueueName::Notifications);
    assert_eq!(page.items[0].last_error.as_deref(), Some(reason.as_str()));
    // Not swept again.
    let none = CreatedSweep::default();
    assert_eq!(rez_aws::sweeper::sweep_created(&store, chrono::Duration::zero(), 100).await.unwrap(), none);

    // It redrives like any dead letter: straight to its SQS queue (which, unlike SNS,
    // takes messages up to 1 MiB), counted as a retry.
    assert_eq!(store.redrive(&RedriveSelector::Ids(vec![big_id.clone()])).await.unwrap(), 1);
    let redriven = store.get_message(&big_id).await.unwrap().unwrap();
    assert_eq!((redriven.status, redriven.retry_count), (Status::Queued, 1));
    assert!(store.dead_letters(None, 10, None).await.unwrap().items.is_empty());
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(d.iter().map(|d| d.message.id.clone()).collect::<Vec<_>>(), vec![big_id]);
}

#[tokio::test]
async fn messages_sqs_dead_lettered_are_recorded_by_the_sweeper() {
    use rez_core::ports::RedriveSelector;
    let store = common::store().await;
    let id = store.submit(notify("crashy", SystemClock.now())).await.unwrap().into_message().id;
    // A consumer that dies three times: receive, never answer, visibility lapses.
    for attempt in 1..=3u32 {
        let mut got = Vec::new();
        for _ in 0..40 {
            got = store.receive(QueueName::Notifications, 10, Duration::from_secs(1)).await.unwrap();
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The fourth receive: SQS's redrive policy moves it to the DLQ instead.
    assert!(store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap().is_empty());
    assert_eq!(store.get_message(&id).await.unwrap().unwrap().status, Status::Processing, "nothing told DynamoDB");
    assert!(store.dead_letters(None, 10, None).await.unwrap().items.is_empty());

    assert_eq!(rez_aws::sweeper::sweep_dead_letter_queues(&store).await.unwrap(), 1);
    assert_eq!(rez_aws::sweeper::sweep_dead_letter_queues(&store).await.unwrap(), 0, "idempotent");
    assert_eq!(store.get_message(&id).await.unwrap().unwrap().status, Status::DeadLettered);
    let page = store.dead_letters(Some(QueueName::Notifications), 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].source_queue, QueueName::Notifications);
    // It redrives like any dead letter, and the DLQ copy goes.
    assert_eq!(store.redrive(&RedriveSelector::All).await.unwrap(), 1);
    let d = store.receive(QueueName::Notifications, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!((d.len(), d[0].receive_count), (1, 1));
    let a = store.names().queue(QueueName::Notifications).unwrap().clone();
    assert!(raw_receive(&store, &a.dlq_url, 30).await.is_empty());
}

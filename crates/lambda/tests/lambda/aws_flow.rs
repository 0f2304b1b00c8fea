//! End to end on the AWS adapters: the real `rez-lambda` binary runs each function
//! against a fake Lambda Runtime API, over the template's resources on moto, with fake
//! ntfy and NOAA. SQS event batches are what moto's queues really delivered.

use crate::common;

use std::time::Duration;

use common::{ADMIN_KEY, Deployment, http_event, http_response};
use rez_core::MessageId;
use rez_core::ports::{MessageStore, Queues, ResultStore};
use rez_core::routing::QueueName;
use rez_core::status::Status;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn post_message(api: &common::Function, body: Value) -> MessageId {
    let resp = api.invoke(http_event("POST", "/api/messages", Some(&body), Some(ADMIN_KEY))).await;
    let (status, body) = http_response(&resp);
    assert_eq!(status, 202, "{body}");
    MessageId::parse(body["id"].as_str().expect("id")).expect("message id")
}

fn failures(resp: &Value) -> Vec<String> {
    resp["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_goes_from_the_api_through_sns_and_sqs_to_ntfy() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let processor = d.start("processor").await;

    // Health needs no key; everything else does.
    let (status, _) = http_response(&api.invoke(http_event("GET", "/api/health", None, None)).await);
    assert_eq!(status, 200);
    let (status, _) = http_response(&api.invoke(http_event("GET", "/api/messages", None, None)).await);
    assert_eq!(status, 401);

    let id = post_message(
        &api,
        json!({"message_type": "notify", "payload": {"message": "hello from lambda", "title": "t"}}),
    )
    .await;
    let stored = d.store.get_message(&id).await.unwrap().expect("stored in DynamoDB");
    assert_eq!(stored.status, Status::Queued);

    // SNS delivered it (raw) to the notifications queue; hand the batch to the processor.
    let event = d.receive_event(QueueName::Notifications, WAIT).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1);
    let body: Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], id.as_str());
    let resp = processor.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");

    assert!(d.ntfy.wait_for(1, WAIT).await);
    assert_eq!(d.ntfy.received()[0].message, "hello from lambda");
    let done = d.store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Completed);

    // The API shows it completed, with its inbox entry.
    let (status, shown) =
        http_response(&api.invoke(http_event("GET", &format!("/api/messages/{id}"), None, Some(ADMIN_KEY))).await);
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "completed", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_record_is_reported_alone_and_dead_lettered_after_three_receives() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let processor = d.start("processor").await;
    d.ntfy.fail_when_body_contains("poison", 503);
    let good = post_message(&api, json!({"message_type": "notify", "payload": {"message": "fine"}})).await;
    let bad = post_message(&api, json!({"message_type": "notify", "payload": {"message": "poison"}})).await;

    let mut seen_bad = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen_bad < 3 && tokio::time::Instant::now() < deadline {
        let event = d.receive_event(QueueName::Notifications, Duration::from_secs(5)).await;
        let records = event["Records"].as_array().unwrap().clone();
        if records.is_empty() {
            continue;
        }
        let bad_records: Vec<String> = records
            .iter()
            .filter(|r| r["body"].as_str().unwrap_or("").contains(bad.as_str()))
            .map(|r| r["messageId"].as_str().unwrap().to_owned())
            .collect();
        seen_bad += bad_records.len();
        let resp = processor.invoke(event).await;
        let failed = failures(&resp);
        if seen_bad < 3 {
            // Only the poisoned record comes back; the good one is settled.
            assert_eq!(failed, bad_records, "{resp}");
        } else {
            // The third failure dead-letters it: nothing left for SQS to retry.
            assert!(failed.is_empty(), "{resp}");
        }
    }
    assert_eq!(seen_bad, 3, "the poisoned message was received three times");
    assert_eq!(d.store.get_message(&good).await.unwrap().unwrap().status, Status::Completed);
    let dead = d.store.get_message(&bad).await.unwrap().unwrap();
    assert_eq!(dead.status, Status::DeadLettered);
    let letters = d.store.dead_letters(Some(QueueName::Notifications), 10, None).await.unwrap();
    assert_eq!(letters.items.len(), 1);
    assert_eq!(letters.items[0].message.id, bad);
    // And the copy sits in the SQS DLQ, where the DLQ alarm sees it.
    let dlq = &d.names.queue(QueueName::Notifications).unwrap().dlq_url;
    let attrs = d
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let depth = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    assert_eq!(depth, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weather_web_action_ends_with_a_result_in_dynamodb() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let webaction = d.start("webaction").await;
    let id = post_message(
        &api,
        json!({"message_type": "web_action", "payload": {"action": "weather", "course": "Birdsfoot"}, "arguments": {}}),
    )
    .await;
    let event = d.receive_event(QueueName::WebActions, WAIT).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1);
    let resp = webaction.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    assert!(d.noaa.total_requests() >= 2, "NOAA was asked");
    let results = d.store.results_for(&id).await.unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].action, "weather");
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Completed);
    let _ = d.store.stats().await.unwrap();
}

/// The publishable size is checked where both deployments see it (the intake): a message
/// whose published form is exactly the accepted maximum is stored, published through SNS
/// and SQS and delivered; one byte more is refused with 413 and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_at_the_publishable_size_is_delivered_and_one_byte_more_gets_413() {
    use rez_core::message::{CreatedBy, MAX_ACCEPTED_PUBLISHED_BYTES, Message, NewMessage, Stage};
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let processor = d.start("processor").await;
    let body_of = |n: usize| json!({"message_type": "notify", "payload": {"message": "big"}, "arguments": {"blob": "x".repeat(n)}});
    // The published form's size does not depend on the moment or the id (fixed widths).
    let size_of = |n: usize| {
        Message::create(NewMessage::from_json(&body_of(n), Stage::Dev).unwrap(), CreatedBy::Api, chrono::Utc::now())
            .published_bytes()
    };
    let at_limit = MAX_ACCEPTED_PUBLISHED_BYTES - size_of(0);
    assert_eq!(size_of(at_limit), MAX_ACCEPTED_PUBLISHED_BYTES);

    let id = post_message(&api, body_of(at_limit)).await;
    let event = d.receive_event(QueueName::Notifications, WAIT).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1, "published and queued");
    let resp = processor.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    assert!(d.ntfy.wait_for(1, WAIT).await);
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Completed);

    let resp = api.invoke(http_event("POST", "/api/messages", Some(&body_of(at_limit + 1)), Some(ADMIN_KEY))).await;
    let (status, body) = http_response(&resp);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "message_too_large", "{body}");
    assert_eq!(body["error"]["details"]["limit"], MAX_ACCEPTED_PUBLISHED_BYTES, "{body}");
    assert_eq!(body["error"]["details"]["published_bytes"], MAX_ACCEPTED_PUBLISHED_BYTES + 1, "{body}");
    let all = d.store.list_messages(&rez_core::ports::MessageFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.items.len(), 1, "the refused message was not stored");
}

/// A DLQ copy left from before a redrive (the purge is best effort) must not mark the
/// redriven message, queued again, as dead-lettered: the sweeper drops the stale copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_dlq_copy_cannot_dead_letter_a_redriven_message_again() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let id = post_message(&api, json!({"message_type": "notify", "payload": {"message": "again"}})).await;
    let event = d.receive_event(QueueName::Notifications, WAIT).await;
    let first_copy = event["Records"][0]["body"].as_str().unwrap().to_owned();
    let q = d.names.queue(QueueName::Notifications).unwrap().clone();
    let to_dlq = |body: String| {
        let sqs = d.clients.sqs.clone();
        let url = q.dlq_url.clone();
        async move { sqs.send_message().queue_url(url).message_body(body).send().await.unwrap() }
    };
    // SQS moved it to the DLQ; the sweeper records it; it is redriven.
    to_dlq(first_copy.clone()).await;
    assert_eq!(rez_aws::sweeper::sweep_dead_letter_queues(&d.store).await.unwrap(), 1);
    let (status, body) = http_response(
        &api.invoke(http_event("POST", "/api/dlq/redrive", Some(&json!({"ids": [id.as_str()]})), Some(ADMIN_KEY)))
            .await,
    );
    assert_eq!(status, 200, "{body}");
    // A copy from before the redrive that the purge did not find.
    to_dlq(first_copy).await;
    assert_eq!(rez_aws::sweeper::sweep_dead_letter_queues(&d.store).await.unwrap(), 0, "not recorded again");
    let left = d.clients.sqs.receive_message().queue_url(&q.dlq_url).send().await.unwrap();
    assert!(left.messages().is_empty(), "the stale copy was deleted");
    let m = d.store.get_message(&id).await.unwrap().unwrap();
    assert_eq!(m.status, Status::Queued);
    assert_eq!(m.retry_count, 1);
    let letters = d.store.dead_letters(Some(QueueName::Notifications), 10, None).await.unwrap();
    assert!(letters.items.is_empty(), "{:?}", letters.items);
}

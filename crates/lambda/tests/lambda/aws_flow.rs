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

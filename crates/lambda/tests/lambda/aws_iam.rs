//! Every function starts and does its work under its own role policy from
//! `deploy/template.yaml`, on an emulator that enforces IAM (see `iam.rs` for what moto
//! checks and what the static check in `crates/lambda/src/permissions.rs` covers
//! instead). A call a role does not allow fails the function here as it would on AWS:
//! at start-up (a secret it may not read) or as an error or retried record.
//!
//! Two moto 5.2 quirks shape these tests (neither is about permissions): it verifies the
//! signature of a form-encoded body (SNS) after re-encoding it, which differs from the
//! Rust SDK's encoding when a value holds a space, so published texts here have none;
//! and it rejects the signature of every GET with a query string (`GetSchedule`), so the
//! schedule updates that read the remote schedule first (pause, delete) are left to the
//! non-enforced tests and the static check.

use crate::common;

use std::time::Duration;

use common::{ADMIN_KEY, Deployment, http_event, http_response};
use rez_core::MessageId;
use rez_core::ScheduleId;
use rez_core::ports::{MessageFilter, MessageStore, ResultStore, ScheduleStore};
use rez_core::routing::QueueName;
use rez_core::status::Status;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn ok(f: &common::Function, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, body) = http_response(&f.invoke(http_event(method, path, body, Some(ADMIN_KEY))).await);
    assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
    body
}

fn failures(resp: &Value) -> &Vec<Value> {
    resp["batchItemFailures"].as_array().expect("batchItemFailures")
}

/// api (admin key from Secrets Manager, submit, listings, health, DLQ and metrics
/// routes) and processor (ntfy token from Secrets Manager, inbox, completion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_processor_work_under_their_own_policies() {
    let d = Deployment::with_iam().await;
    let api = d.start("api").await;
    let processor = d.start("processor").await;

    let created = ok(
        &api,
        "POST",
        "/api/messages",
        Some(&json!({"message_type": "notify", "payload": {"message": "under-IAM"}})),
    )
    .await;
    let id = MessageId::parse(created["id"].as_str().unwrap()).unwrap();
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Queued, "published");

    let event = d.receive_event(QueueName::Notifications, WAIT).await;
    assert_eq!(event["Records"].as_array().unwrap().len(), 1, "{event}");
    let resp = processor.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    assert!(d.ntfy.wait_for(1, WAIT).await, "pushed with the token from Secrets Manager");
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Completed);

    let shown = ok(&api, "GET", &format!("/api/messages/{id}"), None).await;
    assert_eq!(shown["status"], "completed", "{shown}");
    ok(&api, "GET", "/api/messages?limit=5", None).await;
    ok(&api, "GET", "/api/notifications", None).await;
    ok(&api, "GET", "/api/dlq", None).await;
    ok(&api, "GET", "/api/metrics", None).await;
    ok(&api, "GET", &format!("/api/results?message_id={id}"), None).await;
    let health = ok(&api, "GET", "/api/health?deep=true", None).await;
    assert_eq!(health["status"], "ok", "{health}");
}

/// webaction: results, the booking ledger's table and follow-up notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webaction_works_under_its_own_policy() {
    let d = Deployment::with_iam().await;
    let api = d.start("api").await;
    let webaction = d.start("webaction").await;
    let body =
        json!({"message_type": "web_action", "payload": {"action": "weather", "course": "Birdsfoot"}, "arguments": {}});
    let created = ok(&api, "POST", "/api/messages", Some(&body)).await;
    let id = MessageId::parse(created["id"].as_str().unwrap()).unwrap();
    let event = d.receive_event(QueueName::WebActions, WAIT).await;
    let resp = webaction.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    assert_eq!(d.store.results_for(&id).await.unwrap().len(), 1);
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Completed);
}

/// webaction books a tee time under its own policy: the golf credentials from Secrets
/// Manager, and the booking ledger's conditional claim (a put), intent and confirmation
/// (updates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_works_under_the_webaction_policy() {
    use rez_core::ports::{SecretStore, SecretValue};
    use rez_testkit::golf::{FAKE_PASSWORD, FAKE_USERNAME, FakeCpsGolf, FakeSlot};
    let d = Deployment::with_iam().await;
    let golf = FakeCpsGolf::start().await;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 12).unwrap().and_hms_opt(8, 10, 0).unwrap();
    golf.add_slot(FakeSlot::new(901, start));
    let dir = tempfile::tempdir().unwrap();
    let courses = dir.path().join("courses.yaml");
    std::fs::write(&courses, golf.courses_yaml()).unwrap();
    // Stored by the deployment's administrator, read by webaction under its own policy.
    let creds = json!({"username": FAKE_USERNAME, "password": FAKE_PASSWORD}).to_string();
    rez_aws::secrets::SecretsManagerStore::new(&d.clients, &d.names)
        .put_secret("golf/birdsfoot", &SecretValue::new(creds))
        .await
        .unwrap();
    let api = d.start("api").await;
    let webaction = d.start_with("webaction", &[("REZ_COURSES_FILE", courses.display().to_string())]).await;
    let body = json!({
        "message_type": "web_action",
        "payload": {"action": "golf", "course": "birdsfoot"},
        "arguments": {"operation": "book_tee_time", "tee_sheet_id": 901, "players": 2},
    });
    let created = ok(&api, "POST", "/api/messages", Some(&body)).await;
    let id = MessageId::parse(created["id"].as_str().unwrap()).unwrap();
    let event = d.receive_event(QueueName::WebActions, WAIT).await;
    let resp = webaction.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    assert_eq!(golf.reservations().len(), 1, "booked once");
    assert_eq!(d.store.get_message(&id).await.unwrap().unwrap().status, Status::Completed);
    let results = d.store.results_for(&id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(serde_json::to_value(&results[0]).unwrap()["output"]["path"], "reserved", "{results:?}");
}

/// api manages the schedule in EventBridge Scheduler; scheduler records a firing (one
/// message, published).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_work_under_the_api_and_scheduler_policies() {
    let d = Deployment::with_iam().await;
    let api = d.start("api").await;
    let scheduler = d.start("scheduler").await;
    let spec = json!({
        "name": "hourly",
        "schedule_expression": "rate(1 hour)",
        "timezone": "UTC",
        "target_type": "notify",
        "target": {"payload": {"message": "tick"}}
    });
    let created = ok(&api, "POST", "/api/schedules", Some(&spec)).await;
    let id = ScheduleId::parse(created["id"].as_str().unwrap()).unwrap();
    ok(&api, "GET", "/api/schedules", None).await;
    // The target input EventBridge was given (read from the store: see the module notes).
    let schedule = d.store.get_schedule(&id).await.unwrap().expect("stored");
    let input = rez_aws::scheduler::target_input(&schedule);
    let body = input
        .replace("<aws.scheduler.scheduled-time>", "2026-11-27T10:00:00Z")
        .replace("<aws.scheduler.execution-id>", "exec-iam");
    let queue = d.names.queue(QueueName::ScheduleCreation).unwrap();
    d.clients.sqs.send_message().queue_url(&queue.url).message_body(&body).send().await.unwrap();
    let event = d.receive_event(QueueName::ScheduleCreation, WAIT).await;
    let resp = scheduler.invoke(event).await;
    assert!(failures(&resp).is_empty(), "{resp}");
    let page = d.store.list_messages(&MessageFilter { limit: 10, ..MessageFilter::default() }).await.unwrap();
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    assert_eq!(page.items[0].status, Status::Queued, "the firing's message was published");
}

/// mcp (admin key, tools reading schedules and messages) and sweeper (messages left
/// `created`, the DLQs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_sweeper_work_under_their_own_policies() {
    let d = Deployment::with_iam().await;
    let mcp = d.start("mcp").await;
    let sweeper = d.start("sweeper").await;
    let call = |id: u64, name: &str, arguments: Value| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}});
    let body = ok(&mcp, "POST", "/mcp", Some(&init)).await;
    assert!(body["result"]["serverInfo"].is_object(), "{body}");
    let body = ok(&mcp, "POST", "/mcp", Some(&call(2, "list_schedules", json!({})))).await;
    assert_eq!(body["result"]["isError"], json!(false), "{body}");
    let unknown = MessageId::new(chrono::Utc::now());
    let body =
        ok(&mcp, "POST", "/mcp", Some(&call(3, "get_message_status", json!({"message_id": unknown.as_str()})))).await;
    assert!(body["result"].is_object(), "{body}");

    // A copy SQS moved to a DLQ (a consumer died three times): the sweeper records it.
    let api = d.start("api").await;
    let created =
        ok(&api, "POST", "/api/messages", Some(&json!({"message_type": "notify", "payload": {"message": "lost"}})))
            .await;
    let id = MessageId::parse(created["id"].as_str().unwrap()).unwrap();
    let event = d.receive_event(QueueName::Notifications, WAIT).await;
    let body = event["Records"][0]["body"].as_str().unwrap().to_owned();
    let q = d.names.queue(QueueName::Notifications).unwrap();
    d.clients.sqs.send_message().queue_url(&q.dlq_url).message_body(body).send().await.unwrap();
    let resp = sweeper.invoke(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})).await;
    assert_eq!(resp["dead_letters_recorded"], 1, "{resp}");
    // It released the copy it keeps (visible again at once) rather than deleting it.
    let held = d.clients.sqs.receive_message().queue_url(&q.dlq_url).send().await.unwrap();
    assert_eq!(held.messages().len(), 1);
    assert!(held.messages()[0].body().unwrap_or_default().contains(id.as_str()));
}

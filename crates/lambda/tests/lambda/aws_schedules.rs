//! Schedules on the AWS deployment: management through the api function shows up in
//! (moto's) EventBridge Scheduler with the right definition; a firing — which moto never
//! performs, so the test delivers the target input the way EventBridge would, with the
//! context attributes substituted — becomes exactly one message, even when redelivered.

use crate::common;

use std::time::Duration;

use common::{ADMIN_KEY, Deployment, http_event, http_response};
use rez_aws::scheduler::EventBridgeEngine;
use rez_core::ScheduleId;
use rez_core::ports::MessageFilter;
use rez_core::ports::MessageStore;
use rez_core::routing::QueueName;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_create_pause_delete_are_mirrored_in_eventbridge_scheduler() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let engine = EventBridgeEngine::new(d.clients.clone(), d.names.clone());

    let spec = json!({
        "name": "friday tee times",
        "schedule_expression": "cron(0 6 ? * FRI *)",
        "timezone": "America/New_York",
        "flexible_time_window_minutes": 5,
        "target_type": "notify",
        "target": {"payload": {"message": "time to book"}}
    });
    let (status, created) =
        http_response(&api.invoke(http_event("POST", "/api/schedules", Some(&spec), Some(ADMIN_KEY))).await);
    assert_eq!(status, 201, "{created}");
    let id = ScheduleId::parse(created["id"].as_str().unwrap()).unwrap();

    let remote = engine.describe(&id).await.unwrap().expect("in EventBridge Scheduler");
    assert_eq!(remote.group, d.names.schedule_group);
    assert_eq!(remote.expression, "cron(0 6 ? * FRI *)");
    assert_eq!(remote.timezone.as_deref(), Some("America/New_York"));
    assert_eq!(remote.state, "ENABLED");
    assert_eq!(remote.flexible_window_minutes, Some(5));
    let queue = d.names.queue(QueueName::ScheduleCreation).unwrap();
    assert_eq!(remote.target_arn, queue.arn);
    assert_eq!(remote.role_arn, d.names.scheduler_role_arn);
    assert_eq!(remote.dlq_arn.as_deref(), Some(queue.dlq_arn.as_str()));
    let input = remote.input.expect("target input");
    assert!(input.contains("<aws.scheduler.scheduled-time>"), "{input}");
    assert!(input.contains("<aws.scheduler.execution-id>"), "{input}");
    assert!(input.contains(id.as_str()), "{input}");

    let (status, paused) = http_response(
        &api.invoke(http_event("POST", &format!("/api/schedules/{id}/pause"), None, Some(ADMIN_KEY))).await,
    );
    assert_eq!(status, 200, "{paused}");
    assert_eq!(engine.describe(&id).await.unwrap().unwrap().state, "DISABLED");

    let patch = json!({"schedule_expression": "rate(15 minutes)"});
    let (status, patched) = http_response(
        &api.invoke(http_event("PATCH", &format!("/api/schedules/{id}"), Some(&patch), Some(ADMIN_KEY))).await,
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(engine.describe(&id).await.unwrap().unwrap().expression, "rate(15 minutes)");

    let (status, _) =
        http_response(&api.invoke(http_event("DELETE", &format!("/api/schedules/{id}"), None, Some(ADMIN_KEY))).await);
    assert!(status == 200 || status == 204, "{status}");
    assert!(engine.describe(&id).await.unwrap().is_none(), "deleted from EventBridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventbridge_firing_becomes_exactly_one_message() {
    let d = Deployment::new().await;
    let api = d.start("api").await;
    let scheduler = d.start("scheduler").await;
    let engine = EventBridgeEngine::new(d.clients.clone(), d.names.clone());
    let spec = json!({
        "name": "hourly",
        "schedule_expression": "rate(1 hour)",
        "timezone": "UTC",
        "target_type": "notify",
        "target": {"payload": {"message": "tick"}}
    });
    let (status, created) =
        http_response(&api.invoke(http_event("POST", "/api/schedules", Some(&spec), Some(ADMIN_KEY))).await);
    assert_eq!(status, 201, "{created}");
    let id = ScheduleId::parse(created["id"].as_str().unwrap()).unwrap();
    let input = engine.describe(&id).await.unwrap().unwrap().input.unwrap();

    // What EventBridge sends when it fires: the input with the context substituted.
    let scheduled = "2026-11-27T10:00:00Z";
    let body =
        input.replace("<aws.scheduler.scheduled-time>", scheduled).replace("<aws.scheduler.execution-id>", "exec-0001");
    let queue = d.names.queue(QueueName::ScheduleCreation).unwrap();
    for _ in 0..2 {
        // Delivered twice (EventBridge retried, or SQS redelivered): still one message.
        d.clients.sqs.send_message().queue_url(&queue.url).message_body(&body).send().await.unwrap();
        let event = d.receive_event(QueueName::ScheduleCreation, WAIT).await;
        assert_eq!(event["Records"].as_array().unwrap().len(), 1, "{event}");
        let resp = scheduler.invoke(event).await;
        assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    }
    let page = d.store.list_messages(&MessageFilter { limit: 100, ..MessageFilter::default() }).await.unwrap();
    let fired: Vec<_> = page
        .items
        .iter()
        .filter(|m| m.arguments.get("schedule_id").and_then(Value::as_str) == Some(id.as_str()))
        .collect();
    assert_eq!(fired.len(), 1, "{:?}", page.items);
    assert_eq!(fired[0].arguments["scheduled_time"], json!("2026-11-27T10:00:00.000Z"));
    assert_eq!(fired[0].payload["message"], "tick");

    let (_, shown) =
        http_response(&api.invoke(http_event("GET", &format!("/api/schedules/{id}"), None, Some(ADMIN_KEY))).await);
    assert_eq!(shown["execution_count"], 1, "{shown}");

    // An unreadable body on the scheduler queue never panics and is not retried: it is
    // moved to the queue's DLQ at once, where the DLQ alarm shows it.
    d.clients.sqs.send_message().queue_url(&queue.url).message_body("{not json").send().await.unwrap();
    let event = d.receive_event(QueueName::ScheduleCreation, WAIT).await;
    let resp = scheduler.invoke(event).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let dlq = d.clients.sqs.receive_message().queue_url(&queue.dlq_url).send().await.unwrap();
    assert_eq!(dlq.messages().len(), 1);
    assert_eq!(dlq.messages()[0].body(), Some("{not json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_function_serves_tools_statelessly_and_the_sweeper_runs() {
    let d = Deployment::new().await;
    let mcp = d.start("mcp").await;
    let sweeper = d.start("sweeper").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}});
    let (status, body) = http_response(&mcp.invoke(http_event("POST", "/mcp", Some(&init), Some(ADMIN_KEY))).await);
    assert_eq!(status, 200, "{body}");
    assert!(body["result"]["serverInfo"].is_object(), "{body}");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let (status, body) = http_response(&mcp.invoke(http_event("POST", "/mcp", Some(&list), Some(ADMIN_KEY))).await);
    assert_eq!(status, 200, "{body}");
    let tools = body["result"]["tools"].as_array().expect("tools");
    assert!(tools.iter().any(|t| t["name"] == "send_push_notification"), "{body}");
    // Without a key: refused.
    let (status, _) = http_response(&mcp.invoke(http_event("POST", "/mcp", Some(&list), None)).await);
    assert_eq!(status, 401);

    let resp = sweeper.invoke(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})).await;
    assert_eq!(resp["republished"], 0, "{resp}");
}

//! Schedules end to end through the real server: the REST API, firing into the
//! notification pipeline, the `schedule_creation` message, preview (API and CLI), and no
//! double fire with two servers on one data directory or across a restart.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{ADMIN_KEY, TestServer};
use serde_json::{Value, json};

fn notify_schedule(name: &str, expr: &str) -> Value {
    json!({"name": name, "schedule_expression": expr, "timezone": "Europe/London",
           "target_type": "notify", "target": {"payload": {"message": format!("from {name}"), "title": "sched"}}})
}

#[tokio::test]
async fn rest_api_manages_schedules() {
    let mut t = TestServer::start().await;
    let (s, created) = t.post_json("/api/schedules", notify_schedule("weekly", "cron(0 6 ? * FRI *)")).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "active");
    assert_eq!(created["version"], 1);
    assert!(created["next_fire_at"].as_str().is_some());

    let (s, got) = t.get_json(&format!("/api/schedules/{id}")).await;
    assert_eq!((s, got["name"].as_str()), (200, Some("weekly")));

    let r = t
        .http
        .patch(t.url(&format!("/api/schedules/{id}")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"schedule_expression": "cron(30 7 ? * SAT *)", "timezone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["schedule_expression"], "cron(30 7 ? * SAT *)");

    let (s, paused) = t.post_json(&format!("/api/schedules/{id}/pause"), json!({})).await;
    assert_eq!((s, paused["status"].as_str()), (200, Some("paused")));
    let (_, list) = t.get_json("/api/schedules?status=paused").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = t.get_json("/api/schedules?status=active").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (s, resumed) = t.post_json(&format!("/api/schedules/{id}/resume"), json!({})).await;
    assert_eq!((s, resumed["status"].as_str()), (200, Some("active")));

    // Run now: a message created by the scheduler, delivered through the pipeline.
    let (s, m) = t.post_json(&format!("/api/schedules/{id}/run"), json!({})).await;
    assert_eq!(s, 202, "{m}");
    assert_eq!(m["created_by"], "scheduler");
    let mid = m["id"].as_str().unwrap().to_owned();
    let done = t.wait_message(&mid, Duration::from_secs(10), |m| m["status"] == "completed").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(t.ntfy.received()[0].message, "from weekly");
    let (_, after) = t.get_json(&format!("/api/schedules/{id}")).await;
    assert_eq!(after["execution_count"], 1);

    let r = t.http.delete(t.url(&format!("/api/schedules/{id}"))).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _) = t.post_json(&format!("/api/schedules/{id}/pause"), json!({})).await;
    assert_eq!(s, 404);
    let (_, list) = t.get_json("/api/schedules").await;
    assert!(list["items"].as_array().unwrap().is_empty());

    // Bad input: each a 4xx naming the problem.
    for (body, status, code) in [
        (json!({"name": "x"}), 400, "missing_field"),
        (
            json!({"name": "x", "schedule_expression": "cron(0 6 * * * *)", "target_type": "notify", "target": {"payload": {"message": "m"}}}),
            400,
            "invalid_expression",
        ),
        (
            json!({"name": "x", "schedule_expression": "rate(1 hour)", "timezone": "Nowhere/Town", "target_type": "notify", "target": {"payload": {"message": "m"}}}),
            400,
            "invalid_timezone",
        ),
        (
            json!({"name": "x", "schedule_expression": "at(2020-01-01T00:00:00)", "target_type": "notify", "target": {"payload": {"message": "m"}}}),
            422,
            "unprocessable",
        ),
        (
            json!({"name": "x", "schedule_expression": "rate(1 hour)", "target_type": "notify", "target": {"payload": {}}}),
            400,
            "missing_field",
        ),
    ] {
        let (s, b) = t.post_json("/api/schedules", body.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{body}: {b}");
    }
    let (s, b) = t.get_json("/api/schedules?status=sleeping").await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    t.stop().await;
}

#[tokio::test]
async fn preview_over_the_api() {
    let mut t = TestServer::start().await;
    let (s, p) = t
        .get_json("/api/schedules/preview?expression=cron(30%201%20*%20*%20%3F%20*)&timezone=America/New_York&from=2026-10-31T00:00:00Z&count=3")
        .await;
    assert_eq!(s, 200, "{p}");
    let utc: Vec<&str> = p["times"].as_array().unwrap().iter().map(|t| t["utc"].as_str().unwrap()).collect();
    assert_eq!(utc, ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    assert_eq!(p["times"][2]["local"], "2026-11-02T01:30:00-05:00");
    let (s, e) = t.get_json("/api/schedules/preview?expression=cron(0%2025%20*%20*%20%3F%20*)").await;
    assert_eq!(s, 400);
    assert!(e["error"]["message"].as_str().unwrap().contains("hours"), "{e}");
    t.stop().await;
}

#[tokio::test]
async fn a_rate_schedule_fires_into_the_notification_pipeline() {
    let mut t = TestServer::start().await;
    // A rate schedule without a start date fires at creation, then every minute.
    let (s, created) = t.post_json("/api/schedules", notify_schedule("minutely", "rate(1 minute)")).await;
    assert_eq!(s, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(t.ntfy.wait_for(1, Duration::from_secs(10)).await, "the first firing reached ntfy");
    let (_, msgs) = t.get_json("/api/messages?created_by=scheduler").await;
    let m = &msgs["items"][0];
    assert_eq!(m["arguments"]["schedule_id"], id.as_str());
    assert!(m["idempotency_key"].as_str().unwrap().starts_with(&id));
    let (_, after) = t.get_json(&format!("/api/schedules/{id}")).await;
    assert_eq!(after["execution_count"], 1);
    assert!(after["last_fired_at"].as_str().is_some());
    let (_, metrics) = t.get_json("/api/metrics").await;
    assert_eq!(metrics["schedules"]["fired"], 1);
    t.stop().await;
}

#[tokio::test]
async fn schedule_creation_messages_manage_schedules() {
    let mut t = TestServer::start().await;
    let (s, m) = t
        .post_json(
            "/api/messages",
            json!({"message_type": "schedule_creation",
                   "arguments": {"action": "create", "name": "from a message", "schedule_expression": "cron(0 9 ? * MON *)",
                                 "timezone": "Europe/London", "target_type": "notify", "run_now": true},
                   "payload": {"payload": {"message": "ran now"}}}),
        )
        .await;
    assert_eq!(s, 202, "{m}");
    let id = m["id"].as_str().unwrap().to_owned();
    let done = t.wait_message(&id, Duration::from_secs(10), |m| m["status"] == "completed").await;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, list) = t.get_json("/api/schedules").await;
    assert_eq!(list["items"][0]["name"], "from a message");
    assert!(t.ntfy.wait_for(1, Duration::from_secs(10)).await, "run_now fired");
    assert_eq!(t.ntfy.received()[0].message, "ran now");

    // Malformed at intake: 400.
    let (s, e) = t
        .post_json("/api/messages", json!({"message_type": "schedule_creation", "arguments": {"action": "explode"}}))
        .await;
    assert_eq!((s, e["error"]["details"]["field"].as_str()), (400, Some("arguments.action")));
    // Malformed in substance: accepted, then fails with a clear error (no retries, no panic).
    let (_, m) = t
        .post_json("/api/messages", json!({"message_type": "schedule_creation", "arguments": {"action": "pause"}}))
        .await;
    let id = m["id"].as_str().unwrap().to_owned();
    let failed = t.wait_message(&id, Duration::from_secs(10), |m| m["status"] == "dead_lettered").await;
    assert_eq!(failed["status"], "dead_lettered", "{failed}");
    assert!(failed["error_message"].as_str().unwrap().contains("schedule_id"), "{failed}");
    let (_, m) = t
        .post_json("/api/messages", json!({"message_type": "schedule_creation", "arguments": {"action": "create", "name": "x", "schedule_expression": "rate(0 minutes)", "target_type": "notify"}, "payload": {"payload": {"message": "x"}}}))
        .await;
    let id = m["id"].as_str().unwrap().to_owned();
    let failed = t.wait_message(&id, Duration::from_secs(10), |m| m["status"] == "dead_lettered").await;
    assert!(failed["error_message"].as_str().unwrap().contains("schedule_expression"), "{failed}");
    t.stop().await;
}

/// A schedule created by another process (`rez schedules create`) while the engine sleeps
/// with nothing due (up to a minute) fires on time: the wake socket tells the engine.
#[tokio::test]
async fn a_schedule_created_by_another_process_fires_on_time() {
    let mut t = TestServer::start().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = common::config(t.dir.path().to_path_buf(), Some(&t.ntfy));
    let cli = rez_cli::wiring::open_store(&config).unwrap();
    let services = rez_cli::wiring::services(&config, &cli, Default::default()).unwrap();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let spec = rez_core::schedule_spec::ScheduleSpec::from_json(
        &json!({"name": "from-cli", "schedule_expression": format!("at({at})"), "timezone": "UTC",
                "target_type": "notify", "target": {"payload": {"message": "cli schedule"}}}),
        rez_core::message::Stage::Dev,
    )
    .unwrap();
    services.schedules.create(spec, rez_core::message::CreatedBy::Cli).await.unwrap();
    assert!(t.ntfy.wait_for(1, Duration::from_secs(10)).await, "fired within seconds, not at the idle wake-up");
    assert_eq!(t.ntfy.received()[0].message, "cli schedule");
    t.stop().await;
}

/// Two servers on one data directory, many schedules due at the same second: each
/// occurrence produces exactly one message. Then a restart: nothing fires again.
#[tokio::test]
async fn two_servers_on_one_database_never_double_fire() {
    let ntfy = rez_testkit::ntfy::FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = TestServer::boot(common::config(dir.path().to_path_buf(), Some(&ntfy))).await;
    let b = TestServer::boot(common::config(dir.path().to_path_buf(), Some(&ntfy))).await;
    let http = reqwest::Client::new();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let servers = [format!("http://{}", a.addr), format!("http://{}", b.addr)];
    for i in 0..40 {
        let base = &servers[i % 2];
        let body = json!({"name": format!("s{i}"), "schedule_expression": format!("at({at})"), "target_type": "notify",
                          "target": {"payload": {"message": format!("s{i}")}}});
        let r = http.post(format!("{base}/api/schedules")).bearer_auth(ADMIN_KEY).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    // Schedules written through either server reach the engine holding the lease (in
    // process, or through the wake socket), or the other takes the lease over once the
    // idle holder's lease lapses (15 s); give both time to fire.
    assert!(ntfy.wait_for(40, Duration::from_secs(30)).await, "all 40 fired: {}", ntfy.count());
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let c = TestServer::boot(common::config(dir.path().to_path_buf(), Some(&ntfy))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per: HashMap<String, usize> = HashMap::new();
    for p in ntfy.received() {
        *per.entry(p.message).or_default() += 1;
    }
    assert_eq!(per.len(), 40);
    assert!(per.values().all(|&n| n == 1), "an occurrence fired twice: {per:?}");
    let r = http
        .get(format!("http://{}/api/schedules?status=completed&limit=100", c.addr))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 40);
    c.shutdown().await.unwrap();
}

#[test]
fn cli_preview_prints_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .args([
            "schedules",
            "preview",
            "--expression",
            "cron(0 12 L * ? *)",
            "--timezone",
            "UTC",
            "--from",
            "2028-01-15T00:00:00Z",
            "--count",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, ["2028-01-31T12:00:00.000Z", "2028-02-29T12:00:00.000Z", "2028-03-31T12:00:00.000Z"]);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .args(["schedules", "preview", "--expression", "cron(0 12 * * * *)"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains('?'), "{}", String::from_utf8_lossy(&bad.stderr));
}

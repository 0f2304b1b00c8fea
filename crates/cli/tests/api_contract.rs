//! Black-box API contract: every bad input gets a 4xx with the documented error body,
//! and nothing is stored; auth and scopes; idempotency; pagination; OpenAPI; health.

mod common;

use common::{ADMIN_KEY, TestServer};
use rez_core::auth::Scope;
use serde_json::{Value, json};

async fn stored_count(t: &TestServer) -> usize {
    let (s, body) = t.get_json("/api/messages?limit=100").await;
    assert_eq!(s, 200);
    body["items"].as_array().unwrap().len()
}

fn assert_error_body(body: &Value, code: &str) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn bad_inputs_get_4xx_and_store_nothing() {
    let mut t = TestServer::start().await;
    let post = |body: Vec<u8>, ct: Option<&'static str>| {
        let mut r = t.http.post(t.url("/api/messages")).bearer_auth(ADMIN_KEY).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let cases: Vec<(Vec<u8>, Option<&str>, u16, &str)> = vec![
        (b"{not json".to_vec(), Some("application/json"), 400, "invalid_json"),
        (b"".to_vec(), Some("application/json"), 400, "invalid_json"),
        (b"[1,2]".to_vec(), Some("application/json"), 400, "invalid_body"),
        (br#"{"message_type": 5}"#.to_vec(), Some("application/json"), 400, "invalid_field"),
        (
            br#"{"message_type": "notification", "payload": {"message": "x"}}"#.to_vec(),
            Some("application/json"),
            400,
            "unknown_message_type",
        ),
        (br#"{"payload": {"message": "x"}}"#.to_vec(), Some("application/json"), 400, "missing_field"),
        (br#"{"message_type": "notify", "payload": {}}"#.to_vec(), Some("application/json"), 400, "missing_field"),
        (
            br#"{"message_type": "notify", "payload": {"message": "x", "priority": 9}}"#.to_vec(),
            Some("application/json"),
            400,
            "invalid_field",
        ),
        (
            br#"{"message_type": "notify", "payload": {"message": "x"}, "status": "completed"}"#.to_vec(),
            Some("application/json"),
            400,
            "read_only_field",
        ),
        (
            br#"{"message_type": "notify", "payload": {"message": "x"}}"#.to_vec(),
            Some("text/plain"),
            415,
            "unsupported_media_type",
        ),
        (
            format!(r#"{{"message_type": "notify", "payload": {{"message": "{}"}}}}"#, "x".repeat(300 * 1024))
                .into_bytes(),
            Some("application/json"),
            413,
            "payload_too_large",
        ),
    ];
    for (body, ct, status, code) in cases {
        let r = post(body, ct).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "expected {status} {code}");
        let body: Value = r.json().await.unwrap();
        assert_error_body(&body, code);
    }
    assert_eq!(stored_count(&t).await, 0, "nothing malformed was stored");

    // Bad query parameters and ids.
    for (path, code) in [
        ("/api/messages?status=done", "invalid_parameter"),
        ("/api/messages?limit=0", "invalid_parameter"),
        ("/api/messages?limit=101", "invalid_parameter"),
        ("/api/messages?cursor=zzz", "invalid_cursor"),
        ("/api/messages?colour=red", "unknown_parameter"),
        ("/api/messages?created_after=yesterday", "invalid_parameter"),
        ("/api/messages/not-an-id", "invalid_id"),
        ("/api/dlq?queue=nope", "invalid_parameter"),
        ("/api/notifications?state=lost", "invalid_parameter"),
    ] {
        let (s, body) = t.get_json(path).await;
        assert_eq!(s, 400, "{path}: {body}");
        assert_error_body(&body, code);
    }
    let (s, body) = t.get_json("/api/messages/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(s, 404);
    assert_error_body(&body, "not_found");
    let (s, body) = t.get_json("/api/nowhere").await;
    assert_eq!(s, 404);
    assert_error_body(&body, "not_found");
    let r = t.http.put(t.url("/api/messages")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_error_body(&r.json().await.unwrap(), "method_not_allowed");
    for body in [
        json!({}),
        json!({"all": false}),
        json!({"queue": "nope"}),
        json!({"ids": ["x"]}),
        json!({"all": true, "queue": "notifications"}),
    ] {
        let (s, b) = t.post_json("/api/dlq/redrive", body.clone()).await;
        assert_eq!(s, 400, "{body}: {b}");
    }
    t.stop().await;
}

#[tokio::test]
async fn auth_and_scopes() {
    let mut t = TestServer::start().await;
    let valid = json!({"message_type": "notify", "payload": {"message": "x"}});
    // Health needs no key.
    assert_eq!(t.http.get(t.url("/api/health")).send().await.unwrap().status().as_u16(), 200);
    // No key, wrong key, malformed header.
    let r = t.http.post(t.url("/api/messages")).json(&valid).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_error_body(&r.json().await.unwrap(), "unauthorized");
    for auth in [
        "Bearer wrong",
        "Bearer rez_01ARZ3NDEKTSV4RRFFQ69G5FAV_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Basic Zm9vOmJhcg==",
        "Bearer ",
    ] {
        let r = t.http.post(t.url("/api/messages")).header("authorization", auth).json(&valid).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth}");
    }
    // A read-only key can read but not write.
    let services = &t.server.as_ref().unwrap().services;
    let read = services.keys.create("reader", Scope::Read).await.unwrap();
    let r = t.http.get(t.url("/api/messages")).bearer_auth(&read.token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = t.http.post(t.url("/api/messages")).bearer_auth(&read.token).json(&valid).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_error_body(&r.json().await.unwrap(), "insufficient_scope");
    // A write key works; once revoked it stops working (after the verifier cache).
    let write = services.keys.create("writer", Scope::Write).await.unwrap();
    let r = t.http.post(t.url("/api/messages")).bearer_auth(&write.token).json(&valid).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(stored_count(&t).await, 1, "only the authorised write was stored");
    let fresh = services.keys.create("short-lived", Scope::Write).await.unwrap();
    services.keys.store().revoke(&fresh.record.id, chrono::Utc::now()).await.unwrap();
    let r = t.http.post(t.url("/api/messages")).bearer_auth(&fresh.token).json(&valid).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "a revoked key is refused");
    t.stop().await;
}

#[tokio::test]
async fn idempotency_key_header_replays_the_first_message() {
    let mut t = TestServer::start().await;
    let body = json!({"message_type": "notify", "payload": {"message": "once"}});
    let send = || {
        t.http
            .post(t.url("/api/messages"))
            .bearer_auth(ADMIN_KEY)
            .header("idempotency-key", "order-42")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(stored_count(&t).await, 1);
    assert!(t.ntfy.wait_for(1, std::time::Duration::from_secs(5)).await);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(t.ntfy.count(), 1, "one message, one push");
    // Header and body disagreeing is an error.
    let r = t
        .http
        .post(t.url("/api/messages"))
        .bearer_auth(ADMIN_KEY)
        .header("idempotency-key", "a")
        .json(&json!({"message_type": "notify", "payload": {"message": "x"}, "idempotency_key": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    t.stop().await;
}

#[tokio::test]
async fn list_filters_and_cursor_pagination() {
    let mut t = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.notify(&format!("n{i}")).await);
    }
    let (s, _) =
        t.post_json("/api/messages", json!({"message_type": "web_action", "payload": {"action": "weather"}})).await;
    assert_eq!(s, 202);
    let mut seen = Vec::new();
    let mut path = "/api/messages?message_type=notify&limit=2".to_owned();
    loop {
        let (s, body) = t.get_json(&path).await;
        assert_eq!(s, 200);
        seen.extend(body["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/messages?message_type=notify&limit=2&cursor={c}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let (_, body) = t.get_json("/api/messages?message_type=web_action&created_by=api&stage=dev").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (_, body) = t.get_json("/api/messages?created_after=2999-01-01T00:00:00Z").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    t.stop().await;
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let mut t = TestServer::start().await;
    let (s, doc) = t.get_json("/api/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/api/messages",
        "/api/messages/{id}",
        "/api/messages/{id}/retry",
        "/api/dlq",
        "/api/dlq/redrive",
        "/api/dlq/{id}",
        "/api/notifications",
        "/api/health",
        "/api/metrics",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
    let (s, h) = t.get_json("/api/health?deep=true").await;
    assert_eq!(s, 200);
    assert_eq!(h["queues"].as_array().unwrap().len(), 4);
    let id = t.notify("m").await;
    let m = t.wait_message(&id, std::time::Duration::from_secs(10), |m| m["status"] == "completed").await;
    assert_eq!(m["status"], "completed");
    let r = t.http.get(t.url("/metrics")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    let text = r.text().await.unwrap();
    for name in [
        "rez_queue_depth",
        "rez_queue_oldest_age_seconds",
        "rez_handler_duration_seconds",
        "rez_dlq_depth",
        "rez_deliveries_handled_total",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    // The message's writes were committed, and every commit was timed.
    let commits = text
        .lines()
        .find_map(|l| l.strip_prefix("rez_store_commit_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("rez_store_commit_seconds_count");
    assert!(commits >= 2, "the publish and the completion commits were timed: {commits}");
    let (s, m) = t.get_json("/api/metrics").await;
    assert_eq!(s, 200);
    assert_eq!(m["accepted"]["notify"], 1);
    t.stop().await;
}

#[tokio::test]
async fn health_without_a_key_says_only_up_or_down() {
    let mut t = TestServer::start().await;
    for path in ["/api/health", "/api/health?deep=true"] {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"status": "ok"}), "{path}: no version, uptime or queue depths without a key");
    }
    // A malformed query is still the caller's error.
    let r = t.http.get(t.url("/api/health?deep=maybe")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A key with scope `read` sees the details.
    let services = &t.server.as_ref().unwrap().services;
    let read = services.keys.create("reader", Scope::Read).await.unwrap();
    let r = t.http.get(t.url("/api/health?deep=true")).bearer_auth(&read.token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body["version"].is_string() && body["uptime_seconds"].is_u64(), "{body}");
    assert_eq!(body["queues"].as_array().map(Vec::len), Some(4), "{body}");
    // A wrong key is refused rather than treated as none.
    let r = t.http.get(t.url("/api/health")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Down: the store check fails. Without a key, only that; with one, the reason.
    let store = t.server.as_ref().unwrap().store.clone();
    store
        .db()
        .write(|ctx| {
            ctx.tx
                .execute_batch("DROP TABLE instances")
                .map_err(|e| rez_core::ports::StoreError::Unavailable(e.to_string()))
        })
        .await
        .unwrap();
    let r = t.http.get(t.url("/api/health?deep=true")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "down"}), "no error text without a key");
    let r = t.http.get(t.url("/api/health?deep=true")).bearer_auth(&read.token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("store check failed")), "{body}");
    t.stop().await;
}

//! The MCP server end to end: a real MCP client (rmcp) against `rez serve` on port 0 with
//! the fake ntfy, NOAA and cps.golf — tools, the course resource, the prompt, schedules,
//! exactly-once booking — and plain HTTP for what a client library would never send:
//! missing or wrong keys, foreign Host/Origin headers, malformed JSON-RPC, batches,
//! oversized bodies, wrong content types. Also `rez mcp` (stdio) as a child process
//! beside a running server on the same data directory.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::TestServer;
use rez_core::auth::Scope;
use rez_testkit::golf::FakeSlot;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, GetPromptRequestParams, Implementation,
    ProtocolVersion, ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Map, Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

async fn key(t: &TestServer, scope: Scope) -> String {
    let s = t.server.as_ref().expect("running").services.clone();
    s.keys.create("mcp-test", scope).await.expect("key").token
}

async fn connect(t: &TestServer, key: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(t.url("/mcp")).auth_header(key),
    );
    ClientConfig::new(ClientCapabilities::default(), Implementation::new("rez-tests", "1"))
        .serve(transport)
        .await
        .expect("MCP client connects")
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn call(client: &Client, name: &'static str, arguments: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(name).with_arguments(args(arguments));
    tokio::time::timeout(Duration::from_secs(30), client.call_tool(params))
        .await
        .expect("tool call answers in time")
        .expect("tool call is not a protocol error")
}

fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| serde_json::to_value(c).ok()?["text"].as_str().map(str::to_owned)).collect()
}

fn structured(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "unexpected tool error: {}", text(r));
    r.structured_content.clone().unwrap_or(Value::Null)
}

fn slot(id: i64, d: NaiveDate, h: u32, m: u32) -> FakeSlot {
    FakeSlot::new(id, d.and_hms_opt(h, m, 0).unwrap())
}

#[tokio::test]
async fn a_real_client_uses_every_kind_of_tool() {
    let mut r = common::world().await;
    let k = key(&r.t, Scope::Write).await;
    let client = connect(&r.t, &k).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("rez_agent"));
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);

    // The registry, with valid JSON Schema objects for input and output.
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "send_push_notification",
        "get_weather_forecast",
        "golf_search_tee_times",
        "golf_book_tee_time",
        "golf_get_reservations",
        "list_courses",
        "create_schedule",
        "list_schedules",
        "pause_schedule",
        "resume_schedule",
        "delete_schedule",
        "get_message_status",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for t in &tools {
        assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{}", t.name);
        assert!(t.input_schema.get("properties").is_some_and(Value::is_object), "{}", t.name);
        assert_eq!(t.output_schema.as_ref().and_then(|s| s.get("type")), Some(&json!("object")), "{}", t.name);
        assert!(t.description.as_ref().is_some_and(|d| d.len() > 20), "{}", t.name);
    }

    // A notification reaches the fake ntfy and is a message created by mcp.
    let res = call(
        &client,
        "send_push_notification",
        json!({"message": "Hello from MCP", "title": "rez", "priority": "high"}),
    )
    .await;
    let out = structured(&res);
    assert_eq!(out["delivery"], "delivered", "{}", text(&res));
    assert!(r.t.ntfy.wait_for(1, Duration::from_secs(10)).await);
    assert_eq!(r.t.ntfy.received()[0].message, "Hello from MCP");
    let (_, m) = r.t.get_json(&format!("/api/messages/{}", out["message_id"].as_str().unwrap())).await;
    assert_eq!((m["created_by"].as_str(), m["message_type"].as_str()), (Some("mcp"), Some("notify")));

    // Weather by course name (never a URL).
    let res = call(&client, "get_weather_forecast", json!({"course": "Birdsfoot", "days": 2})).await;
    let out = structured(&res);
    assert!(out["output"]["forecast"]["periods"].as_array().is_some_and(|p| !p.is_empty()), "{out}");
    assert!(text(&res).contains("Birdsfoot"), "{}", text(&res));
    let res =
        call(&client, "get_weather_forecast", json!({"course": "birdsfoot", "url": "http://169.254.169.254/"})).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("unknown field `url`"), "{}", text(&res));

    // Golf: search, then book exactly once.
    let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
    r.golf.add_slot(slot(501, day, 7, 30));
    r.golf.add_slot(slot(502, day, 8, 40));
    r.golf.add_slot(slot(503, day, 9, 20));
    let res = call(
        &client,
        "golf_search_tee_times",
        json!({"course": "birdsfoot", "date": "2026-12-05", "window_start": "08:00", "window_end": "10:00", "players": 4}),
    )
    .await;
    let out = structured(&res);
    let ids: Vec<i64> =
        out["output"]["tee_times"].as_array().unwrap().iter().map(|s| s["tee_sheet_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [502, 503]);
    assert!(text(&res).contains("tee_sheet_id 502"), "{}", text(&res));

    let book = json!({"course": "birdsfoot", "tee_sheet_id": 502, "players": 4});
    let first = structured(&call(&client, "golf_book_tee_time", book.clone()).await);
    assert_eq!(first["output"]["confirmation"]["tee_sheet_id"], 502, "{first}");
    let again = structured(&call(&client, "golf_book_tee_time", book).await);
    assert_eq!(again["message_id"], first["message_id"], "a repeated call is the same booking");
    assert_eq!(r.golf.reservations().len(), 1, "booked exactly once");
    assert_eq!(r.golf.pricing_calls()[0].participants.len(), 4, "for four players");

    let res = call(&client, "golf_get_reservations", json!({"course": "birdsfoot"})).await;
    assert!(structured(&res)["output"]["reservations"].as_array().is_some_and(|r| r.len() == 1));

    // A bad argument is a tool error with a useful message, not a protocol error.
    let res = call(&client, "golf_search_tee_times", json!({"course": "birdsfoot", "date": "next saturday"})).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("date") && text(&res).contains("YYYY-MM-DD"), "{}", text(&res));
    let res =
        call(&client, "golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 502, "players": 6})).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("players"), "{}", text(&res));
    let res = call(&client, "golf_get_reservations", json!({"course": "nowhere"})).await;
    assert_eq!(res.is_error, Some(true), "an unknown course fails as a tool error");
    assert!(text(&res).contains("nowhere"), "{}", text(&res));

    // Status of what was done; the course list as a tool, a resource and in the prompt.
    let res = call(&client, "get_message_status", json!({"message_id": first["message_id"]})).await;
    assert_eq!(structured(&res)["message"]["status"], "completed");
    let res = call(&client, "list_courses", json!({})).await;
    assert_eq!(structured(&res)["courses"][0]["id"], "birdsfoot");
    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources[0].uri, "rez://courses");
    let read = client.read_resource(ReadResourceRequestParams::new("rez://courses")).await.unwrap();
    let ResourceContents::TextResourceContents { text: body, .. } = &read.contents[0] else { panic!("text") };
    assert!(body.contains("Birdsfoot Golf Course"), "{body}");
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts[0].name, "weekly_tee_time");
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("weekly_tee_time").with_arguments(args(json!({"course": "birdsfoot"}))))
        .await
        .unwrap();
    assert!(serde_json::to_string(&prompt.messages).unwrap().contains("golf_search_tee_times"));

    // An unknown tool is a protocol error.
    let e = client.call_tool(CallToolRequestParams::new("no_such_tool")).await.unwrap_err();
    assert!(e.to_string().contains("no_such_tool"), "{e}");

    client.cancel().await.unwrap();
    r.t.stop().await;
}

#[tokio::test]
async fn schedules_through_tools() {
    let mut t = TestServer::start().await;
    let k = key(&t, Scope::Write).await;
    let client = connect(&t, &k).await;
    let res = call(
        &client,
        "create_schedule",
        json!({
            "name": "friday reminder",
            "schedule_expression": "cron(0 6 ? * FRI *)",
            "timezone": "America/New_York",
            "target_type": "notify",
            "target": {"payload": {"message": "Book a tee time?"}},
        }),
    )
    .await;
    let out = structured(&res);
    let id = out["schedule"]["id"].as_str().expect("the created schedule").to_owned();
    assert_eq!(out["schedule"]["status"], "active");
    let (_, m) = t.get_json(&format!("/api/messages/{}", out["message_id"].as_str().unwrap())).await;
    assert_eq!((m["message_type"].as_str(), m["created_by"].as_str()), (Some("schedule_creation"), Some("mcp")));

    let listed = structured(&call(&client, "list_schedules", json!({})).await);
    assert_eq!(listed["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(listed["schedules"][0]["id"], id.as_str());

    let paused = structured(&call(&client, "pause_schedule", json!({"schedule_id": id})).await);
    assert_eq!(paused["schedule"]["status"], "paused");
    let resumed = structured(&call(&client, "resume_schedule", json!({"schedule_id": id})).await);
    assert_eq!(resumed["schedule"]["status"], "active");
    let deleted = structured(&call(&client, "delete_schedule", json!({"schedule_id": id})).await);
    assert_eq!(deleted["schedule"]["status"], "deleted");
    let listed = structured(&call(&client, "list_schedules", json!({})).await);
    assert!(listed["schedules"].as_array().unwrap().is_empty());

    // Mistakes come back at once, naming the field.
    let res = call(
        &client,
        "create_schedule",
        json!({"name": "x", "schedule_expression": "cron(0 6 * * FRI *)", "target_type": "notify", "target": {"payload": {"message": "x"}}}),
    )
    .await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("schedule_expression"), "{}", text(&res));
    let res = call(&client, "pause_schedule", json!({"schedule_id": "sch_01JAAAAAAAAAAAAAAAAAAAAAAA"})).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("no such schedule"), "{}", text(&res));

    client.cancel().await.unwrap();
    t.stop().await;
}

/// POST a JSON-RPC body with the headers a Streamable HTTP client sends.
fn post(t: &TestServer, key: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    let mut rb = t
        .http
        .post(t.url("/mcp"))
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    rb
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

#[tokio::test]
async fn keys_scopes_and_dns_rebinding() {
    let mut t = TestServer::start().await;
    let metadata = t.url("/.well-known/oauth-protected-resource/mcp");

    // No key: 401 with a challenge pointing at the RFC 9728 metadata.
    let r = post(&t, None, INIT).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata}\""));
    // The metadata names the resource; keys are issued out of band.
    let m: Value = t.http.get(&metadata).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["resource"], t.url("/mcp"));
    assert_eq!(m["bearer_methods_supported"], json!(["header"]));
    let root: Value =
        t.http.get(t.url("/.well-known/oauth-protected-resource")).send().await.unwrap().json().await.unwrap();
    assert_eq!(root["resource"], t.url("/mcp"));

    // A wrong key: 401, invalid_token.
    let r = post(&t, Some("rez_nope"), INIT).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));

    // A read-only key: 403, insufficient_scope.
    let read = key(&t, Scope::Read).await;
    let r = post(&t, Some(&read), INIT).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let h = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(h.contains("error=\"insufficient_scope\"") && h.contains("scope=\"mcp\""), "{h}");

    // An mcp key works; a foreign Origin or Host is refused even with it.
    let k = key(&t, Scope::Mcp).await;
    let r = post(&t, Some(&k), INIT).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("mcp-session-id"));
    let r = post(&t, Some(&k), INIT).header("origin", "http://evil.example.com").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = post(&t, Some(&k), INIT).header("host", "evil.example.com").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = post(&t, Some(&k), INIT).header("origin", "http://localhost:3000").send().await.unwrap();
    assert_eq!(r.status(), 200, "a local page may use it");
    // The key is never needed for the metadata, and the API keeps its own rules.
    assert_eq!(t.http.get(t.url("/api/messages")).bearer_auth(&k).send().await.unwrap().status(), 200);
    t.stop().await;
}

/// The JSON-RPC message in a JSON or SSE answer.
fn rpc_body(raw: &str) -> Value {
    if let Ok(v) = serde_json::from_str(raw) {
        return v;
    }
    raw.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn bad_input_gets_the_specs_errors() {
    let mut t = TestServer::start().await;
    let k = key(&t, Scope::Mcp).await;
    let code = |v: &Value| v["error"]["code"].as_i64();

    let r = post(&t, Some(&k), "{\"jsonrpc\": \"2.0\", ").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), Some(-32700));

    let batch = format!("[{INIT}]");
    let r = post(&t, Some(&k), batch).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), Some(-32600));

    let r = post(&t, Some(&k), r#"{"id":1,"method":"ping"}"#).send().await.unwrap();
    assert_eq!(r.status(), 400, "no jsonrpc version");

    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(300 * 1024));
    let r = post(&t, Some(&k), big).send().await.unwrap();
    assert_eq!(r.status(), 413);

    let raw = |content_type: &str, accept: &str| {
        t.http
            .post(t.url("/mcp"))
            .timeout(Duration::from_secs(10))
            .bearer_auth(&k)
            .header("content-type", content_type)
            .header("accept", accept)
            .body(INIT)
    };
    let r = raw("text/plain", "application/json, text/event-stream").send().await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(code(&r.json().await.unwrap()), Some(-32600));
    let r = raw("application/json", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 406);

    // A session, then a notification (202), a response (202), an unknown method (-32601)
    // and a known method with unusable params (-32602).
    let r = post(&t, Some(&k), INIT).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = r.text().await;
    let with_session = |body: &'static str| {
        post(&t, Some(&k), body).header("mcp-session-id", session.as_str()).header("mcp-protocol-version", "2025-11-25")
    };
    let r = with_session(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = with_session(r#"{"jsonrpc":"2.0","id":"x","result":{}}"#).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = with_session(r#"{"jsonrpc":"2.0","id":7,"method":"no/such"}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = rpc_body(&r.text().await.unwrap());
    assert_eq!((v["id"].as_i64(), code(&v)), (Some(7), Some(-32601)), "{v}");
    let r = with_session(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}"#)
        .send()
        .await
        .unwrap();
    let v = rpc_body(&r.text().await.unwrap());
    assert_eq!((v["id"].as_i64(), code(&v)), (Some(8), Some(-32602)), "{v}");
    let r = with_session(r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#).send().await.unwrap();
    assert!(rpc_body(&r.text().await.unwrap())["result"]["tools"].is_array());

    // No correctness rests on this process's memory: a session it never issued (as after
    // a restart, or on another instance) is served, not refused — if it is bound to the
    // key that presents it.
    let never_issued = rez_mcp::session::bind("1b671a64-40d5-491e-99b0-da01ff1f3341", k.as_bytes());
    let r = post(&t, Some(&k), r#"{"jsonrpc":"2.0","id":10,"method":"tools/list"}"#)
        .header("mcp-session-id", never_issued.as_str())
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(rpc_body(&r.text().await.unwrap())["result"]["tools"].is_array());
    t.stop().await;
}

/// A session belongs to the key that opened it: another key, a bare or forged id get
/// `404`; the number of sessions is capped, with the reason past the cap.
#[tokio::test]
async fn sessions_are_bound_to_their_key_and_capped() {
    let ntfy = rez_testkit::ntfy::FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path().to_path_buf(), Some(&ntfy));
    config.mcp_max_sessions = 2;
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    let mut t = TestServer { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir };
    let (a, b) = (key(&t, Scope::Mcp).await, key(&t, Scope::Mcp).await);
    let open = |k: &str| {
        let req = post(&t, Some(k), INIT);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let session = r.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
            (status, session, r.text().await.unwrap_or_default())
        }
    };
    let (s, session, _) = open(&a).await;
    assert_eq!(s, 200);
    let session = session.expect("a session id");
    let with = |k: &str, id: &str| {
        post(&t, Some(k), r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    assert_eq!(with(&a, &session).await.unwrap().status(), 202, "its own key");
    assert_eq!(with(&b, &session).await.unwrap().status(), 404, "another key");
    let bare = session.rsplit_once('_').unwrap().0.to_owned();
    assert_eq!(with(&a, &bare).await.unwrap().status(), 404, "the id without its binding");
    let forged = rez_mcp::session::bind(&bare, b.as_bytes());
    assert_eq!(with(&a, &forged).await.unwrap().status(), 404, "bound to another key");
    let r = t.http.get(t.url("/mcp")).bearer_auth(&b).header("mcp-session-id", session.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 404, "GET (the SSE stream) with another key");

    // The cap: a session beside the open one fits, one more is refused with the reason, and closing
    // one makes room.
    let (s, second, _) = open(&b).await;
    assert_eq!(s, 200);
    let (s, _, body) = open(&a).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("REZ_MCP_MAX_SESSIONS"), "{body}");
    let r = t
        .http
        .delete(t.url("/mcp"))
        .bearer_auth(&b)
        .header("mcp-session-id", second.unwrap().as_str())
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let mut reopened = 0;
    for _ in 0..50 {
        if open(&a).await.0 == 200 {
            reopened += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reopened, 1, "closing a session makes room");
    t.stop().await;
}

#[tokio::test]
async fn the_2026_07_28_stateless_lifecycle() {
    let mut t = TestServer::start().await;
    let k = key(&t, Scope::Mcp).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(t.url("/mcp")).auth_header(k.as_str()),
    );
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] },
        )
        .await
        .expect("discover");
    assert_eq!(client.peer_info().map(|i| i.protocol_version.clone()), Some(ProtocolVersion::V_2026_07_28));
    assert!(client.list_all_tools().await.unwrap().len() >= 12);
    let res = client.call_tool(CallToolRequestParams::new("list_courses").with_arguments(Map::new())).await.unwrap();
    assert!(structured(&res)["courses"].as_array().is_some_and(|c| !c.is_empty()));
    client.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn auth_none_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path().to_path_buf(), None);
    config.mcp_auth_none = true;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = rez_cli::serve::Server::start(config, listener).await.err().expect("refused");
    assert!(err.to_string().contains("REZ_MCP_AUTH=none"), "{err:#}");
}

#[tokio::test]
async fn stdio_beside_a_running_server() {
    // `rez serve` does the work; `rez mcp` (what Claude Desktop starts) shares its data directory.
    let mut t = TestServer::start().await;
    let dir = t.dir.path().to_path_buf();
    let transport = TokioChildProcess::new(tokio::process::Command::new(env!("CARGO_BIN_EXE_rez")).configure(|cmd| {
        cmd.arg("mcp")
            .env_clear()
            .env("REZ_DATA_DIR", &dir)
            .env("REZ_LOG", "warn")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(&dir);
    }))
    .expect("spawn rez mcp");
    let client = ().serve(transport).await.expect("stdio handshake");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 12);
    let res = client
        .call_tool(
            CallToolRequestParams::new("send_push_notification").with_arguments(args(json!({"message": "from stdio"}))),
        )
        .await
        .unwrap();
    let out = structured(&res);
    assert_eq!(out["delivery"], "delivered", "{}", text(&res));
    assert!(t.ntfy.wait_for(1, Duration::from_secs(10)).await);
    assert_eq!(t.ntfy.received()[0].message, "from stdio");
    let (_, m) = t.get_json(&format!("/api/messages/{}", out["message_id"].as_str().unwrap())).await;
    assert_eq!(m["created_by"], "mcp");
    client.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn stdio_stdout_carries_only_the_protocol() {
    use tokio::io::AsyncWriteExt;
    // A fresh data directory: opening it creates the database and the master key, and
    // says so in the logs — which must go to stderr.
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .arg("mcp")
        .env_clear()
        .env("REZ_DATA_DIR", dir.path())
        .env("REZ_LOG", "debug")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        INIT,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_courses","arguments":{}}}"#,
    ];
    for l in lines {
        stdin.write_all(format!("{l}\n").as_bytes()).await.unwrap();
    }
    // Answer the three requests, then end the session by closing stdin.
    let out = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(stdin);
        child.wait_with_output().await.unwrap()
    })
    .await
    .expect("rez mcp exits when stdin closes");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let messages: Vec<Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON-RPC on stdout ({e}): {l}\nstderr: {stderr}"))
        })
        .collect();
    let mut ids: Vec<i64> = messages.iter().filter_map(|m| m["id"].as_i64()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3], "every request answered (in any order): {stdout}");
    assert!(messages.iter().all(|m| m["jsonrpc"] == "2.0"));
    assert!(!stderr.is_empty(), "logs go to stderr");
}

/// SPEC §8 through MCP as through REST and the CLI: a key with scope `mcp` may only read
/// (as it may through REST); the schedule count and `message`-target nesting limits give
/// the same reasons everywhere.
#[tokio::test]
async fn scopes_and_limits_hold_through_tools() {
    let ntfy = rez_testkit::ntfy::FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path().to_path_buf(), Some(&ntfy));
    config.limits.max_schedules = 2;
    let server = TestServer::boot(config).await;
    let base = format!("http://{}", server.addr);
    let mut t = TestServer { server: Some(server), base, http: reqwest::Client::new(), ntfy, dir };

    // An mcp key reads, but cannot act.
    let looker = connect(&t, &key(&t, Scope::Mcp).await).await;
    structured(&call(&looker, "list_courses", json!({})).await);
    structured(&call(&looker, "list_schedules", json!({})).await);
    let res = call(&looker, "send_push_notification", json!({"message": "not allowed"})).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("scope `write`"), "{}", text(&res));
    let res = call(
        &looker,
        "create_schedule",
        json!({"name": "n", "schedule_expression": "rate(1 hour)",
        "target_type": "notify", "target": {"payload": {"message": "x"}}}),
    )
    .await;
    assert_eq!(res.is_error, Some(true));
    let (_, listed) = t.get_json("/api/messages").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0), "a refused call records nothing: {listed}");
    looker.cancel().await.unwrap();

    // A write key acts, up to the schedule limit.
    let actor = connect(&t, &key(&t, Scope::Write).await).await;
    let schedule = |name: &str| {
        json!({"name": name, "schedule_expression": "rate(1 hour)", "target_type": "notify",
               "target": {"payload": {"message": "hourly"}}})
    };
    structured(&call(&actor, "create_schedule", schedule("one")).await);
    let (s, body) = t.post_json("/api/schedules", schedule("two")).await;
    assert_eq!(s, 201, "{body}");
    let res = call(&actor, "create_schedule", schedule("three")).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("the most allowed"), "{}", text(&res));
    let (s, body) = t.post_json("/api/schedules", schedule("three")).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"]["code"], "too_many_schedules");
    assert_eq!(body["error"]["details"]["max_schedules"], 2);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
        .args(["schedules", "create", "--name", "three", "--expression", "rate(1 hour)", "--target-type", "notify"])
        .args(["--target", r#"{"payload":{"message":"x"}}"#])
        .env("REZ_DATA_DIR", t.dir.path())
        .env("REZ_MAX_SCHEDULES", "2")
        .env_remove("REZ_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the most allowed"), "{out:?}");

    // A schedule may create schedules, but not schedules that create schedules.
    let (_, listed) = t.get_json("/api/schedules").await;
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let r = t.http.delete(t.url(&format!("/api/schedules/{id}"))).bearer_auth(common::ADMIN_KEY).send().await.unwrap();
    assert!(r.status().is_success());
    let creates = |inner_type: &str, inner: Value| {
        json!({"message_type": "schedule_creation", "payload": inner,
               "arguments": {"action": "create", "name": "inner", "schedule_expression": "rate(1 hour)", "target_type": inner_type}})
    };
    let nested = creates("message", creates("notify", json!({"message": "x"})));
    let deep =
        json!({"name": "deep", "schedule_expression": "rate(1 hour)", "target_type": "message", "target": nested});
    let (s, body) = t.post_json("/api/schedules", deep.clone()).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "nesting_too_deep");
    let res = call(&actor, "create_schedule", deep).await;
    assert_eq!(res.is_error, Some(true));
    assert!(text(&res).contains("not schedules that create schedules"), "{}", text(&res));
    let shallow = json!({"name": "shallow", "schedule_expression": "rate(1 hour)", "target_type": "message",
        "target": creates("notify", json!({"message": "x"}))});
    let (s, body) = t.post_json("/api/schedules", shallow).await;
    assert_eq!(s, 201, "one level is allowed: {body}");
    actor.cancel().await.unwrap();
    t.stop().await;
}

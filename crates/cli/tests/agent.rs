//! The agent end to end through `rez serve`, with every outside service a fake: the model
//! (Anthropic's wire format, scripted turn by turn), cps.golf, NOAA and ntfy. A run is
//! started by a schedule, the API or chat; these tests read what the model was sent, what
//! the course booked, what the phone was pushed, and what the run recorded.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::{ADMIN_KEY, WorldRig};
use rez_core::agent::Usage;
use rez_testkit::golf::FakeSlot;
use rez_testkit::model::{FakeModel, FakeTurn};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "sk-ant-test-key";

async fn rig(model: &FakeModel, extra: &[(&str, &str)]) -> WorldRig {
    let agent = common::agent_env(model, KEY);
    // The first of two values of a variable wins: `extra` before the defaults.
    let mut env = extra.to_vec();
    env.extend(agent.iter().map(|(k, v)| (*k, v.as_str())));
    common::world_with(&env).await
}

fn slot(id: i64, d: NaiveDate, h: u32, m: u32) -> FakeSlot {
    FakeSlot::new(id, d.and_hms_opt(h, m, 0).unwrap())
}

/// Poll a run until it has ended.
async fn wait_run(r: &WorldRig, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, run) = r.t.get_json(&format!("/api/agent/runs/{id}")).await;
        assert_eq!(s, 200, "{run}");
        let ended = !matches!(run["status"].as_str(), Some("queued" | "running"));
        if ended || tokio::time::Instant::now() > deadline {
            assert!(ended, "the run did not end: {run}");
            return run;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn start(r: &WorldRig, body: Value) -> String {
    let (s, run) = r.t.post_json("/api/agent/runs", body).await;
    assert_eq!(s, 202, "{run}");
    assert_eq!(run["status"], "queued");
    run["id"].as_str().unwrap().to_owned()
}

fn tool_steps(run: &Value) -> Vec<&Value> {
    run["steps"].as_array().unwrap().iter().filter(|s| s["kind"] == "tool_call").collect()
}

#[tokio::test]
async fn a_scheduled_run_reads_searches_books_once_and_reports_every_step() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 12).unwrap();
    r.golf.add_slot(slot(701, day, 8, 10));
    r.golf.add_slot(slot(702, day, 9, 30));
    model.script([
        FakeTurn::tool_call("golf_get_reservations", json!({"course": "birdsfoot"})),
        FakeTurn::tool_call("get_weather_forecast", json!({"course": "birdsfoot", "days": 2})),
        FakeTurn::tool_call(
            "golf_search_tee_times",
            json!({"course": "birdsfoot", "date": "2026-12-12", "window_start": "08:00", "window_end": "10:00", "players": 4}),
        )
        .with_text("No reservation that day, and the forecast is dry."),
        FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 701, "players": 4})),
        FakeTurn::text("Booked Birdsfoot, Sat 12 Dec 08:10, 4 players."),
    ]);
    let (s, schedule) = r
        .t
        .post_json(
            "/api/schedules",
            json!({
                "name": "saturday golf",
                "schedule_expression": "cron(0 18 ? * FRI *)",
                "timezone": "America/New_York",
                "target_type": "agent",
                "target": {"prompt": "If Saturday morning looks dry at Birdsfoot, book the earliest tee time between 8 and 10 for four, and tell me.", "course": "birdsfoot", "players": 4, "auto_book": true},
            }),
        )
        .await;
    assert_eq!(s, 201, "{schedule}");
    let sid = schedule["id"].as_str().unwrap();
    let (s, fired) = r.t.post_json(&format!("/api/schedules/{sid}/run"), json!({})).await;
    assert_eq!(s, 202, "{fired}");

    let run_id = loop {
        let (_, page) = r.t.get_json(&format!("/api/agent/runs?schedule_id={sid}")).await;
        if let Some(id) = page["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let run = wait_run(&r, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["answer"], "Booked Birdsfoot, Sat 12 Dec 08:10, 4 players.");
    assert_eq!(run["created_by"], "scheduler");
    assert_eq!(run["schedule_id"], sid);

    // Every step is stored: five model turns with tokens and cost, four tool calls with results.
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 9, "{run}");
    for turn in steps.iter().filter(|s| s["kind"] == "model_turn") {
        assert!(turn["usage"]["input_tokens"].as_u64().unwrap() > 0, "{turn}");
        assert!(turn["cost"].as_u64().unwrap() > 0, "a priced model costs something: {turn}");
        assert_eq!(turn["attempts"], 1);
    }
    let calls = tool_steps(&run);
    let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["golf_get_reservations", "get_weather_forecast", "golf_search_tee_times", "golf_book_tee_time"]);
    for c in &calls {
        assert_eq!(c["outcome"]["is_error"], false, "{c}");
        assert!(c["idempotency_key"].as_str().unwrap().starts_with(&run_id), "{c}");
    }
    assert!(run["cost"].as_u64().unwrap() > 0 && run["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // One reservation, for four, on the earliest slot.
    let booked = r.golf.reservations();
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0].tee_sheet_id, 701);

    // The messages the run recorded are the agent's, and the run links to them.
    let linked = run["messages"].as_array().unwrap();
    assert_eq!(linked.len(), 5, "the run's own message and one per acting tool call: {run}");
    for m in linked.iter().skip(1) {
        let (_, msg) = r.t.get_json(&format!("/api/messages/{}", m["id"].as_str().unwrap())).await;
        assert_eq!(msg["created_by"], "agent", "{msg}");
    }

    // The model was offered the booking tool, and every tool result answered its call.
    let seen = model.requests();
    assert_eq!(seen.len(), 5);
    assert!(seen[0].tool_names().contains(&"golf_book_tee_time"));
    assert!(seen[0].system.contains("birdsfoot"), "the system prompt names the courses");
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    assert!(model.repeated_requests().is_empty());

    // The outcome reached the phone.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !r.t.ntfy.received().iter().any(|p| p.title.as_deref() == Some("rez agent: done")) {
        assert!(tokio::time::Instant::now() < deadline, "no outcome push: {:?}", r.t.ntfy.received());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let push = r.t.ntfy.received().into_iter().find(|p| p.title.as_deref() == Some("rez agent: done")).unwrap();
    assert!(push.message.contains("08:10"), "{push:?}");

    // Spend is reported per model.
    let (_, usage) = r.t.get_json("/api/agent/usage").await;
    assert_eq!(usage["today_total"]["calls"], 5, "{usage}");
    assert_eq!(usage["by_model"][0]["model"], "claude-sonnet-4-5");
    assert_eq!(usage["today_total"]["cost_nanodollars"], run["cost"]);
    r.t.stop().await;
}

#[tokio::test]
async fn without_auto_book_the_booking_tool_is_neither_offered_nor_run() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    let day = NaiveDate::from_ymd_opt(2026, 12, 12).unwrap();
    r.golf.add_slot(slot(711, day, 8, 10));
    model.script([
        FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 711, "players": 2})),
        FakeTurn::text("I can propose 08:10; I may not book it."),
    ]);
    let id = start(&r, json!({"prompt": "Find me a tee time on Saturday at Birdsfoot for two"})).await;
    let run = wait_run(&r, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(r.golf.reservations().is_empty());
    let seen = model.requests();
    assert!(!seen[0].tool_names().contains(&"golf_book_tee_time"));
    assert!(seen[0].system.contains("may not book"));
    let results = seen[1].last_tool_results();
    assert!(results[0].2 && results[0].1.contains("auto_book"), "{results:?}");
    r.t.stop().await;
}

#[tokio::test]
async fn hangs_rate_limits_overload_malformed_and_unknown_calls_are_recovered_from() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[("REZ_AGENT_MODEL_TIMEOUT_SECS", "1")]).await;
    model.script([
        FakeTurn::Hang,
        FakeTurn::rate_limited(1),
        FakeTurn::malformed_tool_call("list_courses", "{\"course\": "),
        FakeTurn::Overloaded,
        FakeTurn::tool_call("book_everything", json!({})),
        FakeTurn::ServerError,
        FakeTurn::tool_call("list_courses", json!({})),
        FakeTurn::text("Birdsfoot and Totteridge."),
    ]);
    let id = start(&r, json!({"prompt": "Which courses do you know?", "notify": false})).await;
    let run = wait_run(&r, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    let turns: Vec<&Value> = run["steps"].as_array().unwrap().iter().filter(|s| s["kind"] == "model_turn").collect();
    let attempts: Vec<u64> = turns.iter().map(|t| t["attempts"].as_u64().unwrap()).collect();
    assert_eq!(
        attempts,
        [3, 2, 2, 1],
        "each fault (a hang past the 1 s timeout, 429, 529, 500) cost one more attempt of the same turn"
    );
    let calls = tool_steps(&run);
    assert_eq!(calls[0]["outcome"]["is_error"], true);
    assert!(calls[0]["outcome"]["text"].as_str().unwrap().contains("not valid JSON"), "{}", calls[0]);
    assert_eq!(calls[1]["outcome"]["is_error"], true);
    assert!(calls[1]["outcome"]["text"].as_str().unwrap().contains("there is no tool `book_everything`"));
    assert_eq!(calls[2]["outcome"]["is_error"], false);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    assert!(r.t.ntfy.received().is_empty(), "notify: false sends nothing");
    r.t.stop().await;
}

#[tokio::test]
async fn max_turns_ends_the_run_with_a_push() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[("REZ_AGENT_MAX_TURNS", "3")]).await;
    model.set_default_turn(FakeTurn::tool_call("list_courses", json!({})));
    let id = start(&r, json!({"prompt": "Keep looking"})).await;
    let run = wait_run(&r, &id).await;
    assert_eq!(run["status"], "max_turns", "{run}");
    assert_eq!(run["turns"], 3);
    assert_eq!(model.requests().len(), 3);
    assert!(r.t.ntfy.wait_for(1, WAIT).await);
    assert!(r.t.ntfy.received()[0].title.as_deref().unwrap().contains("stopped"));
    r.t.stop().await;
}

#[tokio::test]
async fn a_refused_key_fails_the_run_at_once_saying_what_to_fix() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    model.expect_key("sk-ant-another-key");
    let id = start(&r, json!({"prompt": "hello"})).await;
    let run = wait_run(&r, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap().contains("REZ_ANTHROPIC_API_KEY"), "{run}");
    assert_eq!(model.attempts(), 1, "a refused key is not retried");
    assert!(!run.to_string().contains(KEY), "the key never shows");
    r.t.stop().await;
}

#[tokio::test]
async fn chat_carries_the_session_history_and_streams_steps() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    model.script([FakeTurn::text("Hello! How can I help?")]);
    let (s, first) = r.t.post_json("/api/agent/chat", json!({"message": "Hi, I'm Sam"})).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["message"], "Hello! How can I help?");
    let session = first["session_id"].as_str().unwrap().to_owned();

    model.script([
        FakeTurn::tool_call("list_courses", json!({})),
        FakeTurn::text("You told me you are Sam. I know Birdsfoot."),
    ]);
    let resp =
        r.t.http
            .post(r.t.url("/api/agent/chat"))
            .bearer_auth(ADMIN_KEY)
            .header("accept", "text/event-stream")
            .json(&json!({"session_id": session, "message": "Who am I, and which courses do you know?"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let body = resp.text().await.unwrap();
    assert_eq!(body.matches("event: step").count(), 3, "two model turns and the tool call's result: {body}");
    assert!(body.contains("event: done") && body.contains("You told me you are Sam"), "{body}");

    let seen = model.requests();
    let second = &seen[1];
    let texts: Vec<String> = second.messages.iter().map(|m| m.text()).collect();
    assert_eq!(texts[..3], ["Hi, I'm Sam", "Hello! How can I help?", "Who am I, and which courses do you know?"]);
    let (_, stored) = r.t.get_json(&format!("/api/agent/sessions/{session}")).await;
    assert_eq!(stored["exchanges"].as_array().unwrap().len(), 2, "{stored}");
    assert!(r.t.ntfy.received().is_empty(), "chat answers in the response, not by push");
    r.t.stop().await;
}

#[tokio::test]
async fn twenty_runs_at_once_never_spend_past_the_daily_cap() {
    let model = FakeModel::start().await;
    // Input is free and output costs $1 per million tokens: each call reserves exactly
    // max_tokens (4,096) × $0.000001, and the fake reports that much used. The cap fits 5.
    let mut r = rig(
        &model,
        &[
            ("REZ_AGENT_MODEL", "test-model"),
            ("REZ_AGENT_PRICE", "test-model=0,1,0,0"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "0.02048"),
            ("REZ_AGENT_CONCURRENCY", "20"),
        ],
    )
    .await;
    model.set_latency(Duration::from_millis(200));
    model.set_default_turn(FakeTurn::text("done").with_usage(Usage { output_tokens: 4096, ..Usage::default() }));
    let mut ids = vec![];
    for i in 0..20 {
        ids.push(start(&r, json!({"prompt": format!("task number {i:02}")})).await);
    }
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let run = wait_run(&r, id).await;
        *outcomes.entry(run["status"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(outcomes.get("completed"), Some(&5), "{outcomes:?}");
    assert_eq!(outcomes.get("budget_exceeded"), Some(&15), "{outcomes:?}");
    let (_, usage) = r.t.get_json("/api/agent/usage").await;
    assert_eq!(usage["today_total"]["cost_nanodollars"], 20_480_000, "{usage}");
    assert!(usage["today_committed_usd"].as_f64().unwrap() <= 0.02048, "{usage}");
    assert_eq!(model.requests().len(), 5, "no call was made past the cap");
    let budget_pushes =
        r.t.ntfy.received().iter().filter(|p| p.title.as_deref() == Some("rez agent: budget reached")).count();
    assert!(budget_pushes <= 15);
    r.t.stop().await;
}

#[tokio::test]
async fn a_running_run_is_cancelled_before_its_next_step() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    model.set_latency(Duration::from_millis(600));
    model.set_default_turn(FakeTurn::tool_call("list_courses", json!({})));
    let id = start(&r, json!({"prompt": "Keep looking", "notify": false})).await;
    while model.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, body) = r.t.post_json(&format!("/api/agent/runs/{id}/cancel"), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let run = wait_run(&r, &id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(run["turns"].as_u64().unwrap() <= 2);
    let (s, again) = r.t.post_json(&format!("/api/agent/runs/{id}/cancel"), json!({})).await;
    assert_eq!((s, again["error"]["code"].as_str()), (409, Some("run_ended")));
    r.t.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_field_named() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    for (body, field) in [
        (json!({}), "prompt"),
        (json!({"prompt": "x", "players": 9}), "players"),
        (json!({"prompt": "x", "url": "http://169.254.169.254/"}), "url"),
    ] {
        let (s, e) = r.t.post_json("/api/agent/runs", body).await;
        assert_eq!((s, e["error"]["details"]["field"].as_str()), (400, Some(field)), "{e}");
    }
    let (s, _) = r.t.get_json("/api/agent/runs/run_nope").await;
    assert_eq!(s, 400);
    let (s, _) = r.t.get_json("/api/agent/runs/run_01JZ0000000000000000000000").await;
    assert_eq!(s, 404);
    let (s, e) = r.t.get_json("/api/agent/runs?status=sleeping").await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    r.t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_starts_a_run_follows_its_steps_and_reports_spend() {
    let model = FakeModel::start().await;
    let mut r = rig(&model, &[]).await;
    model.script([FakeTurn::tool_call("list_courses", json!({})), FakeTurn::text("Birdsfoot and Totteridge.")]);
    let rez = |args: &[&str]| {
        let base = model.anthropic_base_url();
        let dir = r.t.dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_rez"))
                .args(&args)
                .env("REZ_DATA_DIR", dir)
                .env("REZ_AGENT_PROVIDER", "anthropic")
                .env("REZ_ANTHROPIC_API_KEY", KEY)
                .env("REZ_ANTHROPIC_BASE_URL", base)
                .output()
                .expect("rez")
        })
    };
    let out = rez(&["agent", "run", "Which courses do you know?", "--no-notify", "--wait"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("→ list_courses"), "each tool call is shown as it starts: {stdout}");
    assert!(stdout.contains("← list_courses"), "and as it ends: {stdout}");
    assert!(stdout.contains("completed — Birdsfoot and Totteridge."), "{stdout}");

    let out = rez(&["agent", "usage", "--json"]).await.unwrap();
    let usage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(usage["today_total"]["calls"], 2, "{usage}");
    let out = rez(&["agent", "runs", "list", "--json"]).await.unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs["items"][0]["created_by"], "cli");
    let bad = rez(&["agent", "run", "x", "--players", "7"]).await.unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("players"));
    r.t.stop().await;
}

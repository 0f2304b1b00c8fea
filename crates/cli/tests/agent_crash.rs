//! A run survives `kill -9` at its worst moment: the real `rez serve` binary is killed
//! right after the booking tool's reserve reached cps.golf and before the tool's result
//! was stored. After a restart on the same data directory the run resumes — the tool call
//! is executed again with its stored idempotency key, so it is the same message and the
//! same booking — and completes with exactly one reservation, while the model is never
//! asked again for a step it had already answered.

mod common;

use std::process::Stdio;
use std::time::Duration;

use chrono::NaiveDate;
use rez_core::ports::{SecretStore, SecretValue};
use rez_testkit::golf::{FAKE_PASSWORD, FAKE_USERNAME, FakeCpsGolf, FakeSlot, GolfFault, GolfStep};
use rez_testkit::model::{FakeModel, FakeTurn};
use rez_testkit::ntfy::FakeNtfy;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const KEY: &str = "agent-crash-admin-key-0123456789";
const MODEL_KEY: &str = "sk-ant-crash-test";

struct World {
    model: FakeModel,
    golf: FakeCpsGolf,
    ntfy: FakeNtfy,
    dir: tempfile::TempDir,
}

async fn spawn(w: &World) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rez"))
        .arg("serve")
        .env("REZ_DATA_DIR", w.dir.path())
        .env("REZ_BIND", "127.0.0.1:0")
        .env("REZ_API_KEY", KEY)
        .env("REZ_NTFY_URL", w.ntfy.topic_url("agent"))
        .env("REZ_OUTBOUND_ALLOW_LOOPBACK", "true")
        .env("REZ_COURSES_FILE", w.dir.path().join("courses.yaml"))
        .env("REZ_RETRY_BACKOFF_MS", "100")
        .env("REZ_GOLF_REQUEST_TIMEOUT_SECS", "2")
        .env("REZ_GOLF_LEASE_SECS", "3")
        .env("REZ_GOLF_VERIFY_SCHEDULE", "1,2,4,8")
        .env("REZ_GOLF_VERIFY_MAX_WAIT_SECS", "0.5")
        .envs(common::agent_env(&w.model, MODEL_KEY))
        .env("REZ_AGENT_LEASE_SECS", "3")
        .env("REZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rez");
    let url = common::listening_url(child.stdout.take().expect("stdout")).await;
    (child, url)
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).bearer_auth(KEY).send().await.expect("get").json().await.expect("json")
}

/// The fakes, the data directory with the course credentials, and one slot whose reserve
/// is carried out and then loses its answer.
async fn world() -> World {
    let w = World {
        model: FakeModel::start().await,
        golf: FakeCpsGolf::start().await,
        ntfy: FakeNtfy::start().await,
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(w.dir.path().join("courses.yaml"), w.golf.courses_yaml()).unwrap();
    {
        // The course credentials, in the secret store the server will open.
        let env = [("REZ_DATA_DIR", w.dir.path().to_string_lossy().into_owned())];
        let config =
            rez_cli::config::Config::load_from(None, |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .unwrap();
        let store = rez_cli::wiring::open_store(&config).unwrap();
        let creds = json!({"username": FAKE_USERNAME, "password": FAKE_PASSWORD}).to_string();
        store.put_secret("golf/birdsfoot", &SecretValue::new(creds)).await.unwrap();
    }
    let day = NaiveDate::from_ymd_opt(2026, 12, 12).unwrap();
    w.golf.add_slot(FakeSlot::new(801, day.and_hms_opt(8, 10, 0).unwrap()));
    // The reserve is carried out, then the connection drops: the booking's outcome is
    // uncertain, so its web action keeps looking for the reservation — the kill lands there.
    w.golf.fail_times(GolfStep::Reserve, GolfFault::DropAfter, 1);
    w
}

/// Kill `child` the moment a reservation exists at the course.
async fn kill_once_booked(w: &World, mut child: Child) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.golf.reservations().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the booking never reached the course");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
}

async fn wait_ended(http: &reqwest::Client, url: &str, run_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = get(http, &format!("{url}/api/agent/runs/{run_id}")).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running" | "awaiting_approval")) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not finish after the restart: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_between_the_reserve_and_its_stored_result_books_once() {
    let w = world().await;
    w.model.script([
        FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 801, "players": 2})),
        FakeTurn::text("Booked Birdsfoot at 08:10 for two."),
    ]);

    let http = reqwest::Client::new();
    let (child, url) = spawn(&w).await;
    let r = http
        .post(format!("{url}/api/agent/runs"))
        .bearer_auth(KEY)
        .json(&json!({"prompt": "Book 08:10 on Saturday at Birdsfoot for two", "auto_book": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let run_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // Kill the moment the reservation exists at the course.
    kill_once_booked(&w, child).await;
    let requests_before = w.model.requests().len();
    assert_eq!(requests_before, 1, "the crash came before the model's second turn");

    // The run's record at the moment of the crash: the tool call started, no result.
    let (mut child, url) = spawn(&w).await;
    let detail = get(&http, &format!("{url}/api/agent/runs/{run_id}")).await;
    let call = detail["steps"].as_array().unwrap().iter().find(|s| s["kind"] == "tool_call").cloned();
    if let Some(call) = &call {
        assert!(call["outcome"].is_null(), "the kill landed before the result was stored: {call}");
    }

    let run = wait_ended(&http, &url, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(w.golf.reservations().len(), 1, "exactly one reservation: {:?}", w.golf.reservations());
    assert_eq!(w.golf.count(GolfStep::Reserve), 1, "no second reserve call");
    let calls: Vec<&Value> = run["steps"].as_array().unwrap().iter().filter(|s| s["kind"] == "tool_call").collect();
    assert_eq!(calls.len(), 1, "{run}");
    assert_eq!(calls[0]["outcome"]["is_error"], false, "{run}");
    assert_eq!(w.model.requests().len(), 2, "one request per model turn, none repeated");
    assert!(w.model.repeated_requests().is_empty(), "{:?}", w.model.repeated_requests());
    assert!(w.model.violations().is_empty(), "{:?}", w.model.violations());
    child.start_kill().ok();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_after_an_approval_and_before_the_booking_is_stored_books_once() {
    let w = world().await;
    w.model.script([
        FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 801, "players": 2})),
        FakeTurn::text("Booked."),
    ]);
    let http = reqwest::Client::new();
    let (child, url) = spawn(&w).await;
    let body = json!({"prompt": "Book 08:10 on Saturday for two", "approval": "required"});
    let run: Value = http
        .post(format!("{url}/api/agent/runs"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let approval = loop {
        let page = get(&http, &format!("{url}/api/approvals?run_id={run_id}")).await;
        if let Some(id) = page["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no approval was asked for");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(w.golf.reservations().is_empty(), "nothing is booked before the approval");
    let r = http.post(format!("{url}/api/approvals/{approval}/approve")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    kill_once_booked(&w, child).await;

    let (mut child, url) = spawn(&w).await;
    let run = wait_ended(&http, &url, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(w.golf.reservations().len(), 1, "exactly one reservation: {:?}", w.golf.reservations());
    assert_eq!(w.golf.count(GolfStep::Reserve), 1, "no second reserve call");
    assert!(w.model.repeated_requests().is_empty(), "{:?}", w.model.repeated_requests());
    child.start_kill().ok();
    let _ = child.wait().await;
}

//! What the real binary writes to its logs when they go to a pipe (a file, journald, a
//! log shipper): plain text without terminal colour codes, and never a secret.

mod common;

use std::process::Stdio;
use std::time::Duration;

use rez_testkit::ntfy::FakeNtfy;
use serde_json::{Value, json};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Run `rez serve` with `env` until it listens, make `work` happen against its URL, stop
/// it, and return its stderr.
async fn serve_and_collect_logs<F, Fut>(env: &[(&str, String)], work: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rez"));
    cmd.arg("serve").env_remove("REZ_CONFIG").env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().expect("spawn rez serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let collected = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });
    let url = common::listening_url(child.stdout.take().expect("stdout")).await;
    work(url).await;
    // SIGTERM: a graceful stop, so the shutdown lines are logged too.
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    collected.await.expect("stderr reader")
}

#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let logs = serve_and_collect_logs(
        &[
            ("REZ_DATA_DIR", dir.path().to_string_lossy().into_owned()),
            ("REZ_BIND", "127.0.0.1:0".into()),
            ("REZ_LOG", "info".into()),
            ("REZ_LOG_FORMAT", "text".into()),
        ],
        |_| async {},
    )
    .await;
    assert!(logs.contains("INFO"), "the server logged at info: {logs}");
    assert!(!logs.contains('\u{1b}'), "terminal escape codes in piped logs: {logs:?}");
}

const ADMIN_KEY: &str = "admin-key-S3CRET-0123456789abcdef";
const NTFY_TOKEN: &str = "tk_S3CRETntfytoken0123456789";
const TOPIC: &str = "topic-S3CRET-a1b2c3d4e5";
const NTFY_PASSWORD: &str = "ntfy-password-S3CRET-987";
const MASTER_KEY: &str = "c2VjcmV0LW1hc3Rlci1rZXktUzNDUkVULTEyMzQ1Njc=";
const GOLF_PASSWORD: &str = "golf-password-S3CRET-555";

fn secrets() -> [&'static str; 6] {
    [ADMIN_KEY, NTFY_TOKEN, TOPIC, NTFY_PASSWORD, MASTER_KEY, GOLF_PASSWORD]
}

fn env_with_every_secret(dir: &std::path::Path, ntfy: &FakeNtfy, format: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REZ_DATA_DIR", dir.to_string_lossy().into_owned()),
        ("REZ_BIND", "127.0.0.1:0".into()),
        ("REZ_LOG", "debug".into()),
        ("REZ_LOG_FORMAT", format.into()),
        ("REZ_API_KEY", ADMIN_KEY.into()),
        ("REZ_NTFY_URL", ntfy.topic_url(TOPIC)),
        ("REZ_NTFY_TOKEN", NTFY_TOKEN.into()),
        ("REZ_MASTER_KEY", MASTER_KEY.into()),
        ("REZ_SECRET_GOLF_BIRDSFOOT", json!({"username": "golfer", "password": GOLF_PASSWORD}).to_string()),
        ("REZ_OUTBOUND_ALLOW_LOOPBACK", "true".into()),
        ("REZ_RETRY_BACKOFF_MS", "50".into()),
    ]
}

async fn wait_status(http: &reqwest::Client, url: &str, id: &str, want: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m: Value = http
            .get(format!("{url}/api/messages/{id}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if want.contains(&m["status"].as_str().unwrap_or("")) || tokio::time::Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start-up, a notification, a failing notification, a refused key, a golf action that
/// reads the stored credentials, shutdown and `rez config check` (also with ntfy basic
/// auth), in text and JSON logs at debug: no configured secret appears anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    for format in ["text", "json"] {
        let ntfy = FakeNtfy::start().await;
        ntfy.require_token(NTFY_TOKEN);
        ntfy.fail_when_body_contains("please-fail", 400);
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_every_secret(dir.path(), &ntfy, format);
        let session_seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = session_seen.clone();
        let logs = serve_and_collect_logs(&env, |url| async move {
            let session_seen = seen;
            let http = reqwest::Client::new();
            let send = |text: &str| {
                http.post(format!("{url}/api/messages"))
                    .bearer_auth(ADMIN_KEY)
                    .json(&json!({"message_type": "notify", "payload": {"message": text}}))
                    .send()
            };
            let ok: Value = send("hello").await.expect("send").json().await.expect("json");
            let failing: Value = send("please-fail").await.expect("send").json().await.expect("json");
            let m = wait_status(&http, &url, ok["id"].as_str().expect("id"), &["completed"]).await;
            assert_eq!(m["status"], "completed", "{m}");
            let m = wait_status(&http, &url, failing["id"].as_str().expect("id"), &["failed", "dead_lettered"]).await;
            assert!(m["status"] == "failed" || m["status"] == "dead_lettered", "{m}");
            // A wrong key, and a golf action that loads the credentials (it fails: no course site).
            let r = http.get(format!("{url}/api/messages")).bearer_auth("rez_wrong_key").send().await.expect("get");
            assert_eq!(r.status().as_u16(), 401);
            let golf: Value = http
                .post(format!("{url}/api/messages"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"message_type": "web_action",
                    "payload": {"action": "golf", "course": "birdsfoot"},
                    "arguments": {"operation": "get_reservations"}}))
                .send()
                .await
                .expect("golf")
                .json()
                .await
                .expect("json");
            if let Some(id) = golf["id"].as_str() {
                wait_status(&http, &url, id, &["completed", "failed", "dead_lettered"]).await;
            }
            // An MCP session: its id is not logged either.
            let r = http
                .post(format!("{url}/mcp"))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
                .send()
                .await
                .expect("initialize");
            let session = r.headers()["mcp-session-id"].to_str().expect("session id").to_owned();
            let _ = r.text().await;
            *session_seen.lock().expect("lock") = session;
        })
        .await;
        let session = session_seen.lock().expect("lock").clone();
        let bare = session.rsplit_once('_').map(|(s, _)| s.to_owned()).unwrap_or_default();
        assert!(!bare.is_empty() && !logs.contains(&bare), "{format} logs contain the MCP session id: {logs}");
        assert!(ntfy.count() >= 1, "the notification was pushed");
        assert!(logs.contains("REZ_NTFY_URL uses plain http"), "{format}: start-up warns about http: {logs}");
        assert!(logs.lines().count() > 10, "{format}: the run logged: {logs}");

        let mut check = String::new();
        for extra in [
            vec![],
            vec![
                ("REZ_NTFY_TOKEN", String::new()),
                ("REZ_NTFY_USER", "me".into()),
                ("REZ_NTFY_PASSWORD", NTFY_PASSWORD.into()),
            ],
        ] {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rez"));
            cmd.args(["config", "check"]).env_remove("REZ_CONFIG");
            for (k, v) in env.iter().chain(extra.iter()) {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("config check");
            check.push_str(&String::from_utf8_lossy(&out.stdout));
            check.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        assert!(check.contains("REZ_OUTBOUND_ALLOW_LOOPBACK"), "config check ran: {check}");
        for secret in secrets() {
            assert!(!logs.contains(secret), "{format} logs contain {secret}: {logs}");
            assert!(!check.contains(secret), "config check ({format}) shows {secret}: {check}");
        }
    }
}

//! Crash test: run the real `rez serve` binary, post notifications concurrently, `kill
//! -9` it mid-load, restart it on the same data directory, and check that every message
//! that got a 2xx is eventually delivered (or dead-lettered). Nothing accepted is lost;
//! a push can repeat only in the window between ntfy's answer and its record, and such a
//! repeat carries the message's sequence id, so the phone shows every message once: the
//! test counts what the phone would show (no duplicates) and reports the raw publishes.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rez_testkit::ntfy::FakeNtfy;
use tokio::process::{Child, Command};

const KEY: &str = "crash-test-admin-key-0123456789";

async fn spawn(dir: &std::path::Path, ntfy: &FakeNtfy) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rez"))
        .arg("serve")
        .env("REZ_DATA_DIR", dir)
        .env("REZ_BIND", "127.0.0.1:0")
        .env("REZ_API_KEY", KEY)
        .env("REZ_NTFY_URL", ntfy.topic_url("crash"))
        .env("REZ_OUTBOUND_ALLOW_LOOPBACK", "true")
        .env("REZ_RETRY_BACKOFF_MS", "100")
        .env("REZ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rez");
    let url = common::listening_url(child.stdout.take().expect("stdout")).await;
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_under_load_loses_nothing() {
    let ntfy = FakeNtfy::start().await;
    // A little latency at the push server keeps deliveries in flight when the kill lands.
    ntfy.set_delay(Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn(dir.path(), &ntfy).await;

    let accepted: Arc<Mutex<HashMap<String, String>>> = Arc::default(); // text -> id
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let http = reqwest::Client::new();
    let mut senders = Vec::new();
    for worker in 0..8 {
        let (http, url, accepted, stop) = (http.clone(), url.clone(), accepted.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5000 {
                let text = format!("crash-{worker}-{n}");
                n += 1;
                let body = serde_json::json!({"message_type": "notify", "payload": {"message": text}});
                let r = http.post(format!("{url}/api/messages")).bearer_auth(KEY).json(&body).send().await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            // The process died after answering 2xx headers but mid-body: we
                            // cannot know the id, but the text is unique, so count it.
                            Err(_) => serde_json::Value::Null,
                        };
                        let id = v["id"].as_str().unwrap_or("?").to_owned();
                        accepted.lock().unwrap().insert(text, id);
                    }
                    Ok(_) => {}
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let load build up, then kill -9 mid-flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().expect("kill -9");
    let _ = child.wait().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    let delivered_before = ntfy.count();
    assert!(accepted.len() > 100, "load did not build up: {} accepted", accepted.len());

    // Restart on the same data directory.
    let (mut child, url) = spawn(dir.path(), &ntfy).await;
    let want: HashSet<&String> = accepted.keys().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut missing: Vec<&String> = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let got: HashSet<String> = ntfy.received().into_iter().map(|p| p.message).collect();
        missing = want.iter().filter(|t| !got.contains(t.as_str())).copied().collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything not pushed must at least be accounted for as dead-lettered.
    let mut dead = 0;
    if !missing.is_empty() {
        let r = reqwest::Client::new().get(format!("{url}/api/dlq?limit=100")).bearer_auth(KEY).send().await.unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        let dlq: HashSet<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["message"]["payload"]["message"].as_str().map(str::to_owned))
            .collect();
        dead = missing.iter().filter(|t| dlq.contains(t.as_str())).count();
        missing.retain(|t| !dlq.contains(t.as_str()));
    }
    let received = ntfy.received();
    let repeats = |pushes: &[rez_testkit::ntfy::ReceivedPush]| -> usize {
        let mut per_text: HashMap<&str, usize> = HashMap::new();
        for p in pushes {
            *per_text.entry(p.message.as_str()).or_default() += 1;
        }
        per_text.values().filter(|&&c| c > 1).map(|c| c - 1).sum()
    };
    let duplicate_publishes = repeats(&received);
    let on_phone = ntfy.on_phone();
    let duplicates_on_phone = repeats(&on_phone);
    // Every publish carries its message's id as the sequence id.
    let wrong_sequence: Vec<(String, Option<String>)> = received
        .iter()
        .filter(|p| match accepted.get(&p.message) {
            Some(id) if id != "?" => p.sequence_id.as_deref() != Some(id.as_str()),
            _ => !p.sequence_id.as_deref().is_some_and(|s| s.starts_with("msg_")),
        })
        .map(|p| (p.message.clone(), p.sequence_id.clone()))
        .collect();
    println!(
        "crash test: accepted={} delivered_before_kill={} publishes={} dead_lettered={} lost={} duplicate_publishes={} shown_on_phone={} duplicates_on_phone={}",
        accepted.len(),
        delivered_before,
        received.len(),
        dead,
        missing.len(),
        duplicate_publishes,
        on_phone.len(),
        duplicates_on_phone
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(missing.is_empty(), "accepted but never delivered: {:?}", &missing[..missing.len().min(10)]);
    assert!(
        wrong_sequence.is_empty(),
        "publishes without their message's sequence id: {:?}",
        &wrong_sequence[..wrong_sequence.len().min(10)]
    );
    // A repeated publish replaces the first on the phone.
    assert_eq!(duplicates_on_phone, 0, "the phone shows {duplicates_on_phone} notifications twice");
    // Only pushes in flight at the kill can repeat; there are at most as many as workers.
    assert!(duplicate_publishes <= 64, "{duplicate_publishes} repeated publishes exceed the in-flight bound");
}

//! Dashboard page render times with 100,000 messages stored (not a test).
//!
//! `cargo run --release -p rez-cli --example bench_dashboard [N]`: stores N messages
//! (default 100,000) created over the last 24 hours — notifications, one in a hundred
//! failing for good, so the dead-letter queue holds some — through the store's own
//! submit path, lets `rez serve` (in process, no push server: the inbox is the
//! destination) work through them, then signs in and times each page over loopback,
//! 50 requests a page, printing p50/p99/max in milliseconds; then the chart's full
//! 23-hour aggregate, which the overview runs in the background at most once a minute.

use std::time::{Duration, Instant};

use rez_core::Stage;
use rez_core::message::{CreatedBy, Message, NewMessage};
use rez_core::ports::{FailureKind, MessageStore, Queues};
use rez_core::routing::QueueName;
use serde_json::json;

const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const ROUNDS: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let env = [
        ("REZ_DATA_DIR", dir.path().to_string_lossy().into_owned()),
        ("REZ_BIND", "127.0.0.1:0".to_owned()),
        ("REZ_API_KEY", ADMIN_KEY.to_owned()),
        ("REZ_RETRY_BACKOFF_MS", "10".to_owned()),
    ];
    let config =
        rez_cli::config::Config::load_from(None, |k| env.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()))?;

    // Stored before the server starts, created evenly over the last 24 hours.
    let store = rez_cli::wiring::open_store(&config)?;
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 64;
    for w in 0..workers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (w..n).step_by(workers) {
                let at = now - chrono::TimeDelta::milliseconds((86_400_000 / n as i64) * (n - i) as i64);
                let body = json!({"message_type": "notify", "payload": {"message": format!("bench message {i}")}});
                let new = NewMessage::from_json(&body, Stage::Dev).expect("valid");
                store.submit(Message::create(new, CreatedBy::Cli, at)).await.expect("submit");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    println!("stored {n} messages in {:.1} s", started.elapsed().as_secs_f64());
    // One in a hundred dead-lettered (a permanent failure), with its reason.
    let mut dead = 0;
    while dead < n / 100 {
        let got = store.receive(QueueName::Notifications, 10, Duration::from_secs(60)).await?;
        if got.is_empty() {
            break;
        }
        for d in got {
            store.fail(&d, "bench: the push server refused it", FailureKind::Permanent).await?;
            dead += 1;
        }
    }
    drop(store);

    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let server = rez_cli::serve::Server::start(config, listener).await?;
    let base = format!("http://{}", server.addr);
    let drained = Instant::now();
    loop {
        let stats = server.services.queues.stats().await?;
        if stats.iter().all(|q| q.depth == 0 && q.in_flight == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("rez serve delivered them in {:.1} s", drained.elapsed().as_secs_f64());

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let r = http
        .post(format!("{base}/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN_KEY}"))
        .send()
        .await?;
    let cookie = r.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or_default().to_owned();
    let page: serde_json::Value =
        http.get(format!("{base}/api/messages?limit=1")).bearer_auth(ADMIN_KEY).send().await?.json().await?;
    let message = page["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let cursor = http
        .get(format!("{base}/api/messages?limit=100"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pages = [
        ("overview", "/".to_owned()),
        ("messages", "/messages".to_owned()),
        ("messages, next page", format!("/messages?cursor={cursor}")),
        ("messages, status=dead_lettered", "/messages?status=dead_lettered".to_owned()),
        ("messages, type=web_action (none)", "/messages?message_type=web_action".to_owned()),
        ("message", format!("/messages/{message}")),
        ("schedules", "/schedules".to_owned()),
        ("dead letters", "/dead-letters".to_owned()),
        ("notifications", "/notifications".to_owned()),
        ("keys", "/keys".to_owned()),
        ("agent runs", "/agent/runs".to_owned()),
    ];
    println!("{:<36} {:>8} {:>8} {:>8}", "page", "p50 ms", "p99 ms", "max ms");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await?;
            anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
            r.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!("{name:<36} {:>8.2} {:>8.2} {:>8.2}", at(0.5), at(0.99), times[times.len() - 1]);
    }
    // The chart's full aggregate, which the overview takes in the background once a minute.
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let since = chrono::Utc::now() - chrono::TimeDelta::hours(23);
        server.services.messages.hourly_outcomes(since, 23).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{:<36} {:>8.2} {:>8.2} {:>8.2}", "(hourly_outcomes over 23 h)", times[5], times[9], times[9]);
    server.shutdown().await?;
    Ok(())
}

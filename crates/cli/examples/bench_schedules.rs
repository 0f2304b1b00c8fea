//! Schedule benchmarks (run by `bench/schedules.sh`; not a test).
//!
//! * `populate DATA_DIR N`: create N active schedules (yearly crons at random instants, so
//!   none is due during the idle measurement) in DATA_DIR/rez.db.
//! * `lateness N`: N `at()` schedules due at the same second; the real engine over the
//!   real SQLite store fires them; lateness = time the firing transaction (message
//!   queued) committed − the scheduled instant. Prints p50/p99/max.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::CreatedBy;
use rez_core::ports::*;
use rez_core::schedule_spec::ScheduleSpec;
use rez_core::schedules::Schedule;
use rez_core::time::Timestamp;
use rez_core::{ScheduleId, Stage};
use rez_local::{LocalStore, QueueConfig};
use rez_runtime::metrics::Metrics;
use rez_runtime::scheduling::Schedules;
use rez_runtime::scheduling::engine::{Engine, EngineConfig, LocalEngine};
use serde_json::json;

fn service(store: Arc<dyn ScheduleStore>) -> Schedules {
    Schedules::new(store, Arc::new(LocalEngine::new()), Arc::new(SystemClock), Arc::new(Metrics::new()))
}

async fn populate(dir: &str, n: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = Arc::new(LocalStore::open(
        &std::path::Path::new(dir).join("rez.db"),
        Arc::new(SystemClock),
        QueueConfig::default(),
    )?);
    let svc = service(store);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per = n.div_ceil(64);
    for w in 0..64 {
        let svc = svc.clone();
        tasks.spawn(async move {
            for i in 0..per {
                let idx = w * per + i;
                if idx >= n {
                    break;
                }
                let (mi, h, d, mo) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..60), rng.random_range(0..24), rng.random_range(1..29), rng.random_range(1..13))
                };
                let spec = ScheduleSpec::from_json(
                    &json!({"name": format!("bench-{idx}"), "schedule_expression": format!("cron({mi} {h} {d} {mo} ? *)"),
                            "timezone": "America/New_York", "target_type": "notify", "target": {"payload": {"message": format!("bench {idx}")}}}),
                    Stage::Dev,
                )
                .expect("spec");
                svc.create(spec, CreatedBy::Cli).await.expect("create");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    println!("populated {n} schedules in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Delegates to SQLite and records when each firing committed.
struct Recording {
    inner: Arc<LocalStore>,
    fired: Mutex<Vec<(Timestamp, Timestamp)>>, // (scheduled, committed)
}

impl Recording {
    /// Record the commit time of every firing that created its message just now.
    fn record(&self, firings: &[Firing], outcomes: &[StoreResult<FireOutcome>]) {
        let committed = chrono::Utc::now();
        let mut fired = self.fired.lock().unwrap();
        for (f, out) in firings.iter().zip(outcomes) {
            if let (Ok(FireOutcome::Applied { message: Some(_), .. }), Some(m)) = (out, f.message.as_ref()) {
                let scheduled =
                    m.arguments["scheduled_time"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                if let Some(s) = scheduled {
                    fired.push((s.with_timezone(&chrono::Utc), committed));
                }
            }
        }
    }
}

#[async_trait]
impl ScheduleStore for Recording {
    async fn insert_schedule(&self, s: &Schedule) -> StoreResult<()> {
        self.inner.insert_schedule(s).await
    }
    async fn get_schedule(&self, id: &ScheduleId) -> StoreResult<Option<Schedule>> {
        self.inner.get_schedule(id).await
    }
    async fn list_schedules(&self, f: &ScheduleFilter) -> StoreResult<Page<Schedule>> {
        self.inner.list_schedules(f).await
    }
    async fn update_schedule(&self, s: &Schedule, v: u64) -> StoreResult<Schedule> {
        self.inner.update_schedule(s, v).await
    }
    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        self.inner.due_schedules(now, limit).await
    }
    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        self.inner.next_due().await
    }
    async fn fire(&self, f: &Firing) -> StoreResult<FireOutcome> {
        let out = self.inner.fire(f).await;
        self.record(std::slice::from_ref(f), std::slice::from_ref(&out));
        out
    }
    async fn fire_many(&self, firings: &[Firing]) -> Vec<StoreResult<FireOutcome>> {
        let out = self.inner.fire_many(firings).await;
        self.record(firings, &out);
        out
    }
    async fn fire_many_after(&self, firings: &[Firing], gate: Gate) -> Vec<StoreResult<FireOutcome>> {
        let out = self.inner.fire_many_after(firings, gate).await;
        self.record(firings, &out);
        out
    }
    async fn acquire_engine_lease(&self, owner: &str, ttl: Duration) -> StoreResult<bool> {
        self.inner.acquire_engine_lease(owner, ttl).await
    }
}

async fn lateness(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = Arc::new(LocalStore::open(&dir.path().join("rez.db"), Arc::new(SystemClock), QueueConfig::default())?);
    let store = Arc::new(Recording { inner: inner.clone(), fired: Mutex::new(Vec::new()) });
    let svc = service(store.clone());
    // All due at the same second, a few seconds from now (enough to create them all even
    // on a busy machine).
    let at = (SystemClock.now() + chrono::Duration::seconds(8)).format("%Y-%m-%dT%H:%M:%S").to_string();
    for i in 0..n {
        let spec = ScheduleSpec::from_json(
            &json!({"name": format!("due-{i}"), "schedule_expression": format!("at({at})"), "target_type": "notify",
                    "target": {"payload": {"message": format!("due {i}")}}}),
            Stage::Dev,
        )
        .expect("spec");
        svc.create(spec, CreatedBy::Cli).await?;
    }
    let engine = LocalEngine::new();
    let token = tokio_util::sync::CancellationToken::new();
    let e = Engine::new(store.clone(), Arc::new(SystemClock), Arc::new(Metrics::new()), EngineConfig::new("bench"));
    let run = tokio::spawn(e.run(engine.waker(), token.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.fired.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    let _ = run.await;
    let mut ms: Vec<f64> = store
        .fired
        .lock()
        .unwrap()
        .iter()
        .map(|(s, c)| (*c - *s).num_microseconds().unwrap_or(0) as f64 / 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    anyhow::ensure!(ms.len() == n, "only {} of {n} fired", ms.len());
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{n} schedules due at the same second: lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (scheduled instant -> message queued)",
        pct(0.50),
        pct(0.99),
        ms[ms.len() - 1]
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["populate", dir, n] => populate(dir, n.parse()?).await,
        ["lateness", n] => lateness(n.parse()?).await,
        _ => anyhow::bail!("usage: bench_schedules populate DATA_DIR N | lateness N"),
    }
}

//! Agent benchmarks (run by `bench/agent.sh`; not a test).
//!
//! * `steps RUNS TURNS`: rez's own time per step. One run at a time is driven in process
//!   over the real SQLite store, tools and budget ledger, against a model that answers at
//!   once without I/O: each turn asks for `list_courses` (a tool with no outside call),
//!   the last answers in text. The model records when each call starts and ends; the time
//!   between one call's end and the next one's start is rez's work for the two steps in
//!   between (storing the model turn and settling its reservation; storing, running and
//!   recording the tool call; reserving and building the next request), so a step's own
//!   wall time is half of each gap. CPU is the process's user+system time over the
//!   measured runs, per step.
//! * `concurrent RUNS TURNS`: RUNS runs started at once through `rez serve` (the API, the
//!   agent queue and its worker pool) against the fake model over HTTP answering at once;
//!   throughput of runs and steps, and that every run completed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rez_core::agent::model::{ContentBlock, ModelError, ModelRequest, ModelResponse, StopReason, Usage};
use rez_core::agent::{AgentRequest, ModelClient};
use rez_core::message::CreatedBy;
use rez_runtime::agent::Agent;
use rez_runtime::agent::start::{RunOrigin, start_run};
use rez_testkit::model::{FakeModel, FakeTurn};
use serde_json::json;

/// Answers at once: a `list_courses` call until the conversation has `turns - 1` tool
/// results, then text. Records each call's start and end.
struct Instant0 {
    turns: usize,
    calls: Mutex<Vec<(Instant, Instant)>>,
}

#[async_trait]
impl ModelClient for Instant0 {
    fn provider(&self) -> &'static str {
        "bench"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let start = Instant::now();
        let answered = request.messages.len() / 2;
        let content = if answered + 1 < self.turns {
            vec![ContentBlock::ToolUse { id: format!("tu_{answered}"), name: "list_courses".into(), input: json!({}) }]
        } else {
            vec![ContentBlock::Text { text: "done".into() }]
        };
        let stop = if answered + 1 < self.turns { StopReason::ToolUse } else { StopReason::EndTurn };
        let usage = Usage { input_tokens: request.size_bytes() / 4, output_tokens: 20, ..Usage::default() };
        let r = ModelResponse { content, stop_reason: stop, usage, model: request.model.clone() };
        let end = Instant::now();
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push((start, end));
        Ok(r)
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn config(dir: &std::path::Path, extra: &[(&str, String)]) -> anyhow::Result<rez_cli::config::Config> {
    let mut env: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    env.extend([
        ("REZ_DATA_DIR".to_owned(), dir.to_string_lossy().into_owned()),
        ("REZ_BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("REZ_API_KEY".to_owned(), "bench-admin-key-0123456789".to_owned()),
        ("REZ_OUTBOUND_ALLOW_LOOPBACK".to_owned(), "true".to_owned()),
        ("REZ_AGENT_PROVIDER".to_owned(), "anthropic".to_owned()),
        ("REZ_AGENT_MODEL".to_owned(), "claude-sonnet-4-5".to_owned()),
        ("REZ_ANTHROPIC_API_KEY".to_owned(), "sk-bench".to_owned()),
        ("REZ_AGENT_DAILY_BUDGET_USD".to_owned(), "1000000".to_owned()),
    ]);
    Ok(rez_cli::config::Config::load_from(None, move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))?)
}

async fn steps(runs: usize, turns: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &[])?;
    let store = rez_cli::wiring::open_store(&config)?;
    let services = rez_cli::wiring::services(&config, &store, Default::default())?;
    let tools = rez_cli::wiring::tools(&config, services.clone())?;
    let mut gaps = Vec::new();
    let mut cpu = 0.0;
    let mut measured_steps = 0usize;
    for i in 0..runs {
        let model = Arc::new(Instant0 { turns, calls: Mutex::new(vec![]) });
        let agent = Agent::new(services.clone(), tools.clone(), Some(model.clone()));
        let req = AgentRequest {
            prompt: format!("benchmark run {i}"),
            course: None,
            players: None,
            auto_book: false,
            notify: false,
            approval: Default::default(),
        };
        let (run, _) = start_run(&services, &req, &RunOrigin::default(), CreatedBy::Cli).await?;
        let cpu0 = cpu_seconds();
        agent.drive(&run.id, false).await.map_err(|e| anyhow::anyhow!("run failed: {e}"))?;
        let used = cpu_seconds() - cpu0;
        // The first runs warm caches and the statement cache; leave them out.
        if i < runs / 10 {
            continue;
        }
        cpu += used;
        measured_steps += 2 * turns - 1;
        let calls = model.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for w in calls.windows(2) {
            gaps.push((w[1].0 - w[0].1).as_secs_f64() * 1000.0 / 2.0);
        }
    }
    gaps.sort_by(f64::total_cmp);
    println!(
        "own wall time per step over {} steps: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        gaps.len() * 2,
        pct(&gaps, 0.5),
        pct(&gaps, 0.99),
        gaps.last().copied().unwrap_or(0.0)
    );
    println!(
        "own CPU per step: {:.3} ms (user+system, {} steps)",
        cpu * 1000.0 / measured_steps as f64,
        measured_steps
    );
    Ok(())
}

async fn concurrent(runs: usize, turns: usize) -> anyhow::Result<()> {
    let model = FakeModel::start().await;
    model.respond_with(move |req| {
        let answered = req.messages.len() / 2;
        if answered + 1 < turns { FakeTurn::tool_call("list_courses", json!({})) } else { FakeTurn::text("done") }
    });
    let dir = tempfile::tempdir()?;
    let config = config(
        dir.path(),
        &[("REZ_ANTHROPIC_BASE_URL", model.anthropic_base_url()), ("REZ_AGENT_CONCURRENCY", runs.min(256).to_string())],
    )?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let server = rez_cli::serve::Server::start(config, listener).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(runs);
    for i in 0..runs {
        let r = http
            .post(format!("{base}/api/agent/runs"))
            .bearer_auth("bench-admin-key-0123456789")
            .json(&json!({"prompt": format!("benchmark run {i}"), "notify": false}))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 202, "start refused: {}", r.status());
        let v: serde_json::Value = r.json().await?;
        ids.push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut completed = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    for id in &ids {
        loop {
            let v: serde_json::Value = http
                .get(format!("{base}/api/agent/runs/{id}"))
                .bearer_auth("bench-admin-key-0123456789")
                .send()
                .await?
                .json()
                .await?;
            match v["status"].as_str() {
                Some("queued" | "running") if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Some("completed") => {
                    completed += 1;
                    break;
                }
                other => anyhow::bail!("run {id} ended {other:?}: {v}"),
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    let steps = runs * (2 * turns - 1);
    println!(
        "{runs} runs at once, {turns} model turns each: {completed}/{runs} completed in {took:.2} s — {:.1} runs/s, {:.0} steps/s; model requests {}",
        runs as f64 / took,
        steps as f64 / took,
        model.requests().len()
    );
    server.shutdown().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n = |i: usize, d: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    match args.get(1).map(String::as_str) {
        Some("steps") => steps(n(2, 200), n(3, 5)).await,
        Some("concurrent") => concurrent(n(2, 100), n(3, 5)).await,
        _ => anyhow::bail!("usage: bench_agent steps [RUNS] [TURNS] | concurrent [RUNS] [TURNS]"),
    }
}

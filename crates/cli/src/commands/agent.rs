//! `rez agent run|runs|chat|usage`. Runs are queued on the data directory like every
//! message and carried out by the `rez serve` on it; `--wait` and `chat` follow the run's
//! stored steps as they appear, so the terminal shows each tool call as it happens.

use std::io::{BufRead, Write};
use std::time::Duration;

use rez_core::agent::model::text_of;
use rez_core::agent::store::RunFilter;
use rez_core::agent::{AgentRequest, AgentRun, RunStatus, Step, StepKind};
use rez_core::id::{ChatSessionId, RunId};
use rez_core::message::CreatedBy;
use rez_runtime::Services;
use rez_runtime::agent::start::{RunOrigin, start_run};
use rez_runtime::agent::{AgentPorts, outcome, usage};
use serde_json::{Map, Value};

/// How long `--wait` and `chat` follow a run before giving up on it (it carries on).
const FOLLOW_FOR: Duration = Duration::from_secs(15 * 60);

fn ports(s: &Services) -> anyhow::Result<&AgentPorts> {
    s.agent.as_ref().ok_or_else(|| anyhow::anyhow!("this data directory has no agent store"))
}

/// What to ask a run.
pub struct RunArgs {
    pub prompt: String,
    pub course: Option<String>,
    pub players: Option<u8>,
    pub auto_book: bool,
    pub no_notify: bool,
    pub wait: bool,
    pub json: bool,
}

fn request(
    prompt: String,
    course: Option<String>,
    players: Option<u8>,
    auto_book: bool,
    notify: bool,
) -> anyhow::Result<AgentRequest> {
    let mut m = Map::new();
    m.insert("prompt".into(), Value::String(prompt));
    if let Some(c) = course {
        m.insert("course".into(), Value::String(c));
    }
    if let Some(p) = players {
        m.insert("players".into(), Value::from(p));
    }
    m.insert("auto_book".into(), Value::Bool(auto_book));
    m.insert("notify".into(), Value::Bool(notify));
    AgentRequest::from_json(&m, "").map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))
}

pub async fn run(s: &Services, args: RunArgs) -> anyhow::Result<()> {
    let req = request(args.prompt, args.course, args.players, args.auto_book, !args.no_notify)?;
    let (run, _) = start_run(s, &req, &RunOrigin::default(), CreatedBy::Cli).await?;
    if !args.wait {
        if args.json {
            return super::print_json(&run);
        }
        println!("queued run {} (follow it with `rez agent runs show {}`)", run.id, run.id);
        return Ok(());
    }
    let run = follow(s, &run.id, !args.json).await?;
    if args.json {
        return super::print_json(&run);
    }
    println!("\n{} — {}", run.status, outcome::reply(&run));
    Ok(())
}

/// Print each step as it is stored until the run ends; answers the ended run.
async fn follow(s: &Services, id: &RunId, print: bool) -> anyhow::Result<AgentRun> {
    let p = ports(s)?;
    let deadline = tokio::time::Instant::now() + FOLLOW_FOR;
    // Per step: 0 not shown, 1 its start shown (a tool call still running), 2 shown whole.
    let mut shown: Vec<u8> = vec![];
    let mut waiting_said = false;
    let began = tokio::time::Instant::now();
    loop {
        let run = p.runs.get_run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} vanished"))?;
        for step in p.runs.steps(id).await? {
            let i = step.index as usize;
            if shown.len() <= i {
                shown.resize(i + 1, 0);
            }
            let complete = !matches!(&step.kind, StepKind::ToolCall(c) if c.outcome.is_none());
            if print {
                if let (StepKind::ToolCall(c), 0) = (&step.kind, shown[i]) {
                    println!("  → {} {}", c.name, c.arguments);
                }
                if complete && shown[i] < 2 {
                    print_step(&step);
                }
            }
            shown[i] = if complete { 2 } else { 1 };
        }
        if run.status.is_final() {
            return Ok(run);
        }
        if print && !waiting_said && run.status == RunStatus::Queued && began.elapsed() > Duration::from_secs(3) {
            eprintln!("(waiting for `rez serve` on this data directory to take the run)");
            waiting_said = true;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("run {id} is still {}; follow it with `rez agent runs show {id}`", run.status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_step(step: &Step) {
    let mut out = std::io::stdout().lock();
    match &step.kind {
        StepKind::ModelTurn(t) => {
            let text = text_of(&t.content);
            if !text.trim().is_empty() {
                let _ = writeln!(out, "  · {}", text.trim());
            }
            let _ = writeln!(
                out,
                "    (model turn {}: {} in / {} out tokens, {}, {} ms)",
                step.index, t.usage.input_tokens, t.usage.output_tokens, t.cost, t.latency_ms
            );
        }
        StepKind::ToolCall(c) => {
            if let Some(o) = &c.outcome {
                let mark = if o.is_error { "✗" } else { "←" };
                let first = o.text.lines().next().unwrap_or("");
                let _ = writeln!(out, "  {mark} {} ({} ms): {first}", c.name, o.duration_ms);
            }
        }
    }
    let _ = out.flush();
}

pub async fn list(s: &Services, status: Option<String>, limit: usize, json: bool) -> anyhow::Result<()> {
    let status =
        status.map(|v| RunStatus::parse(&v).ok_or_else(|| anyhow::anyhow!("unknown status `{v}`"))).transpose()?;
    let page =
        ports(s)?.runs.list_runs(&RunFilter { status, limit: limit.clamp(1, 100), ..Default::default() }).await?;
    if json {
        return super::print_json(&page);
    }
    for r in page.items {
        let prompt: String = r.request.prompt.chars().take(60).collect();
        println!(
            "{}  {:<15} {:>2} turns  {:>11}  {}  {prompt}",
            r.id,
            r.status.as_str(),
            r.turns,
            r.cost.to_string(),
            rez_core::time::rfc3339(&r.created_at),
        );
    }
    Ok(())
}

pub async fn show(s: &Services, id: &str) -> anyhow::Result<()> {
    let id = RunId::parse(id).map_err(|e| anyhow::anyhow!(e.message))?;
    let p = ports(s)?;
    let run = p.runs.get_run(&id).await?.ok_or_else(|| anyhow::anyhow!("no run {id}"))?;
    let steps = p.runs.steps(&id).await?;
    super::print_json(&serde_json::json!({ "run": run, "steps": steps }))
}

/// An interactive chat in the terminal: each line is a turn of one session.
pub async fn chat(s: &Services, session: Option<String>, auto_book: bool) -> anyhow::Result<()> {
    let session = match session {
        Some(raw) => ChatSessionId::parse(&raw).map_err(|e| anyhow::anyhow!(e.message))?,
        None => ChatSessionId::new(s.clock.now()),
    };
    println!("chat session {session} — type a message, or an empty line to end");
    let stdin = std::io::stdin();
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(());
        }
        let req = request(line.trim().to_owned(), None, None, auto_book, false)?;
        let origin = RunOrigin { session_id: Some(session.clone()), ..RunOrigin::default() };
        let (run, _) = start_run(s, &req, &origin, CreatedBy::Cli).await?;
        let run = follow(s, &run.id, true).await?;
        println!("rez> {}", outcome::reply(&run));
    }
}

pub async fn usage(s: &Services, json: bool) -> anyhow::Result<()> {
    let report = usage::report(s, ports(s)?).await?;
    if json {
        return super::print_json(&report);
    }
    let cap = report.daily_budget_usd.map_or_else(|| "no cap".to_owned(), |c| format!("cap ${c:.2}"));
    println!(
        "today ({}, {}): ${:.4} in {} calls ({}); committed ${:.4}",
        report.today,
        report.zone,
        report.today_total.cost_usd,
        report.today_total.calls,
        cap,
        report.today_committed_usd
    );
    println!("last 7 days: ${:.4} in {} calls", report.last_7_days.cost_usd, report.last_7_days.calls);
    for m in &report.by_model {
        println!(
            "  {:<40} ${:>9.4}  {:>5} calls  {:>9} in  {:>8} out  {:>8} cache read  {:>8} cache write",
            m.model,
            m.total.cost_usd,
            m.total.calls,
            m.total.usage.input_tokens,
            m.total.usage.output_tokens,
            m.total.usage.cache_read_tokens,
            m.total.usage.cache_write_tokens
        );
    }
    Ok(())
}

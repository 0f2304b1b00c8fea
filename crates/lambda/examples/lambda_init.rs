//! Benchmark: per function, the time from process start to the first poll of the Runtime
//! API (init) and to the first handled event, for a given `rez-lambda` binary (e.g. the
//! `bootstrap` that `cargo lambda build --release` produces), against the template's
//! resources on moto and a fake Lambda Runtime API.
//!
//! `cargo run --release -p rez-lambda --example lambda_init -- <bootstrap> [runs]`

#[path = "../tests/lambda/common.rs"]
mod common;
#[path = "../tests/lambda/iam.rs"]
#[allow(dead_code)]
mod iam;

use std::time::Instant;

use common::{ADMIN_KEY, Deployment, http_event};
use rez_core::routing::QueueName;
use rez_testkit::FakeLambdaRuntime;
use serde_json::json;

/// The agent function's model settings as the template's defaults set them, with a daily
/// cap (which needs the model's price at start-up). The record names no stored run, so no
/// model is called.
const AGENT_ENV: [(&str, &str); 3] = [
    ("REZ_AGENT_PROVIDER", "bedrock"),
    ("REZ_AGENT_MODEL", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("REZ_AGENT_DAILY_BUDGET_USD", "5"),
];

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = args.first().cloned().unwrap_or_else(|| "target/lambda/rez-lambda/bootstrap".into());
    let runs: usize = args.get(1).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let d = Deployment::new().await;
    println!("binary: {bin} ({:.1} MB)", std::fs::metadata(&bin)?.len() as f64 / 1e6);
    println!("| function | init (start → first poll), median of {runs} | first event handled (start → response) |");
    println!("|---|---|---|");
    for function in ["api", "processor", "webaction", "scheduler", "mcp", "sweeper", "agent"] {
        let mut init = Vec::new();
        let mut first = Vec::new();
        for _ in 0..runs {
            let event = match function {
                "api" => http_event("GET", "/api/messages?limit=1", None, Some(ADMIN_KEY)),
                "mcp" => http_event(
                    "POST",
                    "/mcp",
                    Some(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})),
                    Some(ADMIN_KEY),
                ),
                "sweeper" => json!({"source": "aws.events", "detail": {}}),
                _ => {
                    // A real record: a notify message published through the API path.
                    let queue = match function {
                        "processor" => QueueName::Notifications,
                        "webaction" => QueueName::WebActions,
                        "agent" => QueueName::AgentResponse,
                        _ => QueueName::ScheduleCreation,
                    };
                    let address = d.names.queue(queue).expect("queue");
                    json!({"Records": [{
                        "messageId": "bench", "receiptHandle": "bench", "body": "{\"id\":\"msg_00000000000000000000000000\"}",
                        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                        "eventSource": "aws:sqs", "eventSourceARN": address.arn, "awsRegion": common::REGION}]})
                }
            };
            let runtime = FakeLambdaRuntime::start().await?;
            let mut cmd = tokio::process::Command::new(&bin);
            cmd.env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", runtime.runtime_api())
                .envs(d.env(function))
                .envs(AGENT_ENV.iter().filter(|_| function == "agent").copied())
                .kill_on_drop(true);
            let started = Instant::now();
            let child = cmd.spawn()?;
            let polled = runtime
                .wait_for_first_poll(std::time::Duration::from_secs(30))
                .await
                .ok_or_else(|| anyhow::anyhow!("{function} never polled"))?;
            let answer: Result<_, String> = runtime.invoke(event, common::INVOKE_TIMEOUT).await;
            let done = Instant::now();
            answer.map_err(|e| anyhow::anyhow!("{function}: {e}"))?;
            init.push((polled - started).as_secs_f64() * 1000.0);
            first.push((done - started).as_secs_f64() * 1000.0);
            drop(child);
        }
        println!("| {function} | {:.1} ms | {:.1} ms |", median(&mut init), median(&mut first));
    }
    Ok(())
}

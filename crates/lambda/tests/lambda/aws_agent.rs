//! The agent through the Lambda functions on moto: a run created by the api function
//! travels as an `agent_response` message to the agent queue, and the agent function runs
//! it against the fake model speaking Bedrock Converse (the Bedrock Runtime SDK pointed at
//! it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`), a tool call included, to its answer and its
//! outcome notification. Once as the emulator's administrator, once with IAM enforced,
//! each function under its own role policy from `deploy/template.yaml`.

use crate::common;

use std::time::Duration;

use common::{ADMIN_KEY, Deployment, http_event, http_response};
use rez_core::agent::{AgentStore, BudgetLedger, RunStatus};
use rez_core::id::RunId;
use rez_core::routing::QueueName;
use rez_testkit::{FakeModel, FakeTurn, WireFormat};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

/// The agent's variables, as the template sets them, with the model at the fake.
fn agent_env(model: &FakeModel) -> Vec<(&'static str, String)> {
    vec![
        ("REZ_AGENT_PROVIDER", "bedrock".to_owned()),
        ("REZ_AGENT_MODEL", MODEL.to_owned()),
        ("REZ_AGENT_DAILY_BUDGET_USD", "1".to_owned()),
        ("REZ_AGENT_RETRY_BASE_MS", "20".to_owned()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", model.bedrock_endpoint()),
    ]
}

/// A run from the api function to its answer. `iam`: on the IAM-enforcing emulator, which
/// refuses the signature of an SNS publish whose text holds a space (see `aws_iam.rs`): the
/// prompt has none there, and the outcome notification (whose text has) is not awaited.
async fn run_to_completion(d: &Deployment, iam: bool) {
    let (prompt, answer) = if iam {
        ("Birdsfoot-on-Saturday?", "Open.")
    } else {
        ("Is Birdsfoot open on Saturday?", "Birdsfoot is open on Saturday.")
    };
    let model = FakeModel::start().await;
    model.script([FakeTurn::tool_call("list_courses", json!({})), FakeTurn::text(answer)]);
    let env = agent_env(&model);
    let api = d.start_with("api", &env).await;
    let agent = d.start_with("agent", &env).await;

    let body = json!({"prompt": prompt});
    let (status, created) =
        http_response(&api.invoke(http_event("POST", "/api/agent/runs", Some(&body), Some(ADMIN_KEY))).await);
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "queued", "{created}");
    let id = RunId::parse(created["id"].as_str().expect("run id")).expect("a run id");

    let event = d.receive_event(QueueName::AgentResponse, WAIT).await;
    assert_eq!(event["Records"].as_array().map(Vec::len), Some(1), "{event}");
    let resp = agent.invoke(event).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");

    let run = d.store.get_run(&id).await.unwrap().expect("the run is stored");
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.answer.as_deref(), Some(answer));
    assert_eq!((run.turns, run.steps), (2, 3), "two model turns and the tool call between them");
    let seen = model.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| r.format == WireFormat::Bedrock && r.model == MODEL));
    assert!(seen[0].tool_names().contains(&"list_courses"), "{:?}", seen[0].tool_names());
    assert_eq!(seen[1].last_tool_results().len(), 1, "the tool's result went back to the model");
    assert!(model.violations().is_empty(), "{:?}", model.violations());

    // The spend was reserved and settled on the budget table.
    let day = d.store.day(run.created_at.date_naive()).await.unwrap();
    assert!(day.spent.0 > 0 && day.committed == day.spent, "{day:?}");

    // The api function shows the run with its steps; the outcome went out as a notification.
    let (status, shown) =
        http_response(&api.invoke(http_event("GET", &format!("/api/agent/runs/{id}"), None, Some(ADMIN_KEY))).await);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "completed", "{shown}");
    assert_eq!(shown["steps"].as_array().map(Vec::len), Some(3), "{shown}");
    let (status, listed) =
        http_response(&api.invoke(http_event("GET", "/api/agent/runs?limit=5", None, Some(ADMIN_KEY))).await);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"][0]["id"], Value::String(id.to_string()), "{listed}");
    let (status, usage) =
        http_response(&api.invoke(http_event("GET", "/api/agent/usage", None, Some(ADMIN_KEY))).await);
    assert_eq!(status, 200, "{usage}");
    if !iam {
        let outcome = d.receive_event(QueueName::Notifications, WAIT).await;
        assert_eq!(outcome["Records"].as_array().map(Vec::len), Some(1), "{outcome}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_created_by_the_api_completes_through_the_agent_function() {
    run_to_completion(&Deployment::new().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_under_its_own_policy() {
    run_to_completion(&Deployment::with_iam().await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_is_not_run() {
    let d = Deployment::new().await;
    let model = FakeModel::start().await;
    let env = agent_env(&model);
    let api = d.start_with("api", &env).await;
    let agent = d.start_with("agent", &env).await;
    let body = json!({"prompt": "book something", "notify": false});
    let (_, created) =
        http_response(&api.invoke(http_event("POST", "/api/agent/runs", Some(&body), Some(ADMIN_KEY))).await);
    let id = created["id"].as_str().expect("run id").to_owned();
    let (status, cancelled) = http_response(
        &api.invoke(http_event("POST", &format!("/api/agent/runs/{id}/cancel"), None, Some(ADMIN_KEY))).await,
    );
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let resp = agent.invoke(d.receive_event(QueueName::AgentResponse, WAIT).await).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    assert!(model.requests().is_empty(), "a cancelled run asks the model nothing");
}

/// With `AgentProvider=anthropic` the agent function reads the API key from Secrets
/// Manager under its own policy (no other function may), and sends it to the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_key_is_read_from_secrets_manager_under_the_agent_policy() {
    let d = Deployment::with_iam().await;
    let key = "sk-ant-from-secrets-manager";
    let name = format!("rez-test/{}/agent/anthropic-api-key", ulid::Ulid::new());
    d.clients.secrets.create_secret().name(&name).secret_string(key).send().await.expect("create the key secret");
    let model = FakeModel::start().await;
    model.expect_key(key);
    model.script([FakeTurn::text("Done.")]);
    let env = vec![
        ("REZ_AGENT_PROVIDER", "anthropic".to_owned()),
        ("REZ_AGENT_MODEL", "claude-haiku-4-5".to_owned()),
        ("REZ_ANTHROPIC_BASE_URL", model.anthropic_base_url()),
        ("REZ_ANTHROPIC_KEY_SECRET", name),
    ];
    let api = d.start_with("api", &env).await;
    let agent = d.start_with("agent", &env).await;
    let body = json!({"prompt": "Anything-booked?", "notify": false});
    let (status, created) =
        http_response(&api.invoke(http_event("POST", "/api/agent/runs", Some(&body), Some(ADMIN_KEY))).await);
    assert_eq!(status, 202, "{created}");
    let id = RunId::parse(created["id"].as_str().expect("run id")).expect("a run id");
    let resp = agent.invoke(d.receive_event(QueueName::AgentResponse, WAIT).await).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let run = d.store.get_run(&id).await.unwrap().expect("stored");
    assert_eq!((run.status, run.answer.as_deref()), (RunStatus::Completed, Some("Done.")), "{run:?}");
    let seen = model.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].format, seen[0].credential.as_deref()), (WireFormat::Anthropic, Some(key)));
}

/// Bedrock's throttling is retried (after its `retry-after`) within the run, and a run
/// whose next model call would pass the day's cap ends `budget_exceeded` without the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_a_day_cap_ends_a_run() {
    let d = Deployment::new().await;
    let model = FakeModel::start().await;
    model.script([FakeTurn::rate_limited(1), FakeTurn::text("After a pause.")]);
    let env = agent_env(&model);
    let api = d.start_with("api", &env).await;
    let agent = d.start_with("agent", &env).await;
    let start = |prompt: &str| {
        let body = json!({"prompt": prompt, "notify": false});
        let api = &api;
        async move {
            let (status, created) =
                http_response(&api.invoke(http_event("POST", "/api/agent/runs", Some(&body), Some(ADMIN_KEY))).await);
            assert_eq!(status, 202, "{created}");
            RunId::parse(created["id"].as_str().expect("run id")).expect("a run id")
        }
    };

    let id = start("first").await;
    let resp = agent.invoke(d.receive_event(QueueName::AgentResponse, WAIT).await).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let run = d.store.get_run(&id).await.unwrap().expect("stored");
    assert_eq!((run.status, run.answer.as_deref()), (RunStatus::Completed, Some("After a pause.")), "{run:?}");
    assert_eq!(model.attempts(), 2, "the throttled call and its retry");

    // A cap of a millionth of a dollar fits no call.
    let mut tight = env.clone();
    tight.retain(|(k, _)| *k != "REZ_AGENT_DAILY_BUDGET_USD");
    tight.push(("REZ_AGENT_DAILY_BUDGET_USD", "0.000001".to_owned()));
    let capped = d.start_with("agent", &tight).await;
    let id = start("second").await;
    let resp = capped.invoke(d.receive_event(QueueName::AgentResponse, WAIT).await).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let run = d.store.get_run(&id).await.unwrap().expect("stored");
    assert_eq!(run.status, RunStatus::BudgetExceeded, "{run:?}");
    assert_eq!(model.attempts(), 2, "the refused call was never made");
}

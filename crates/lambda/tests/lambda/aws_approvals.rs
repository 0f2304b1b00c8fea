//! Approvals through the Lambda functions on moto: a run with `approval: required` pauses on
//! its booking (the agent function stores the approval on DynamoDB and pushes the ask with
//! Approve and Decline buttons linking to the HTTP API); the approve link, POSTed to the api
//! function without any key, decides once and queues the run's continuation; the agent
//! function then books through the webaction function exactly once, and the same link again
//! gets 409. Once as the emulator's administrator, once with IAM enforced.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::{ADMIN_KEY, Deployment, Function, http_event, http_response};
use rez_core::agent::{AgentStore, RunStatus};
use rez_core::id::RunId;
use rez_core::ports::{SecretStore, SecretValue};
use rez_core::routing::QueueName;
use rez_testkit::golf::{FAKE_PASSWORD, FAKE_USERNAME, FakeCpsGolf, FakeSlot};
use rez_testkit::{FakeModel, FakeTurn};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
/// The HTTP API's URL, as the template passes it to the agent function.
const PUBLIC: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/";

/// The fake course with one slot, its credentials in Secrets Manager, and the variables
/// of the functions that run the agent and book.
async fn golf_and_env(
    d: &Deployment,
    model: &FakeModel,
    dir: &tempfile::TempDir,
) -> (FakeCpsGolf, Vec<(&'static str, String)>) {
    let golf = FakeCpsGolf::start().await;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 12).unwrap().and_hms_opt(8, 10, 0).unwrap();
    golf.add_slot(FakeSlot::new(901, start));
    let courses = dir.path().join("courses.yaml");
    std::fs::write(&courses, golf.courses_yaml()).unwrap();
    let creds = json!({"username": FAKE_USERNAME, "password": FAKE_PASSWORD}).to_string();
    rez_aws::secrets::SecretsManagerStore::new(&d.clients, &d.names)
        .put_secret("golf/birdsfoot", &SecretValue::new(creds))
        .await
        .unwrap();
    let env = vec![
        ("REZ_AGENT_PROVIDER", "bedrock".to_owned()),
        ("REZ_AGENT_MODEL", MODEL.to_owned()),
        ("REZ_AGENT_DAILY_BUDGET_USD", "1".to_owned()),
        ("REZ_AGENT_RETRY_BASE_MS", "20".to_owned()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", model.bedrock_endpoint()),
        ("REZ_COURSES_FILE", courses.display().to_string()),
        ("REZ_PUBLIC_URL", PUBLIC.to_owned()),
    ];
    (golf, env)
}

/// The ask's buttons: label → the link's path and query on the API.
fn buttons(d: &Deployment, approval: &str) -> HashMap<String, String> {
    let pushes = d.ntfy.received();
    let push = pushes
        .iter()
        .find(|p| p.actions.iter().any(|a| a["url"].as_str().is_some_and(|u| u.contains(approval))))
        .unwrap_or_else(|| panic!("no approval push: {pushes:?}"));
    assert_eq!(push.title.as_deref(), Some("rez agent asks: approve?"));
    push.actions
        .iter()
        .map(|a| {
            assert_eq!((a["action"].as_str(), a["method"].as_str()), (Some("http"), Some("POST")), "{a}");
            let url = url::Url::parse(a["url"].as_str().unwrap()).unwrap();
            assert!(url.as_str().starts_with(PUBLIC), "{url}");
            (a["label"].as_str().unwrap().to_lowercase(), format!("{}?{}", url.path(), url.query().unwrap()))
        })
        .collect()
}

/// POST a button's link to the api function, without a key.
async fn press(api: &Function, link: &str) -> (u16, Value) {
    http_response(&api.invoke(http_event("POST", link, None, None)).await)
}

/// The agent function handles the next agent-response message while the webaction
/// function handles the web action its tool call submits (the tool waits for it).
async fn agent_turn_with_booking(d: &Deployment, agent: &Function, webaction: &Function) {
    let event = d.receive_event(QueueName::AgentResponse, WAIT).await;
    let (resp, booked) = tokio::join!(agent.invoke(event), async {
        let event = d.receive_event(QueueName::WebActions, WAIT).await;
        webaction.invoke(event).await
    });
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    assert_eq!(booked["batchItemFailures"], json!([]), "{booked}");
}

/// A booking waits for its approval and is made once when the approve link is POSTed.
/// `iam`: on the IAM-enforcing emulator, whose SNS refuses a publish whose text holds a
/// space (see `aws_iam.rs`), so the prompt has none there.
async fn approved_booking_books_once(d: &Deployment, iam: bool) {
    let model = FakeModel::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (golf, env) = golf_and_env(d, &model, &dir).await;
    model.script([
        FakeTurn::tool_call("golf_book_tee_time", json!({"course": "birdsfoot", "tee_sheet_id": 901, "players": 4})),
        FakeTurn::text("Booked."),
    ]);
    let api = d.start_with("api", &env).await;
    let agent = d.start_with("agent", &env).await;
    let webaction = d.start_with("webaction", &env).await;

    let prompt = if iam { "Book-Saturday-at-Birdsfoot" } else { "Book Saturday at Birdsfoot for four" };
    let body = json!({"prompt": prompt, "players": 4, "approval": "required", "notify": false});
    let (status, created) =
        http_response(&api.invoke(http_event("POST", "/api/agent/runs", Some(&body), Some(ADMIN_KEY))).await);
    assert_eq!(status, 202, "{created}");
    let id = RunId::parse(created["id"].as_str().expect("run id")).expect("a run id");

    // The run asks and pauses: nothing is booked, no worker is held (the record is done).
    let resp = agent.invoke(d.receive_event(QueueName::AgentResponse, WAIT).await).await;
    assert_eq!(resp["batchItemFailures"], json!([]), "{resp}");
    let run = d.store.get_run(&id).await.unwrap().expect("the run is stored");
    assert_eq!(run.status, RunStatus::AwaitingApproval, "{run:?}");
    assert!(golf.reservations().is_empty());

    let (status, page) = http_response(
        &api.invoke(http_event("GET", &format!("/api/approvals?run_id={id}"), None, Some(ADMIN_KEY))).await,
    );
    assert_eq!(status, 200, "{page}");
    let approval = &page["items"][0];
    assert_eq!(approval["state"], "pending", "{page}");
    assert!(approval.get("approve_token_hash").is_none(), "token hashes are never served");
    let aid = approval["id"].as_str().expect("approval id").to_owned();
    let links = buttons(d, &aid);

    // Without the token, or with the other decision's token: nothing is decided.
    let (status, e) = press(&api, &format!("/api/approvals/{aid}/approve")).await;
    assert!(matches!(status, 401 | 403), "{status}: {e}");
    let swapped = links["decline"].replace("/decline?", "/approve?");
    let (status, e) = press(&api, &swapped).await;
    assert_eq!(status, 403, "{e}");

    let (status, decided) = press(&api, &links["approve"]).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!((decided["state"].as_str(), decided["decided_by"].as_str()), (Some("approved"), Some("link")));

    // The continuation: the stored call runs with its stored key, through the webaction.
    agent_turn_with_booking(d, &agent, &webaction).await;
    let run = d.store.get_run(&id).await.unwrap().expect("stored");
    assert_eq!((run.status, run.answer.as_deref()), (RunStatus::Completed, Some("Booked.")), "{run:?}");
    assert_eq!(golf.reservations().len(), 1, "booked once");

    // The same link again, or the other one: 409, and nothing more is booked.
    let (status, e) = press(&api, &links["approve"]).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("already_decided")), "{e}");
    let (status, _) = press(&api, &links["decline"]).await;
    assert_eq!(status, 409);
    let (_, again) =
        http_response(&api.invoke(http_event("GET", &format!("/api/approvals/{aid}"), None, Some(ADMIN_KEY))).await);
    assert_eq!(again["state"], "approved", "{again}");
    assert_eq!(golf.reservations().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_booking_books_once_through_the_functions() {
    approved_booking_books_once(&Deployment::new().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_work_under_the_agent_and_api_policies() {
    approved_booking_books_once(&Deployment::with_iam().await, true).await;
}

//! `/api/agent/…`: start, follow and cancel agent runs, chat, and spend.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use rez_core::agent::store::RunFilter;
use rez_core::agent::{AgentRequest, AgentRun, RunStatus, Step, StepKind};
use rez_core::id::{ChatSessionId, MessageId, RunId, ScheduleId};
use rez_core::message::CreatedBy;
use rez_core::ports::Page;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::{Query, json_body};
use crate::Services;
use crate::agent::start::{RunOrigin, StartError, start_run};
use crate::agent::{AgentPorts, outcome, usage};

/// How long a chat request waits for its run before answering with the run still going.
const CHAT_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            e @ StartError::Off => ApiError::unavailable(e.to_string()).with_code("agent_off"),
            StartError::Intake(i) => i.into(),
            StartError::Store(s) => s.into(),
        }
    }
}

fn ports(s: &Services) -> ApiResult<&AgentPorts> {
    s.agent.as_ref().ok_or_else(|| ApiError::unavailable("this deployment has no agent store").with_code("agent_off"))
}

fn parse_run_id(raw: &str) -> ApiResult<RunId> {
    RunId::parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.message))
}

fn object(v: &Value) -> ApiResult<&Map<String, Value>> {
    v.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", "the request body must be a JSON object"))
}

/// A run and its steps, with the messages it is linked to.
#[derive(Debug, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: AgentRun,
    pub cost_usd: f64,
    pub steps: Vec<Step>,
    /// The run's own message, then every message its tool calls recorded.
    pub messages: Vec<LinkedMessage>,
}

#[derive(Debug, Serialize)]
pub struct LinkedMessage {
    pub id: MessageId,
    pub message_type: String,
    pub status: String,
    /// The step that recorded it (none for the run's own message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
}

/// Start a run.
#[utoipa::path(post, path = "/api/agent/runs", tag = "agent",
    request_body(content = Object, description = "`{prompt, course?, players? (1–4), auto_book? (false), notify? (true)}`"),
    responses((status = 202, description = "The run, queued", body = Object), (status = 400, body = ErrorBody),
        (status = 503, description = "The agent is off", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<Services>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let v = json_body(&headers, body)?;
    let request = AgentRequest::from_json(object(&v)?, "")?;
    let (run, _) = start_run(&s, &request, &RunOrigin::default(), CreatedBy::Api).await?;
    Ok((StatusCode::ACCEPTED, Json(run)).into_response())
}

/// List runs, newest first.
#[utoipa::path(get, path = "/api/agent/runs", tag = "agent",
    params(("status" = Option<RunStatus>, Query), ("schedule_id" = Option<String>, Query),
        ("session_id" = Option<String>, Query), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "`{items: [run], next_cursor?}`", body = Object), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<AgentRun>>> {
    let q = Query::parse(raw.as_deref(), &["status", "schedule_id", "session_id", "limit", "cursor"])?;
    let filter = RunFilter {
        status: q.parse_with(
            "status",
            "queued, running, completed, failed, max_turns, budget_exceeded or cancelled",
            RunStatus::parse,
        )?,
        schedule_id: q.parse_with("schedule_id", "a schedule id", |v| ScheduleId::parse(v).ok())?,
        session_id: q.parse_with("session_id", "a chat session id", |v| ChatSessionId::parse(v).ok())?,
        limit: q.limit()?,
        cursor: q.get("cursor").map(str::to_owned),
    };
    Ok(Json(ports(&s)?.runs.list_runs(&filter).await?))
}

/// A run with every step, its usage and cost, its answer and linked messages.
#[utoipa::path(get, path = "/api/agent/runs/{id}", tag = "agent", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<RunDetail>> {
    let id = parse_run_id(&id)?;
    Ok(Json(detail(&s, &id).await?))
}

async fn detail(s: &Services, id: &RunId) -> ApiResult<RunDetail> {
    let p = ports(s)?;
    let run = p.runs.get_run(id).await?.ok_or_else(|| ApiError::not_found(format!("run {id} was not found")))?;
    let steps = p.runs.steps(id).await?;
    let mut linked: Vec<(MessageId, Option<u32>)> = run.message_id.iter().map(|m| (m.clone(), None)).collect();
    for step in &steps {
        if let StepKind::ToolCall(c) = &step.kind
            && let Some(m) = c.outcome.as_ref().and_then(|o| o.message_id.clone())
        {
            linked.push((m, Some(step.index)));
        }
    }
    let mut messages = Vec::with_capacity(linked.len());
    for (mid, step) in linked {
        if let Some(m) = s.messages.get_message(&mid).await? {
            messages.push(LinkedMessage {
                id: mid,
                message_type: m.message_type.to_string(),
                status: m.status.to_string(),
                step,
            });
        }
    }
    Ok(RunDetail { cost_usd: run.cost.usd(), run, steps, messages })
}

/// Ask a run to stop: a queued run ends at once, a running one before its next step.
#[utoipa::path(post, path = "/api/agent/runs/{id}/cancel", tag = "agent", params(("id" = String, Path)),
    responses((status = 202, description = "The run, cancelled or stopping", body = Object),
        (status = 404, body = ErrorBody), (status = 409, description = "The run has already ended", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_run_id(&id)?;
    let p = ports(&s)?;
    let run = p.runs.get_run(&id).await?.ok_or_else(|| ApiError::not_found(format!("run {id} was not found")))?;
    if run.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_ended",
            format!("run {id} has already ended: {}", run.status),
        )
        .with_details(json!({"status": run.status})));
    }
    let now = s.clock.now();
    let run =
        p.runs.request_cancel(&id, now).await?.ok_or_else(|| ApiError::not_found(format!("run {id} was not found")))?;
    if run.status == RunStatus::Cancelled {
        // Ended here, before any worker took it: tell the user as a worker would.
        if let Err(e) = outcome::after_end(&s, p, &run).await {
            tracing::warn!(run_id = %id, error = %e, "telling the user of a cancelled run failed");
        }
    }
    tracing::info!(run_id = %id, status = %run.status, "run cancel requested");
    Ok((StatusCode::ACCEPTED, Json(run)).into_response())
}

/// Spend today, over the last 7 days and per model.
#[utoipa::path(get, path = "/api/agent/usage", tag = "agent",
    responses((status = 200, body = usage::UsageReport)), security(("bearer" = [])))]
pub async fn usage_report(State(s): State<Services>) -> ApiResult<Json<usage::UsageReport>> {
    Ok(Json(usage::report(&s, ports(&s)?).await?))
}

/// A chat session with its exchanges.
#[utoipa::path(get, path = "/api/agent/sessions/{id}", tag = "agent", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn session(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = ChatSessionId::parse(&id).map_err(|e| ApiError::bad_request("invalid_id", e.message))?;
    let session = ports(&s)?
        .runs
        .get_session(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("chat session {id} was not found")))?;
    Ok(Json(session).into_response())
}

/// The answer to a chat turn.
#[derive(Debug, Serialize)]
pub struct ChatReply {
    pub session_id: ChatSessionId,
    pub run_id: RunId,
    pub status: RunStatus,
    /// The run's answer (or why it ended without one); absent while it still runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub steps: Vec<Step>,
}

/// One turn of a chat: runs the message with the session's history and answers with the
/// run's reply. With `Accept: text/event-stream` the steps stream as they are stored
/// (`event: step`), then the reply (`event: done`).
#[utoipa::path(post, path = "/api/agent/chat", tag = "agent",
    request_body(content = Object, description = "`{message, session_id?, course?, players?, auto_book? (false)}`"),
    responses((status = 200, description = "`{session_id, run_id, status, message?, steps}` (or an event stream)", body = Object),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn chat(
    State(s): State<Services>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let v = json_body(&headers, body)?;
    let obj = object(&v)?;
    let mut fields = obj.clone();
    let session_id = match fields.remove("session_id") {
        None | Some(Value::Null) => ChatSessionId::new(s.clock.now()),
        Some(Value::String(raw)) => {
            ChatSessionId::parse(&raw).map_err(|e| ApiError::bad_request("invalid_field", e.message))?
        }
        Some(_) => return Err(ApiError::bad_request("invalid_field", "session_id must be a string")),
    };
    let message = fields.remove("message").ok_or_else(|| {
        ApiError::bad_request("missing_field", "`message` is required").with_details(json!({"field": "message"}))
    })?;
    if fields.contains_key("prompt") || fields.contains_key("notify") {
        return Err(ApiError::bad_request(
            "unknown_field",
            "a chat turn is {message, session_id?, course?, players?, auto_book?}",
        ));
    }
    fields.insert("prompt".into(), message);
    fields.insert("notify".into(), Value::Bool(false));
    let request = AgentRequest::from_json(&fields, "").map_err(|mut e| {
        if e.field == "prompt" {
            e.field = "message".into();
            e.message = e.message.replace("`prompt`", "`message`");
        }
        ApiError::from(e)
    })?;
    let origin = RunOrigin { session_id: Some(session_id.clone()), ..RunOrigin::default() };
    let (run, _) = start_run(&s, &request, &origin, CreatedBy::Api).await?;
    let streaming =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    if streaming {
        let stream = step_stream(s, session_id, run.id);
        return Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response());
    }
    let (run, steps) = wait_for(&s, &run.id).await?;
    let done = run.status.is_final();
    Ok(Json(ChatReply {
        session_id,
        run_id: run.id.clone(),
        status: run.status,
        message: done.then(|| outcome::reply(&run)),
        steps,
    })
    .into_response())
}

/// Wait (bounded) for a run to end.
async fn wait_for(s: &Services, id: &RunId) -> ApiResult<(AgentRun, Vec<Step>)> {
    let p = ports(s)?;
    let deadline = tokio::time::Instant::now() + CHAT_WAIT;
    loop {
        let run = p.runs.get_run(id).await?.ok_or_else(|| ApiError::not_found(format!("run {id} was not found")))?;
        if run.status.is_final() || tokio::time::Instant::now() >= deadline {
            let steps = p.runs.steps(id).await?;
            return Ok((run, steps));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The run's steps as server-sent events: each step once it is stored (a tool call again
/// once its result is), then `done` with the reply.
fn step_stream(s: Services, session_id: ChatSessionId, id: RunId) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let Some(p) = s.agent.clone() else { return };
        let deadline = tokio::time::Instant::now() + CHAT_WAIT;
        // Per step index: whether its final form (a tool call with its result) was sent.
        let mut sent: Vec<bool> = vec![];
        loop {
            let run = match p.runs.get_run(&id).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => {
                    yield Ok(Event::default().event("error").data(json!({"message": "the run could not be read"}).to_string()));
                    return;
                }
            };
            let steps = p.runs.steps(&id).await.unwrap_or_default();
            for step in &steps {
                let i = step.index as usize;
                let complete = !matches!(&step.kind, StepKind::ToolCall(c) if c.outcome.is_none());
                if sent.len() <= i {
                    sent.resize(i + 1, false);
                } else if sent[i] || !complete {
                    // Sent in its final form, or sent already and not changed since.
                    continue;
                }
                let data = serde_json::to_string(step).unwrap_or_default();
                yield Ok(Event::default().event("step").data(data));
                sent[i] = complete;
            }
            if run.status.is_final() || tokio::time::Instant::now() >= deadline {
                let reply = json!({
                    "session_id": session_id,
                    "run_id": run.id,
                    "status": run.status,
                    "message": run.status.is_final().then(|| outcome::reply(&run)),
                });
                yield Ok(Event::default().event("done").data(reply.to_string()));
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

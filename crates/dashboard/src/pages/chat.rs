//! Chat with the agent: a form that starts a run in the session (post, then redirect),
//! and the session's page, which shows the exchanges so far and, while the latest run
//! works, its steps as they are stored (the script reloads the page every second;
//! without it, a link does).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use rez_core::agent::{AgentRequest, StepKind};
use rez_core::id::{ChatSessionId, RunId};
use rez_core::message::CreatedBy;
use rez_runtime::agent::outcome;
use rez_runtime::agent::start::{RunOrigin, StartError, start_run};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{PageError, PageResult, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

#[derive(Deserialize, Default)]
pub struct ChatQuery {
    session: Option<String>,
    run: Option<String>,
}

pub async fn show(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ChatQuery>,
) -> PageResult<Response> {
    let p = dash
        .services
        .agent
        .as_ref()
        .ok_or_else(|| PageError::new(StatusCode::SERVICE_UNAVAILABLE, "This deployment has no agent store."))?;
    let session = match q.session.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(ChatSessionId::parse(raw).map_err(|e| PageError::bad_request(e.message))?),
        None => None,
    };
    let exchanges = match &session {
        Some(id) => p.runs.get_session(id).await?.map(|s| s.exchanges).unwrap_or_default(),
        None => vec![],
    };
    let run = match q.run.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let id = RunId::parse(raw).map_err(|e| PageError::bad_request(e.message))?;
            match p.runs.get_run(&id).await? {
                Some(r) if !exchanges.iter().any(|x| x.run_id == r.id) => Some((p.runs.steps(&id).await?, r)),
                _ => None,
            }
        }
        None => None,
    };
    let here = format!(
        "/agent/chat?session={}&run={}",
        enc(session.as_ref().map_or("", |s| s.as_str())),
        enc(q.run.as_deref().unwrap_or(""))
    );
    let agent_on = p.settings.is_some();
    let body = html! {
        @if !agent_on {
            p.error role="alert" { "The agent is off: set REZ_AGENT_PROVIDER and REZ_AGENT_MODEL to turn it on." }
        }
        section aria-label="Conversation" #conversation {
            @if exchanges.is_empty() && run.is_none() { p.muted { "Ask the agent something: a forecast, a tee time, a reminder." } }
            @for x in &exchanges {
                div.exchange {
                    p { strong { "You" } " · " (time::at(x.at)) }
                    p { (x.user) }
                    p { strong { "Agent" } " · " a href=(format!("/agent/runs/{}", x.run_id)) { "the run" } }
                    p.answer { (x.assistant) }
                }
            }
            @if let Some((steps, r)) = &run {
                div.exchange {
                    p { strong { "You" } " · " (time::at(r.created_at)) }
                    p { (r.request.prompt) }
                    p { strong { "Agent" } " · " a href=(format!("/agent/runs/{}", r.id)) { "the run" } " · " (r.status) }
                    ol {
                        @for s in steps {
                            li {
                                @match &s.kind {
                                    StepKind::ModelTurn(_) => "thought",
                                    StepKind::ToolCall(c) => {
                                        "tool " code { (c.name) }
                                        @if c.outcome.is_none() { " (running)" }
                                    }
                                }
                            }
                        }
                    }
                    @if r.status.is_final() {
                        p.answer { (outcome::reply(r)) }
                    } @else {
                        p data-poll="1000" role="status" { "Working… " a href=(here) { "Refresh" } }
                    }
                }
            }
        }
        @if viewer.can_write() && agent_on {
            form.stack method="post" action="/agent/chat" {
                (layout::csrf(&viewer))
                @if let Some(s) = &session { input type="hidden" name="session_id" value=(s); }
                label { "Message" textarea name="message" required rows="3" {} }
                button type="submit" { "Send" }
            }
            @if session.is_some() { p { a href="/agent/chat" { "Start a new conversation" } } }
        }
    };
    Ok(layout::page(&viewer, "/agent/chat", "Chat", body))
}

#[derive(Deserialize)]
pub struct ChatForm {
    message: String,
    session_id: Option<String>,
}

pub async fn send(State(dash): State<Dash>, Form(f): Form<ChatForm>) -> PageResult<Response> {
    let s = &dash.services;
    let session = match f.session_id.as_deref().filter(|v| !v.is_empty()) {
        Some(raw) => ChatSessionId::parse(raw).map_err(|e| PageError::bad_request(e.message))?,
        None => ChatSessionId::new(s.clock.now()),
    };
    let mut fields = Map::new();
    fields.insert("prompt".into(), Value::String(f.message.trim().to_owned()));
    fields.insert("notify".into(), Value::Bool(false));
    let request = AgentRequest::from_json(&fields, "")
        .map_err(|e| PageError::bad_request(e.message.replace("`prompt`", "The message")))?;
    let origin = RunOrigin { session_id: Some(session.clone()), ..RunOrigin::default() };
    let (run, _) = start_run(s, &request, &origin, CreatedBy::Api).await.map_err(|e| match e {
        StartError::Off => PageError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        StartError::Store(e) => e.into(),
        StartError::Intake(e) => PageError::bad_request(e.to_string()),
    })?;
    tracing::info!(run_id = %run.id, session_id = %session, "chat turn from the dashboard");
    let to = format!("/agent/chat?session={}&run={}", enc(session.as_str()), enc(run.id.as_str()));
    Ok(Redirect::to(&to).into_response())
}

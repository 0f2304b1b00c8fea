//! The agent's runs: the list (by status, with the API's cursor) and one run with every
//! step, its tokens and cost, and the messages it recorded.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use rez_core::agent::{ContentBlock, RunFilter, RunStatus, StepKind};
use rez_core::id::RunId;
use rez_runtime::agent::AgentPorts;
use serde::Deserialize;

use super::{PageError, PageResult, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

fn ports(dash: &Dash) -> PageResult<&AgentPorts> {
    dash.services
        .agent
        .as_ref()
        .ok_or_else(|| PageError::new(StatusCode::SERVICE_UNAVAILABLE, "This deployment has no agent store."))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    cursor: Option<String>,
}

fn usd(n: rez_core::agent::Nanodollars) -> String {
    format!("${:.4}", n.usd())
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let status = if q.status.is_empty() {
        None
    } else {
        Some(RunStatus::parse(&q.status).ok_or_else(|| PageError::bad_request("Unknown run status."))?)
    };
    let page = ports(&dash)?
        .runs
        .list_runs(&RunFilter {
            status,
            schedule_id: None,
            session_id: None,
            limit: PAGE_SIZE,
            cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        })
        .await?;
    let body = html! {
        form.filters method="get" action="/agent/runs" {
            label {
                "Status"
                select name="status" {
                    option value="" selected[q.status.is_empty()] { "any" }
                    @for s in RunStatus::ALL { option value=(s.as_str()) selected[s.as_str() == q.status] { (s) } }
                }
            }
            button type="submit" { "Filter" }
        }
        @if page.items.is_empty() {
            p.muted { "No run yet." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Run" } th scope="col" { "Prompt" } th scope="col" { "Status" }
                        th scope="col" { "Started" } th.num scope="col" { "Steps" } th.num scope="col" { "Cost" } } }
                    tbody {
                        @for r in &page.items {
                            tr {
                                td { a href=(format!("/agent/runs/{}", r.id)) { code { (r.id) } } }
                                td { (r.request.prompt.chars().take(80).collect::<String>()) }
                                td { (r.status) }
                                td { (time::at(r.created_at)) }
                                td.num { (r.steps) }
                                td.num { (usd(r.cost)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &page.next_cursor {
            p.pager { a href=(format!("/agent/runs?status={}&cursor={}", enc(&q.status), enc(c))) rel="next" { "Older runs →" } }
        }
    };
    Ok(layout::page(&viewer, "/agent/runs", "Agent runs", body))
}

pub async fn show(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let id = RunId::parse(&id).map_err(|e| PageError::bad_request(e.message))?;
    let p = ports(&dash)?;
    let (run, steps) = tokio::join!(p.runs.get_run(&id), p.runs.steps(&id));
    let run = run?.ok_or_else(|| PageError::not_found(format!("Run {id} was not found.")))?;
    let steps = steps?;
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (run.status) }
            dt { "Prompt" } dd { (run.request.prompt) }
            dt { "Model" } dd { (run.provider) " · " (run.model) }
            dt { "Started" } dd { (time::at(run.created_at)) }
            dt { "Finished" } dd { (time::maybe(run.finished_at)) }
            dt { "Tokens" } dd { (run.usage.input_tokens) " in, " (run.usage.output_tokens) " out, "
                (run.usage.cache_read_tokens) " cache read, " (run.usage.cache_write_tokens) " cache write" }
            dt { "Cost" } dd { (usd(run.cost)) }
            @if let Some(m) = &run.message_id { dt { "Message" } dd { a href=(format!("/messages/{m}")) { code { (m) } } } }
            @if let Some(s) = &run.schedule_id { dt { "Schedule" } dd { a href=(format!("/schedules/{s}")) { code { (s) } } } }
            @if let Some(a) = &run.answer { dt { "Answer" } dd { (a) } }
            @if let Some(e) = &run.error { dt { "Error" } dd { (e) } }
        }
        h2 { "Steps" }
        ol {
            @for step in &steps {
                li {
                    @match &step.kind {
                        StepKind::ModelTurn(t) => {
                            p { strong { "Model turn" } " at " (time::at(step.at)) " · " (t.usage.input_tokens) " in / "
                                (t.usage.output_tokens) " out · " (usd(t.cost)) " · " (t.latency_ms) " ms" }
                            @for block in &t.content {
                                @match block {
                                    ContentBlock::Text { text } => p { (text) },
                                    ContentBlock::ToolUse { name, .. } => p.muted { "asks for " code { (name) } },
                                    _ => {},
                                }
                            }
                        }
                        StepKind::ToolCall(c) => {
                            p { strong { "Tool " code { (c.name) } } " at " (time::at(step.at)) }
                            pre { (super::messages::pretty(&c.arguments)) }
                            @match &c.outcome {
                                Some(o) => {
                                    p { @if o.is_error { "Failed" } @else { "Returned" } " in " (o.duration_ms) " ms"
                                        @if let Some(m) = &o.message_id { ", recorded " a href=(format!("/messages/{m}")) { code { (m) } } } }
                                    pre { (o.text) }
                                }
                                None => p.muted { "Running…" },
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, "/agent/runs", &format!("Run {id}"), body))
}

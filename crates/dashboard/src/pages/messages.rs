//! Messages: the list with the API's filters and cursor, and one message with its
//! web-action results, its notification and the agent run behind it.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use rez_core::MessageId;
use rez_core::agent::run::run_of_key;
use rez_core::message::{CreatedBy, MessageType, Stage};
use rez_core::ports::MessageFilter;
use rez_core::status::Status;
use serde::Deserialize;

use super::{PageError, PageResult, done, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message_type: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    created_by: String,
    /// `datetime-local` values, read as UTC.
    #[serde(default)]
    created_after: String,
    #[serde(default)]
    created_before: String,
    cursor: Option<String>,
}

/// A `datetime-local` value (`2026-12-06T15:30`, seconds optional) or RFC 3339, as UTC.
fn utc_time(raw: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.to_utc());
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|t| t.and_utc())
}

fn pick<T>(raw: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> PageResult<Option<T>> {
    if raw.is_empty() {
        return Ok(None);
    }
    parse(raw).map(Some).ok_or_else(|| PageError::bad_request(format!("`{raw}` is not {what}.")))
}

fn select(name: &str, label: &str, current: &str, options: &[&str]) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                option value="" selected[current.is_empty()] { "any" }
                @for o in options { option value=(o) selected[*o == current] { (o) } }
            }
        }
    }
}

pub fn status_cell(s: Status) -> Markup {
    html! { span class=(format!("status status-{s}")) { (s) } }
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let filter = MessageFilter {
        status: pick(&q.status, "a message status", Status::parse)?,
        message_type: pick(&q.message_type, "a message type", MessageType::parse)?,
        stage: pick(&q.stage, "a stage", Stage::parse)?,
        created_by: pick(&q.created_by, "a creator", CreatedBy::parse)?,
        created_after: pick(&q.created_after, "a date and time", utc_time)?,
        created_before: pick(&q.created_before, "a date and time", utc_time)?,
        limit: PAGE_SIZE,
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
    };
    let page = dash.services.messages.list_messages(&filter).await?;
    let keep = format!(
        "status={}&message_type={}&stage={}&created_by={}&created_after={}&created_before={}",
        enc(&q.status),
        enc(&q.message_type),
        enc(&q.stage),
        enc(&q.created_by),
        enc(&q.created_after),
        enc(&q.created_before)
    );
    let body = html! {
        form.filters method="get" action="/messages" {
            (select("status", "Status", &q.status, &Status::ALL.map(|s| s.as_str())))
            (select("message_type", "Type", &q.message_type, &MessageType::ALL.map(|s| s.as_str())))
            (select("stage", "Stage", &q.stage, &Stage::ALL.map(|s| s.as_str())))
            (select("created_by", "Created by", &q.created_by, &CreatedBy::ALL.map(|s| s.as_str())))
            label { "Created after (UTC)" input type="datetime-local" name="created_after" value=(q.created_after); }
            label { "Created before (UTC)" input type="datetime-local" name="created_before" value=(q.created_before); }
            button type="submit" { "Filter" }
        }
        @if page.items.is_empty() {
            p.muted { "No message matches." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Message" } th scope="col" { "Type" } th scope="col" { "Status" }
                        th scope="col" { "Created" } th scope="col" { "By" } } }
                    tbody {
                        @for m in &page.items {
                            tr {
                                td { a href=(format!("/messages/{}", m.id)) { code { (m.id) } } }
                                td { (m.message_type) }
                                td { (status_cell(m.status)) }
                                td { (time::at(m.created_date)) }
                                td { (m.created_by) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &page.next_cursor {
            p.pager { a href=(format!("/messages?{keep}&cursor={}", enc(c))) rel="next" { "Older messages →" } }
        }
    };
    Ok(layout::page(&viewer, "/messages", "Messages", body))
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

fn parse_id(raw: &str) -> PageResult<MessageId> {
    MessageId::parse(raw).map_err(|e| PageError::bad_request(e.message))
}

pub fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn show(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(d): Query<Done>,
) -> PageResult<Response> {
    let id = parse_id(&id)?;
    let s = &dash.services;
    let (m, entry, results) =
        tokio::join!(s.messages.get_message(&id), s.inbox.get_entry(&id), s.results.results_for(&id));
    let m = m?.ok_or_else(|| PageError::not_found(format!("Message {id} was not found.")))?;
    let (entry, results) = (entry?, results?);
    let run = m.idempotency_key.as_ref().and_then(run_of_key);
    let body = html! {
        (layout::notice(d.done.as_deref().filter(|d| *d == "retried").map(|_| "The message was queued again.")))
        dl.facts {
            dt { "Id" } dd { code { (m.id) } }
            dt { "Type" } dd { (m.message_type) }
            dt { "Status" } dd { (status_cell(m.status)) }
            dt { "Stage" } dd { (m.stage) }
            dt { "Created" } dd { (time::at(m.created_date)) " by " (m.created_by) }
            dt { "Updated" } dd { (time::at(m.updated_date)) }
            dt { "Retries" } dd { (m.retry_count) }
            @if let Some(k) = &m.idempotency_key { dt { "Idempotency key" } dd { code { (k.as_str()) } } }
            @if let Some(e) = &m.error_message { dt { "Error" } dd { (e) } }
            @if let Some((run, step)) = &run {
                dt { "Agent run" } dd { a href=(format!("/agent/runs/{run}")) { code { (run) } } " (step " (step) ")" }
            }
        }
        @if viewer.can_write() && matches!(m.status, Status::Failed | Status::DeadLettered) {
            div.actions { (layout::button(&viewer, &format!("/messages/{}/retry", m.id), "Retry", "")) }
        }
        h2 { "Payload" }
        pre { (pretty(&m.payload)) }
        @if !m.arguments.is_empty() { h2 { "Arguments" } pre { (pretty(&m.arguments)) } }
        @if let Some(e) = &entry {
            h2 { "Notification" }
            dl.facts {
                dt { "Title" } dd { (e.notification.title.as_deref().unwrap_or("—")) }
                dt { "Text" } dd { (e.notification.message) }
                dt { "Delivery" } dd { (pretty(&e.state).trim_matches('"')) " after " (e.attempts) " attempt(s)" }
                @if let Some(err) = &e.last_error { dt { "Last error" } dd { (err) } }
                dt { "Opened" } dd { (time::at(e.created_date)) }
            }
        }
        @if !results.is_empty() {
            h2 { "Results" }
            @for r in &results {
                h3 { (r.action) " · " (r.operation) " · attempt " (r.attempt) }
                dl.facts {
                    dt { "Status" } dd { (pretty(&r.status).trim_matches('"')) }
                    @if let Some(c) = r.response_code { dt { "HTTP status" } dd { (c) } }
                    dt { "Took" } dd { (r.execution_time_ms) " ms" }
                    dt { "At" } dd { (time::at(r.created_date)) }
                    @if let Some(e) = &r.error_message { dt { "Error" } dd { (e) } }
                }
                pre { (pretty(&r.output)) }
            }
        }
    };
    Ok(layout::page(&viewer, "/messages", &format!("Message {}", m.id), body))
}

pub async fn retry(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = parse_id(&id)?;
    dash.services.messages.retry(&id).await?;
    tracing::info!(message_id = %id, "message re-queued from the dashboard");
    Ok(done(&format!("/messages/{id}"), "retried"))
}

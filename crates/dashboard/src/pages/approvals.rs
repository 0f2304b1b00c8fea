//! Approvals: what agent runs wait for, with Approve and Decline for a `write` key. A
//! decision here is the same as the push buttons' and the API's: one conditional write,
//! the first answer wins, and the run resumes with the stored call and its stored key.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use rez_core::agent::approval::{ApprovalFilter, ApprovalState, Decision, Proof};
use rez_core::id::ApprovalId;
use rez_runtime::agent::approvals::{DecideError, decide};
use serde::Deserialize;

use super::{PageError, PageResult, done, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let Some(store) = dash.services.agent.as_ref().and_then(|a| a.approvals.clone()) else {
        return Err(PageError::not_found("This deployment keeps no approvals."));
    };
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => Some(ApprovalState::Pending),
        Some("all") => None,
        Some(s) => Some(ApprovalState::parse(s).ok_or_else(|| PageError::bad_request("Unknown state."))?),
    };
    let filter = ApprovalFilter {
        state,
        limit: PAGE_SIZE,
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let page = store.list_approvals(&filter).await?;
    let now = dash.services.clock.now();
    let notice = match q.done.as_deref() {
        Some("approved") => Some("Approved: the run goes on with the stored call."),
        Some("declined") => Some("Declined: the run is told, and nothing is done."),
        _ => None,
    };
    let which = state.map_or("all", |s| s.as_str());
    let body = html! {
        (layout::notice(notice))
        nav.filters aria-label="Approval states" {
            @for s in ["pending", "approved", "declined", "expired", "all"] {
                @if s == which { strong aria-current="page" { (s) } } @else { a href=(format!("/approvals?state={s}")) { (s) } }
                " "
            }
        }
        @if page.items.is_empty() {
            p.muted { "No approvals " (which) "." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "What it will do" } th scope="col" { "Run" } th scope="col" { "State" }
                        th scope="col" { "Until" } @if viewer.can_write() { th scope="col" { "Answer" } } } }
                    tbody {
                        @for a in &page.items {
                            tr {
                                td { (a.summary) br; code { (a.tool) } }
                                td { a href=(format!("/agent/runs/{}", a.run_id)) { code { (a.run_id) } } }
                                td { (a.state.as_str()) @if let Some(by) = &a.decided_by { br; span.muted { "by " (by) } } }
                                td { (time::at(a.expires_at)) }
                                @if viewer.can_write() {
                                    td.actions {
                                        @if a.is_open(now) {
                                            form.inline method="post" action=(format!("/approvals/{}/approve", a.id)) {
                                                (layout::csrf(&viewer))
                                                button type="submit" aria-label=(format!("Approve: {}", a.summary)) { "Approve" }
                                            }
                                            form.inline method="post" action=(format!("/approvals/{}/decline", a.id)) {
                                                (layout::csrf(&viewer))
                                                button.danger type="submit" aria-label=(format!("Decline: {}", a.summary)) { "Decline" }
                                            }
                                        } @else {
                                            span.muted { "—" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &page.next_cursor {
            p.pager { a href=(format!("/approvals?state={which}&cursor={}", enc(c))) rel="next" { "More approvals →" } }
        }
    };
    Ok(layout::page(&viewer, "/approvals", "Approvals", body))
}

async fn answer(dash: Dash, viewer: Viewer, id: String, decision: Decision) -> PageResult<Response> {
    let id = ApprovalId::parse(&id).map_err(|e| PageError::bad_request(e.message))?;
    let proof = Proof::Principal(format!("dashboard:{}", viewer.name));
    match decide(&dash.services, &id, decision, proof).await {
        Ok(a) => {
            tracing::info!(approval_id = %id, run_id = %a.run_id, decision = %decision, "approval answered from the dashboard");
            Ok(done("/approvals", if decision == Decision::Approve { "approved" } else { "declined" }))
        }
        Err(DecideError::Already(a)) => Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "This approval was already {} at {}.",
                a.state,
                a.decided_at.map(|t| rez_core::time::rfc3339(&t)).unwrap_or_default()
            ),
        )),
        Err(DecideError::NotFound) => Err(PageError::not_found(format!("No approval {id}."))),
        Err(DecideError::Store(e)) => Err(e.into()),
        Err(e) => Err(PageError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

pub async fn approve(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    answer(dash, viewer, id, Decision::Approve).await
}

pub async fn decline(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    answer(dash, viewer, id, Decision::Decline).await
}

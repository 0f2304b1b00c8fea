//! Dead letters: why each failed; redrive one or all; delete one.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;
use rez_core::MessageId;
use rez_core::ports::RedriveSelector;
use serde::Deserialize;

use super::{PageError, PageResult, done, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
    n: Option<u64>,
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let page = dash.services.queues.dead_letters(None, PAGE_SIZE, q.cursor.clone().filter(|c| !c.is_empty())).await?;
    let notice = match q.done.as_deref() {
        Some("redriven") => Some(format!("{} dead letter(s) sent back to their queue.", q.n.unwrap_or(0))),
        Some("deleted") => Some("The dead letter was deleted.".to_owned()),
        _ => None,
    };
    let body = html! {
        (layout::notice(notice.as_deref()))
        @if page.items.is_empty() {
            p.muted { "No dead letters." }
        } @else {
            @if viewer.can_write() {
                form.inline method="post" action="/dead-letters/redrive" {
                    (layout::csrf(&viewer))
                    input type="hidden" name="all" value="true";
                    button type="submit" { "Redrive all" }
                }
            }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Message" } th scope="col" { "Queue" } th scope="col" { "Why it failed" }
                        th scope="col" { "Receives" } th scope="col" { "Dead-lettered" }
                        @if viewer.can_write() { th scope="col" { "Actions" } } } }
                    tbody {
                        @for d in &page.items {
                            tr {
                                td { a href=(format!("/messages/{}", d.message.id)) { code { (d.message.id) } } br; (d.message.message_type) }
                                td { (d.source_queue) }
                                td { (d.last_error.as_deref().unwrap_or("—")) }
                                td.num { (d.receive_count) }
                                td { (time::at(d.dead_lettered_date)) }
                                @if viewer.can_write() {
                                    td.actions {
                                        form.inline method="post" action="/dead-letters/redrive" {
                                            (layout::csrf(&viewer))
                                            input type="hidden" name="id" value=(d.message.id);
                                            button type="submit" aria-label=(format!("Redrive {}", d.message.id)) { "Redrive" }
                                        }
                                        form.inline method="post" action=(format!("/dead-letters/{}/delete", d.message.id)) {
                                            (layout::csrf(&viewer))
                                            button.danger type="submit" aria-label=(format!("Delete {}", d.message.id)) { "Delete" }
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
            p.pager { a href=(format!("/dead-letters?cursor={}", enc(c))) rel="next" { "More dead letters →" } }
        }
    };
    Ok(layout::page(&viewer, "/dead-letters", "Dead letters", body))
}

#[derive(Deserialize)]
pub struct RedriveForm {
    id: Option<String>,
    all: Option<String>,
}

pub async fn redrive(State(dash): State<Dash>, Form(f): Form<RedriveForm>) -> PageResult<Response> {
    let selector = match (f.id.as_deref(), f.all.as_deref()) {
        (Some(id), None) => {
            RedriveSelector::Ids(vec![MessageId::parse(id).map_err(|e| PageError::bad_request(e.message))?])
        }
        (None, Some("true")) => RedriveSelector::All,
        _ => return Err(PageError::bad_request("Redrive one message or all of them.")),
    };
    let n = dash.services.queues.redrive(&selector).await?;
    tracing::info!(redriven = n, "dead letters redriven from the dashboard");
    Ok(done(&format!("/dead-letters?n={n}"), "redriven"))
}

pub async fn delete(State(dash): State<Dash>, Path(id): Path<String>) -> PageResult<Response> {
    let id = MessageId::parse(&id).map_err(|e| PageError::bad_request(e.message))?;
    if !dash.services.queues.delete_dead_letter(&id).await? {
        return Err(PageError::not_found(format!("{id} is not in a dead-letter queue.")));
    }
    tracing::info!(message_id = %id, "dead letter deleted from the dashboard");
    Ok(done("/dead-letters", "deleted"))
}

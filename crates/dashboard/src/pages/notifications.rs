//! The notifications inbox, newest first, with each one's delivery state.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageResult, enc};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

const PAGE_SIZE: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    let page = dash.services.inbox.list_entries(None, PAGE_SIZE, q.cursor.clone().filter(|c| !c.is_empty())).await?;
    let body = html! {
        @if page.items.is_empty() {
            p.muted { "No notification yet." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Title" } th scope="col" { "Text" }
                        th scope="col" { "Delivery" } } }
                    tbody {
                        @for e in &page.items {
                            tr {
                                td { a href=(format!("/messages/{}", e.message_id)) { (time::at(e.created_date)) } }
                                td { (e.notification.title.as_deref().unwrap_or("—")) }
                                td { (e.notification.message) }
                                td { (super::messages::pretty(&e.state).trim_matches('"')) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = &page.next_cursor {
            p.pager { a href=(format!("/notifications?cursor={}", enc(c))) rel="next" { "Older notifications →" } }
        }
    };
    Ok(layout::page(&viewer, "/notifications", "Notifications", body))
}

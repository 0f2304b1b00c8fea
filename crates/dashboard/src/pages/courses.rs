//! Courses: the golf courses rez knows, and whether credentials are stored for each —
//! by the secret's name and date only; a credential itself is never read here.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::PageResult;
use crate::guard::Viewer;
use crate::{Dash, layout, time};

pub async fn list(State(dash): State<Dash>, Extension(viewer): Extension<Viewer>) -> PageResult<Response> {
    // `golf/<course id>` → when it was stored; `None`: this deployment does not list secrets.
    let stored: Option<HashMap<String, _>> = match &dash.courses.secrets {
        Some(s) => Some(
            s.list_secrets()
                .await?
                .into_iter()
                .filter_map(|i| i.name.strip_prefix("golf/").map(|c| (c.to_owned(), i.updated_date)))
                .collect(),
        ),
        None => None,
    };
    let body = html! {
        @if dash.courses.list.is_empty() {
            p.muted { "No courses." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Course" } th scope="col" { "Address" } th scope="col" { "Time zone" }
                        th scope="col" { "Credentials" } } }
                    tbody {
                        @for c in &dash.courses.list {
                            tr {
                                td { strong { (c.name) } br; code { (c.id) } }
                                td { (c.address) }
                                td { (c.time_zone) }
                                td {
                                    @match &stored {
                                        Some(map) => @match map.get(&c.id) {
                                            Some(at) => { "stored " (time::at(*at)) }
                                            None => span.muted { "none — " code { "rez secrets set-golf --course " (c.id) } },
                                        },
                                        None => span.muted { "not listed on this deployment" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&viewer, "/courses", "Courses", body))
}

//! API keys (admin only): create one (its token shown this once), list, revoke.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};
use rez_core::auth::{ApiKeyId, Scope};
use serde::Deserialize;

use super::{PageError, PageResult, done};
use crate::guard::Viewer;
use crate::{Dash, layout, time};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    done: Option<String>,
}

fn admin_only(viewer: &Viewer) -> PageResult<()> {
    if viewer.is_admin() { Ok(()) } else { Err(PageError::new(StatusCode::FORBIDDEN, "API keys need an admin key.")) }
}

pub async fn list(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult<Response> {
    admin_only(&viewer)?;
    let notice = (q.done.as_deref() == Some("revoked")).then_some("The key was revoked; its sessions end now.");
    page(&dash, &viewer, html! { (layout::notice(notice)) }).await
}

async fn page(dash: &Dash, viewer: &Viewer, top: Markup) -> PageResult<Response> {
    let mut keys = dash.services.keys.store().list_keys().await?;
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_date));
    let body = html! {
        (top)
        h2 { "New key" }
        form.stack method="post" action="/keys" {
            (layout::csrf(viewer))
            label { "Name" input type="text" name="name" required maxlength="100"; }
            label {
                "Scope"
                select name="scope" {
                    @for s in Scope::ALL { option value=(s.as_str()) selected[s == Scope::Read] { (s) } }
                }
            }
            button type="submit" { "Create key" }
        }
        h2 { "Keys" }
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Scope" }
                    th scope="col" { "Created" } th scope="col" { "Revoked" } th scope="col" { "Actions" } } }
                tbody {
                    @for k in &keys {
                        tr {
                            td { (k.name) }
                            td { code { (k.id) } }
                            td { (k.scope) }
                            td { (time::at(k.created_date)) }
                            td { (time::maybe(k.revoked_date)) }
                            td {
                                @if k.revoked_date.is_none() {
                                    form.inline method="post" action=(format!("/keys/{}/revoke", k.id)) {
                                        (layout::csrf(viewer))
                                        button.danger type="submit" aria-label=(format!("Revoke {}", k.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(viewer, "/keys", "API keys", body))
}

#[derive(Deserialize)]
pub struct NewKey {
    name: String,
    scope: String,
}

pub async fn create(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Form(f): Form<NewKey>,
) -> PageResult<Response> {
    admin_only(&viewer)?;
    let name = f.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(PageError::bad_request("A key needs a name of 1 to 100 characters."));
    }
    let scope = Scope::parse(&f.scope).ok_or_else(|| PageError::bad_request("Unknown scope."))?;
    let minted = dash.services.keys.create(name, scope).await?;
    tracing::info!(key_id = %minted.record.id, scope = %scope, "API key created from the dashboard");
    let top = html! {
        div.notice role="status" {
            p { "Key " strong { (name) } " (" (scope) ") was created. Copy it now: it is not shown again." }
            p { label for="new-token" { "The new key" } }
            input #new-token.secret type="text" readonly value=(minted.token);
        }
    };
    page(&dash, &viewer, top).await
}

pub async fn revoke(
    State(dash): State<Dash>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult<Response> {
    admin_only(&viewer)?;
    let id = ApiKeyId::parse(&id).map_err(|e| PageError::bad_request(e.message))?;
    let now = dash.services.clock.now();
    if !dash.services.keys.store().revoke(&id, now).await? {
        return Err(PageError::not_found(format!("Key {id} was not found.")));
    }
    tracing::info!(key_id = %id, "API key revoked from the dashboard");
    Ok(done("/keys", "revoked"))
}

//! `/api/notifications`: the inbox.

use axum::Json;
use axum::extract::{RawQuery, State};
use rez_core::ports::{DeliveryState, InboxEntry, Page};

use super::error::{ApiResult, ErrorBody};
use super::input::Query;
use crate::Services;

/// Notifications, newest first, with their delivery state.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications",
    params(("state" = Option<DeliveryState>, Query), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<InboxEntry>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<InboxEntry>>> {
    let q = Query::parse(raw.as_deref(), &["state", "limit", "cursor"])?;
    let state = q.parse_with("state", "pending, delivered, failed or inbox_only", |v| {
        serde_json::from_value::<DeliveryState>(serde_json::Value::String(v.to_owned())).ok()
    })?;
    Ok(Json(s.inbox.list_entries(state, q.limit()?, q.get("cursor").map(str::to_owned)).await?))
}

//! `/api/results`: web-action results of a message.

use axum::Json;
use axum::extract::{RawQuery, State};
use rez_core::MessageId;
use rez_core::web_action::WebActionResult;
use serde::Serialize;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::Query;
use crate::Services;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Results {
    pub items: Vec<WebActionResult>,
}

/// The results of one web-action message, oldest first (one per attempt that ran).
#[utoipa::path(get, path = "/api/results", tag = "results",
    params(("message_id" = String, Query)),
    responses((status = 200, body = Results), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Results>> {
    let q = Query::parse(raw.as_deref(), &["message_id"])?;
    let raw_id = q
        .get("message_id")
        .ok_or_else(|| ApiError::bad_request("missing_parameter", "query parameter `message_id` is required"))?;
    let id = MessageId::parse(raw_id).map_err(|e| ApiError::bad_request("invalid_id", e.message))?;
    Ok(Json(Results { items: s.results.results_for(&id).await? }))
}

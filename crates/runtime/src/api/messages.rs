//! `/api/messages`: submit, list, show, retry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rez_core::MessageId;
use rez_core::message::{CreatedBy, Message, MessageType, Stage};
use rez_core::ports::{InboxEntry, MessageFilter, Page, Submitted};
use rez_core::status::Status;
use serde::Serialize;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::{Query, json_body};
use crate::{Services, intake};

fn parse_id(raw: &str) -> ApiResult<MessageId> {
    MessageId::parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.message))
}

/// Submit a message. 202 with the stored message (status `queued`); an `Idempotency-Key`
/// seen in the last 24 h answers 200 with the first message instead.
#[utoipa::path(post, path = "/api/messages", tag = "messages",
    request_body(content = Object, description = "`{message_type, payload?, arguments?, stage?, idempotency_key?}`"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Deduplicates submissions for 24 h")),
    responses(
        (status = 202, description = "Accepted and durably queued", body = Message),
        (status = 200, description = "Idempotent replay: the first message with this key", body = Message),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<Services>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let value = json_body(&headers, body)?;
    let key = match headers.get("idempotency-key") {
        Some(v) => {
            Some(v.to_str().map_err(|_| ApiError::bad_request("invalid_field", "Idempotency-Key must be ASCII"))?)
        }
        None => None,
    };
    Ok(match intake::submit_json(&s, &value, CreatedBy::Api, key).await? {
        Submitted::Created(m) => (StatusCode::ACCEPTED, Json(m)).into_response(),
        Submitted::Existing(m) => (StatusCode::OK, [("idempotent-replayed", "true")], Json(m)).into_response(),
    })
}

/// List messages, newest first.
#[utoipa::path(get, path = "/api/messages", tag = "messages",
    params(
        ("status" = Option<Status>, Query), ("message_type" = Option<MessageType>, Query), ("stage" = Option<Stage>, Query),
        ("created_by" = Option<String>, Query), ("created_after" = Option<String>, Query, description = "RFC 3339"),
        ("created_before" = Option<String>, Query, description = "RFC 3339"),
        ("limit" = Option<usize>, Query, description = "1–100, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Message>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<Message>>> {
    let q = Query::parse(
        raw.as_deref(),
        &["status", "message_type", "stage", "created_by", "created_after", "created_before", "limit", "cursor"],
    )?;
    let time = |v: &str| chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&chrono::Utc));
    let filter = MessageFilter {
        status: q.parse_with("status", "a message status", Status::parse)?,
        message_type: q.parse_with("message_type", "a message type", MessageType::parse)?,
        stage: q.parse_with("stage", "dev, stage or prod", Stage::parse)?,
        created_by: q.parse_with("created_by", "api, cli, scheduler, mcp, agent or system", CreatedBy::parse)?,
        created_after: q.parse_with("created_after", "an RFC 3339 timestamp", time)?,
        created_before: q.parse_with("created_before", "an RFC 3339 timestamp", time)?,
        limit: q.limit()?,
        cursor: q.get("cursor").map(str::to_owned),
    };
    Ok(Json(s.messages.list_messages(&filter).await?))
}

/// A message with what happened to it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: Message,
    /// The inbox entry of a notification message.
    pub notifications: Vec<InboxEntry>,
    /// Web-action results, oldest first.
    pub results: Vec<rez_core::web_action::WebActionResult>,
}

/// One message, with its notifications and web-action results.
#[utoipa::path(get, path = "/api/messages/{id}", tag = "messages",
    params(("id" = String, Path)),
    responses((status = 200, body = MessageDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<MessageDetail>> {
    let id = parse_id(&id)?;
    let message =
        s.messages.get_message(&id).await?.ok_or_else(|| ApiError::not_found(format!("message {id} was not found")))?;
    let notifications = s.inbox.get_entry(&id).await?.into_iter().collect();
    let results = s.results.results_for(&id).await?;
    Ok(Json(MessageDetail { message, notifications, results }))
}

/// Re-queue a failed or dead-lettered message.
#[utoipa::path(post, path = "/api/messages/{id}/retry", tag = "messages",
    params(("id" = String, Path)),
    responses((status = 202, body = Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let m = s.messages.retry(&id).await?;
    tracing::info!(message_id = %id, "message re-queued by request");
    Ok((StatusCode::ACCEPTED, Json(m)).into_response())
}

//! `/api/dlq`: inspect, redrive and drop dead letters.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use rez_core::MessageId;
use rez_core::ports::{DeadLetter, Page, RedriveSelector};
use rez_core::routing::QueueName;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::{Query, json_body};
use crate::Services;

/// Dead letters, newest first.
#[utoipa::path(get, path = "/api/dlq", tag = "dlq",
    params(("queue" = Option<QueueName>, Query), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<DeadLetter>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<DeadLetter>>> {
    let q = Query::parse(raw.as_deref(), &["queue", "limit", "cursor"])?;
    let queue = q.parse_with("queue", "a queue name", QueueName::parse)?;
    Ok(Json(s.queues.dead_letters(queue, q.limit()?, q.get("cursor").map(str::to_owned)).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    pub redriven: u64,
}

/// Move dead letters back to their source queue: `{"all": true}`, `{"queue": "notifications"}`
/// or `{"ids": ["msg_…"]}`.
#[utoipa::path(post, path = "/api/dlq/redrive", tag = "dlq",
    request_body(content = Object, description = "exactly one of `all: true`, `queue`, `ids`"),
    responses((status = 200, body = Redriven), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn redrive(
    State(s): State<Services>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Redriven>> {
    let v = json_body(&headers, body)?;
    let selector = selector(&v)?;
    let redriven = s.queues.redrive(&selector).await?;
    tracing::info!(redriven, "dead letters redriven by request");
    Ok(Json(Redriven { redriven }))
}

fn selector(v: &Value) -> ApiResult<RedriveSelector> {
    let obj = v.as_object().ok_or_else(|| ApiError::bad_request("invalid_body", "expected a JSON object"))?;
    let bad =
        || ApiError::bad_request("invalid_body", "give exactly one of `all: true`, `queue: \"<name>\"` or `ids: [..]`");
    if obj.len() != 1 {
        return Err(bad());
    }
    match obj.iter().next() {
        Some((k, Value::Bool(true))) if k == "all" => Ok(RedriveSelector::All),
        Some((k, Value::String(q))) if k == "queue" => {
            QueueName::parse(q).map(RedriveSelector::Queue).ok_or_else(|| {
                ApiError::bad_request("invalid_field", format!("unknown queue `{q}`"))
                    .with_details(serde_json::json!({"field": "queue"}))
            })
        }
        Some((k, Value::Array(ids))) if k == "ids" => {
            if ids.is_empty() || ids.len() > 1000 {
                return Err(ApiError::bad_request("invalid_field", "`ids` must list 1–1000 message ids"));
            }
            ids.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().and_then(|s| MessageId::parse(s).ok()).ok_or_else(|| {
                        ApiError::bad_request("invalid_field", format!("ids[{i}] is not a message id"))
                            .with_details(serde_json::json!({"field": format!("ids[{i}]")}))
                    })
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(RedriveSelector::Ids)
        }
        _ => Err(bad()),
    }
}

/// Drop a dead letter for good.
#[utoipa::path(delete, path = "/api/dlq/{id}", tag = "dlq",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = MessageId::parse(&id).map_err(|e| ApiError::bad_request("invalid_id", e.message))?;
    if s.queues.delete_dead_letter(&id).await? {
        tracing::info!(message_id = %id, "dead letter deleted by request");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("{id} is not in a dead-letter queue")))
    }
}

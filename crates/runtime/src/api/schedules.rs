//! `/api/schedules`: manage schedules and preview expressions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rez_core::ScheduleId;
use rez_core::message::{CreatedBy, Message};
use rez_core::ports::{Page, ScheduleFilter};
use rez_core::schedule::{ScheduleExpression, Timezone};
use rez_core::schedule_spec::{SchedulePatch, ScheduleSpec};
use rez_core::schedules::{Schedule, ScheduleStatus, TargetType};
use serde::Serialize;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::{Query, json_body};
use crate::Services;
use crate::scheduling::ScheduleError;
use crate::scheduling::service::{PreviewTime, preview as preview_times};

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Invalid(v) => v.into(),
            ScheduleError::Unprocessable(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", m),
            e @ ScheduleError::TooMany { max } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_schedules", e.to_string())
                    .with_details(serde_json::json!({"max_schedules": max}))
            }
            ScheduleError::Store(s) => s.into(),
        }
    }
}

fn parse_id(raw: &str) -> ApiResult<ScheduleId> {
    ScheduleId::parse(raw).map_err(|e| ApiError::bad_request("invalid_id", e.message))
}

/// Create a schedule.
#[utoipa::path(post, path = "/api/schedules", tag = "schedules",
    request_body(content = Object, description = "`{name, schedule_expression, timezone?, target_type, target, description?, start_date?, end_date?, flexible_time_window_minutes?, retry_policy?, action_after_completion?, stage?, status?}`"),
    responses((status = 201, body = Schedule), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<Services>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let v = json_body(&headers, body)?;
    let spec = ScheduleSpec::from_json(&v, s.stage)?;
    let created = s.schedules.create(spec, CreatedBy::Api).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// List schedules, newest first (deleted ones only with `status=deleted`).
#[utoipa::path(get, path = "/api/schedules", tag = "schedules",
    params(("status" = Option<ScheduleStatus>, Query), ("target_type" = Option<TargetType>, Query),
        ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Schedule>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Page<Schedule>>> {
    let q = Query::parse(raw.as_deref(), &["status", "target_type", "limit", "cursor"])?;
    let filter = ScheduleFilter {
        status: q.parse_with("status", "active, paused, completed, deleted or error", ScheduleStatus::parse)?,
        target_type: q.parse_with("target_type", "notify, web_action, agent or message", TargetType::parse)?,
        limit: q.limit()?,
        cursor: q.get("cursor").map(str::to_owned),
    };
    Ok(Json(s.schedules.list(&filter).await?))
}

#[utoipa::path(get, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<Schedule>> {
    Ok(Json(s.schedules.get(&parse_id(&id)?).await?))
}

/// Change any of: name, description, expression, zone, dates, window, retry policy,
/// target (with its type), status (active/paused).
#[utoipa::path(patch, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    request_body(content = Object),
    responses((status = 200, body = Schedule), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<Services>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Schedule>> {
    let id = parse_id(&id)?;
    let v = json_body(&headers, body)?;
    let patch = SchedulePatch::from_json(&v)?;
    Ok(Json(s.schedules.update(&id, patch).await?))
}

#[utoipa::path(delete, path = "/api/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn remove(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.schedules.delete(&parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/schedules/{id}/pause", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn pause(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<Schedule>> {
    Ok(Json(s.schedules.pause(&parse_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn resume(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Json<Schedule>> {
    Ok(Json(s.schedules.resume(&parse_id(&id)?).await?))
}

/// Fire the schedule once now; answers with the message it created.
#[utoipa::path(post, path = "/api/schedules/{id}/run", tag = "schedules", params(("id" = String, Path)),
    responses((status = 202, body = Message), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn run(State(s): State<Services>, Path(id): Path<String>) -> ApiResult<Response> {
    let m = s.schedules.run_now(&parse_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(m)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub expression: String,
    pub timezone: String,
    pub times: Vec<PreviewTime>,
}

/// The next `count` (1–100, default 10) fire times after `from` (default now).
#[utoipa::path(get, path = "/api/schedules/preview", tag = "schedules",
    params(("expression" = String, Query), ("timezone" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "RFC 3339"), ("count" = Option<usize>, Query)),
    responses((status = 200, body = Preview), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn preview(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Preview>> {
    let q = Query::parse(raw.as_deref(), &["expression", "timezone", "from", "count"])?;
    let raw_expr = q
        .get("expression")
        .ok_or_else(|| ApiError::bad_request("missing_parameter", "query parameter `expression` is required"))?;
    let expression = ScheduleExpression::parse(raw_expr).map_err(|e| {
        ApiError::bad_request("invalid_expression", e.to_string())
            .with_details(serde_json::json!({"parameter": "expression"}))
    })?;
    let timezone = match q.get("timezone") {
        Some(t) => Timezone::parse(t).map_err(|e| ApiError::bad_request("invalid_timezone", e.message))?,
        None => Timezone::UTC,
    };
    let from = q
        .parse_with("from", "an RFC 3339 timestamp", |v| {
            chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&chrono::Utc))
        })?
        .unwrap_or_else(|| s.clock.now());
    let count = q
        .parse_with("count", "an integer from 1 to 100", |v| v.parse::<usize>().ok().filter(|n| (1..=100).contains(n)))?
        .unwrap_or(10);
    Ok(Json(Preview {
        expression: expression.to_string(),
        timezone: timezone.name().to_owned(),
        times: preview_times(&expression, timezone, from, count),
    }))
}

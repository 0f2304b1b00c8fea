//! Operational routes: health, metrics (JSON and Prometheus), the OpenAPI document.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::auth::Scope;
use rez_core::ports::QueueStats;
use serde::Serialize;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::Query;
use crate::Services;
use crate::keys::{AuthError, bearer_token};
use crate::metrics::MetricsSummary;

/// What `/api/health` tells a caller without a key: up or down, nothing else.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// `ok` or `down`.
    pub status: &'static str,
}

/// What a key with scope `read` also sees.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    /// With `deep=true`: the queues, read through the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<QueueStats>>,
}

/// Liveness; `?deep=true` also round-trips the store (a read and a write) and the queues.
/// Without a key the answer is only `{"status":"ok"}` or `503 {"status":"down"}`: the
/// version, uptime, queue depths and error text need a key with scope `read` (a load
/// balancer needs no key; an anonymous caller learns nothing about the deployment).
#[utoipa::path(get, path = "/api/health", tag = "ops",
    params(("deep" = Option<bool>, Query)),
    responses((status = 200, body = Health), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn health(State(s): State<Services>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let detailed = match bearer_token(&headers) {
        None => false,
        Some(token) => match s.keys.verify(token).await {
            Ok(p) if p.scope.allows(Scope::Read) => true,
            Ok(_) => false,
            Err(AuthError::Store(e)) => return ApiError::from(e).into_response(),
            Err(AuthError::Revoked) => return ApiError::unauthorized("this API key has been revoked").into_response(),
            Err(_) => return ApiError::unauthorized("the API key is not valid").into_response(),
        },
    };
    let checked = check(&s, raw.as_deref()).await;
    match (checked, detailed) {
        (Ok(health), true) => Json(health).into_response(),
        (Ok(_), false) => Json(HealthStatus { status: "ok" }).into_response(),
        (Err(e), true) => e.into_response(),
        // A malformed query is the caller's mistake, not the server's state.
        (Err(e), false) if e.status.is_client_error() => e.into_response(),
        (Err(_), false) => (StatusCode::SERVICE_UNAVAILABLE, Json(HealthStatus { status: "down" })).into_response(),
    }
}

async fn check(s: &Services, raw_query: Option<&str>) -> ApiResult<Health> {
    let q = Query::parse(raw_query, &["deep"])?;
    let deep = q.parse_with("deep", "true or false", |v| v.parse::<bool>().ok())?.unwrap_or(false);
    let queues = if deep {
        s.messages.ping().await.map_err(|e| ApiError::unavailable(format!("store check failed: {e}")))?;
        Some(s.queues.stats().await.map_err(|e| ApiError::unavailable(format!("queue check failed: {e}")))?)
    } else {
        None
    };
    Ok(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: s.started.elapsed().as_secs(),
        queues,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsJson {
    pub uptime_seconds: u64,
    pub queues: Vec<QueueStats>,
    #[serde(flatten)]
    pub counters: MetricsSummary,
}

/// A JSON summary: queues and counters.
#[utoipa::path(get, path = "/api/metrics", tag = "ops",
    responses((status = 200, body = MetricsJson)), security(("bearer" = [])))]
pub async fn metrics_json(State(s): State<Services>) -> ApiResult<Json<MetricsJson>> {
    let queues = s.queues.stats().await?;
    Ok(Json(MetricsJson { uptime_seconds: s.started.elapsed().as_secs(), queues, counters: s.metrics.summary() }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain")), security(("bearer" = [])))]
pub async fn metrics_prometheus(State(s): State<Services>) -> ApiResult<Response> {
    let stats = s.queues.stats().await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        s.metrics.render(&stats),
    )
        .into_response())
}

/// This document.
pub async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], super::openapi::document_json()).into_response()
}

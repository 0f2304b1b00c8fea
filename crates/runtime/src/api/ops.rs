//! Operational routes: health, metrics (JSON and Prometheus), the OpenAPI document.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::ports::QueueStats;
use serde::Serialize;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::input::Query;
use crate::Services;
use crate::metrics::MetricsSummary;

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
#[utoipa::path(get, path = "/api/health", tag = "ops",
    params(("deep" = Option<bool>, Query)),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn health(State(s): State<Services>, RawQuery(raw): RawQuery) -> ApiResult<Json<Health>> {
    let q = Query::parse(raw.as_deref(), &["deep"])?;
    let deep = q.parse_with("deep", "true or false", |v| v.parse::<bool>().ok())?.unwrap_or(false);
    let queues = if deep {
        s.messages.ping().await.map_err(|e| ApiError::unavailable(format!("store check failed: {e}")))?;
        Some(s.queues.stats().await.map_err(|e| ApiError::unavailable(format!("queue check failed: {e}")))?)
    } else {
        None
    };
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: s.started.elapsed().as_secs(),
        queues,
    }))
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

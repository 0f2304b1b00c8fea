//! The HTTP API (SPEC §4) as one axum [`Router`]. `rez serve` mounts it on its port; the
//! AWS deployment runs the same router behind `lambda_http`.

mod agent;
mod approvals;
mod auth;
mod dlq;
pub mod error;
mod input;
mod messages;
mod notifications;
pub mod openapi;
mod ops;
mod results;
mod schedules;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{delete, get, post};

use crate::Services;
pub use error::{ApiError, ErrorBody};

/// Largest accepted request body (SQS's message limit).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The whole API. Everything but `/api/health` requires a bearer key.
pub fn router(services: Services) -> Router {
    let authed = Router::new()
        .route("/api/messages", post(messages::create).get(messages::list))
        .route("/api/messages/{id}", get(messages::show))
        .route("/api/messages/{id}/retry", post(messages::retry))
        .route("/api/dlq", get(dlq::list))
        .route("/api/dlq/redrive", post(dlq::redrive))
        .route("/api/dlq/{id}", delete(dlq::remove))
        .route("/api/notifications", get(notifications::list))
        .route("/api/results", get(results::list))
        .route("/api/schedules", post(schedules::create).get(schedules::list))
        .route("/api/schedules/preview", get(schedules::preview))
        .route("/api/schedules/{id}", get(schedules::show).patch(schedules::update).delete(schedules::remove))
        .route("/api/schedules/{id}/pause", post(schedules::pause))
        .route("/api/schedules/{id}/resume", post(schedules::resume))
        .route("/api/schedules/{id}/run", post(schedules::run))
        .route("/api/agent/runs", post(agent::create).get(agent::list))
        .route("/api/agent/runs/{id}", get(agent::show))
        .route("/api/agent/runs/{id}/cancel", post(agent::cancel))
        .route("/api/agent/chat", post(agent::chat))
        .route("/api/agent/sessions/{id}", get(agent::session))
        .route("/api/agent/usage", get(agent::usage_report))
        .route("/api/approvals", get(approvals::list))
        .route("/api/approvals/{id}", get(approvals::show))
        .route("/api/metrics", get(ops::metrics_json))
        .route("/metrics", get(ops::metrics_prometheus))
        .route("/api/openapi.json", get(ops::openapi))
        .route_layer(middleware::from_fn_with_state(services.clone(), auth::require_key));
    Router::new()
        .route("/api/health", get(ops::health))
        // A push button's link carries its own proof (the token); a key works too. These
        // routes check either themselves.
        .route("/api/approvals/{id}/approve", post(approvals::approve))
        .route("/api/approvals/{id}/decline", post(approvals::decline))
        .merge(authed)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            tracing::error!("a request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .with_state(services)
}

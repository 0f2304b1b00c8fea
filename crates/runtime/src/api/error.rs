//! The API's error type and body: `{"error": {"code", "message", "details"}}` with the
//! right status. Every failure path of every handler ends here; nothing malformed
//! becomes a 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::ValidationError;
use rez_core::ports::StoreError;
use serde::Serialize;
use serde_json::Value;

use crate::intake::IntakeError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: None, www_authenticate: false }
    }

    /// The same error with another machine-readable code.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = code.to_owned();
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.www_authenticate = true;
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "insufficient_scope", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let details = serde_json::json!({ "field": e.field });
        ApiError::bad_request(e.code, e.message).with_details(details)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} was not found")),
            StoreError::IllegalTransition(t) => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", t.to_string())
            }
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::InvalidCursor => {
                ApiError::bad_request("invalid_cursor", "the cursor is not one this API returned")
            }
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "store unavailable");
                ApiError::unavailable("the store is unavailable; retry later")
            }
            StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "corrupt record");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "a stored record could not be read")
            }
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Invalid(v) => v.into(),
            IntakeError::Store(s) => s.into(),
            e @ IntakeError::TooLarge { size, limit } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "message_too_large", e.to_string())
                    .with_details(serde_json::json!({ "published_bytes": size, "limit": limit }))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, details: self.details } };
        let mut resp = (self.status, Json(body)).into_response();
        if self.www_authenticate {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"rez\""));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

//! Web actions (SPEC §6): what a `web_action` message asks for, what a handler returns,
//! and the stored result. Handlers live in `rez-actions`; the worker in `rez-runtime`
//! runs them through the [`crate::ports::WebActionHandler`] port.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::id::{MessageId, ResultId};
use crate::notify::NotifyPayload;
use crate::time::{Timestamp, serde_rfc3339};

/// Results are kept for 3 days.
pub const RESULT_TTL: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// Stored response bodies are cut to this size.
pub const MAX_RESPONSE_BODY: usize = 50 * 1024;
/// The actions a `web_action` payload may name.
pub const ACTIONS: [&str; 2] = ["weather", "golf"];

/// The validated parts of a `web_action` message a handler needs.
#[derive(Debug, Clone, PartialEq)]
pub struct WebActionRequest {
    pub message_id: MessageId,
    /// `payload.action`.
    pub action: String,
    /// `arguments.operation` (a handler may have a default).
    pub operation: Option<String>,
    pub payload: Map<String, Value>,
    pub arguments: Map<String, Value>,
    /// Delivery attempt, 1 on the first.
    pub attempt: u32,
}

impl WebActionRequest {
    /// Check the shape every web action shares: `payload.action` is known and
    /// `arguments.operation`, if present, is a string. URLs are never taken from here.
    pub fn validate_payload(
        payload: &Map<String, Value>,
        arguments: &Map<String, Value>,
    ) -> Result<(), ValidationError> {
        match payload.get("action") {
            Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => {}
            Some(Value::String(_)) => {
                return Err(ValidationError::invalid(
                    "payload.action",
                    format!("must be one of {}", ACTIONS.join(", ")),
                ));
            }
            None | Some(Value::Null) => return Err(ValidationError::missing("payload.action")),
            Some(_) => return Err(ValidationError::invalid("payload.action", "must be a string")),
        }
        match arguments.get("operation") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(ValidationError::invalid("arguments.operation", "must be a string")),
        }
        for key in ["url", "endpoint", "base_url", "host"] {
            if payload.contains_key(key) || arguments.contains_key(key) {
                return Err(ValidationError::invalid(
                    key,
                    "web actions never take URLs from the request; they come from the action's configuration",
                ));
            }
        }
        Ok(())
    }
}

/// What a handler produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebActionOutput {
    /// Structured output, stored in the result.
    pub output: Value,
    /// Notifications to publish (as `notify` messages).
    pub notifications: Vec<NotifyPayload>,
    /// The outside API's status code and body of the main call, if meaningful.
    pub response_code: Option<u16>,
    pub response_body: Option<String>,
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebActionErrorKind {
    /// Worth retrying (timeouts, 5xx, throttling).
    Transient,
    /// Retrying cannot help (bad input, unknown course, missing credentials).
    Permanent,
    /// The outside service refused because of existing state (e.g. "already have a
    /// reservation"): reported, never retried.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct WebActionError {
    pub kind: WebActionErrorKind,
    pub message: String,
    /// Notifications to publish even though the action failed (e.g. a conflict).
    pub notifications: Vec<NotifyPayload>,
    /// A transient failure that knows when trying again makes sense (a booking waiting
    /// for its next reservations lookup): the message is handed back to the queue for
    /// that long instead of counting as a failed receive.
    pub retry_after: Option<std::time::Duration>,
}

impl WebActionError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: WebActionErrorKind::Transient, message: message.into(), notifications: vec![], retry_after: None }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: WebActionErrorKind::Permanent, message: message.into(), notifications: vec![], retry_after: None }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self { kind: WebActionErrorKind::Conflict, message: message.into(), notifications: vec![], retry_after: None }
    }
    /// Not done yet, and not a failure: deliver the message again after `after`.
    pub fn later(message: impl Into<String>, after: std::time::Duration) -> Self {
        Self { retry_after: Some(after), ..Self::transient(message) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Success,
    Failed,
    Conflict,
}

/// A stored web-action result (SPEC §6.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebActionResult {
    pub id: ResultId,
    pub message_id: MessageId,
    pub action: String,
    pub operation: String,
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    /// At most [`MAX_RESPONSE_BODY`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[schema(value_type = Object)]
    pub output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub execution_time_ms: u64,
    /// Which delivery attempt produced it.
    pub attempt: u32,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date: Timestamp,
    /// When the result expires (created + 3 days).
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ttl: Timestamp,
}

/// Cut `body` to at most [`MAX_RESPONSE_BODY`] bytes on a character boundary.
pub fn cap_body(body: &str) -> String {
    if body.len() <= MAX_RESPONSE_BODY {
        return body.to_owned();
    }
    let mut end = MAX_RESPONSE_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_shape() {
        let ok = json!({"action": "golf", "course": "birdsfoot"});
        let args = json!({"operation": "search_tee_times"});
        WebActionRequest::validate_payload(ok.as_object().unwrap(), args.as_object().unwrap()).unwrap();
        for (p, a, field) in [
            (json!({}), json!({}), "payload.action"),
            (json!({"action": "email"}), json!({}), "payload.action"),
            (json!({"action": "weather"}), json!({"operation": 1}), "arguments.operation"),
            (json!({"action": "weather", "url": "http://169.254.169.254/"}), json!({}), "url"),
        ] {
            let e = WebActionRequest::validate_payload(p.as_object().unwrap(), a.as_object().unwrap()).unwrap_err();
            assert_eq!(e.field, field);
        }
    }

    #[test]
    fn bodies_are_capped_on_char_boundaries() {
        let s = "é".repeat(MAX_RESPONSE_BODY);
        let c = cap_body(&s);
        assert!(c.len() <= MAX_RESPONSE_BODY);
        assert!(c.chars().all(|ch| ch == 'é'));
    }
}

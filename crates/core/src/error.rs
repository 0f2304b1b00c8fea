//! Validation errors of the domain. They carry a machine-readable code, a message a
//! person can act on, and the JSON path of the offending field, so the API can turn
//! them into `400`/`422` bodies without guessing.

use serde::Serialize;

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Stable machine-readable code, e.g. `invalid_field`, `missing_field`, `unknown_message_type`.
    pub code: &'static str,
    /// JSON path of the field, e.g. `payload.priority`.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ValidationError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("`{field}` is required");
        Self { code: "missing_field", field, message }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("invalid_field", field, message)
    }
}

//! Accepting a message: validate the body, mint the message, store-and-route it through
//! the `MessageStore` port. The API, the CLI and (later) MCP tools all come through here.

use rez_core::ValidationError;
use rez_core::message::{CreatedBy, IdempotencyKey, MAX_ACCEPTED_PUBLISHED_BYTES, Message, NewMessage};
use rez_core::ports::{StoreError, Submitted};
use serde_json::Value;

use crate::Services;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message's published form would exceed what the transport carries.
    #[error("the message would be {size} bytes as published; at most {limit} bytes are accepted")]
    TooLarge { size: usize, limit: usize },
}

/// Validate `body` and submit it. `header_key` is the `Idempotency-Key` header; if the
/// body also names a key, both must agree.
pub async fn submit_json(
    services: &Services,
    body: &Value,
    created_by: CreatedBy,
    header_key: Option<&str>,
) -> Result<Submitted, IntakeError> {
    let mut new = NewMessage::from_json(body, services.stage)?;
    if let Some(h) = header_key {
        let key = IdempotencyKey::parse(h).map_err(|e| ValidationError::new(e.code, "Idempotency-Key", e.message))?;
        match &new.idempotency_key {
            Some(k) if k != &key => {
                return Err(ValidationError::invalid(
                    "idempotency_key",
                    "the Idempotency-Key header and the body's idempotency_key differ",
                )
                .into());
            }
            _ => new.idempotency_key = Some(key),
        }
    }
    submit(services, new, created_by).await
}

/// Submit an already validated message.
pub async fn submit(services: &Services, new: NewMessage, created_by: CreatedBy) -> Result<Submitted, IntakeError> {
    let message = Message::create(new, created_by, services.clock.now());
    // Checked before anything is stored: a message the transport cannot carry would
    // otherwise be accepted and then never delivered.
    let size = message.published_bytes();
    if size > MAX_ACCEPTED_PUBLISHED_BYTES {
        return Err(IntakeError::TooLarge { size, limit: MAX_ACCEPTED_PUBLISHED_BYTES });
    }
    let out = services.messages.submit(message).await?;
    match &out {
        Submitted::Created(m) => {
            services.metrics.accepted(m.message_type);
            tracing::debug!(message_id = %m.id, message_type = %m.message_type, "message accepted");
        }
        Submitted::Existing(m) => tracing::debug!(message_id = %m.id, "idempotent replay"),
    }
    Ok(out)
}

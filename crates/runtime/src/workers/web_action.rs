//! The web-action worker: runs the handler registered for a message's `payload.action`
//! (weather, golf) and operation, stores the result (SPEC §6.5) and publishes the
//! handler's notifications as `notify` messages.
//!
//! Redelivery: notifications carry idempotency keys derived from the message id, and are
//! published *before* the result is stored; a stored success (or conflict) therefore
//! means everything was done, and a redelivered message with one is completed without
//! running again. Side-effecting handlers (golf booking) are idempotent on the message
//! id themselves, so a run interrupted before its result was stored is safe to repeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use rez_core::ResultId;
use rez_core::message::{CreatedBy, IdempotencyKey, Message, MessageType, NewMessage};
use rez_core::notify::NotifyPayload;
use rez_core::ports::{ResultStore, WebActionHandler};
use rez_core::web_action::{RESULT_TTL, ResultStatus, WebActionErrorKind, WebActionRequest, WebActionResult, cap_body};
use serde_json::Value;

use super::{Handled, Handler, HandlerError};
use crate::{Services, intake};

pub struct WebActionWorker {
    handlers: HashMap<&'static str, Arc<dyn WebActionHandler>>,
    results: Arc<dyn ResultStore>,
    services: Services,
}

impl WebActionWorker {
    pub fn new(handlers: Vec<Arc<dyn WebActionHandler>>, results: Arc<dyn ResultStore>, services: Services) -> Self {
        Self { handlers: handlers.into_iter().map(|h| (h.action(), h)).collect(), results, services }
    }

    /// Publish `notifications` as `notify` messages, idempotently per (message, index).
    async fn publish(&self, source: &Message, notifications: &[NotifyPayload]) -> Result<(), HandlerError> {
        for (i, n) in notifications.iter().enumerate() {
            let payload = match serde_json::to_value(n) {
                Ok(Value::Object(m)) => m,
                _ => return Err(HandlerError::permanent("a notification could not be encoded")),
            };
            let mut arguments = serde_json::Map::new();
            arguments.insert("source_message_id".into(), Value::String(source.id.to_string()));
            let key = IdempotencyKey::parse(&format!("{}/notify/{i}", source.id))
                .map_err(|e| HandlerError::permanent(e.message))?;
            let new = NewMessage {
                message_type: MessageType::Notify,
                stage: source.stage,
                payload,
                arguments,
                idempotency_key: Some(key),
            };
            new.validate_payload()
                .map_err(|e| HandlerError::permanent(format!("handler produced an invalid notification: {e}")))?;
            intake::submit(&self.services, new, CreatedBy::System)
                .await
                .map_err(|e| HandlerError::transient(format!("publishing a notification: {e}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for WebActionWorker {
    async fn handle(&self, message: &Message, receive_count: u32) -> Result<Handled, HandlerError> {
        WebActionRequest::validate_payload(&message.payload, &message.arguments)
            .map_err(|e| HandlerError::permanent(format!("invalid web action: {e}")))?;
        let action = message.payload.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
        let handler = self
            .handlers
            .get(action.as_str())
            .ok_or_else(|| HandlerError::permanent(format!("no handler is configured for action `{action}`")))?;
        let operation = match message.arguments.get("operation").and_then(Value::as_str) {
            Some(op) if handler.operations().contains(&op) => op.to_owned(),
            Some(op) => {
                return Err(HandlerError::permanent(format!(
                    "unknown {action} operation `{op}`; expected one of {}",
                    handler.operations().join(", ")
                )));
            }
            None => handler.operations().first().map(|s| (*s).to_owned()).unwrap_or_default(),
        };
        let store_err = |e: rez_core::ports::StoreError| HandlerError::transient(format!("results: {e}"));
        let done = self.results.results_for(&message.id).await.map_err(store_err)?;
        if done.iter().any(|r| matches!(r.status, ResultStatus::Success | ResultStatus::Conflict)) {
            tracing::info!(message_id = %message.id, "web action already done; not running it again");
            return Ok(Handled::Done);
        }
        let request = WebActionRequest {
            message_id: message.id.clone(),
            action: action.clone(),
            operation: Some(operation.clone()),
            payload: message.payload.clone(),
            arguments: message.arguments.clone(),
            attempt: receive_count,
        };
        let started = Instant::now();
        let outcome = handler.execute(&request).await;
        let now = self.services.clock.now();
        let mut result = WebActionResult {
            id: ResultId::new(now),
            message_id: message.id.clone(),
            action: action.clone(),
            operation: operation.clone(),
            status: ResultStatus::Success,
            response_code: None,
            response_body: None,
            output: Value::Null,
            error_message: None,
            execution_time_ms: started.elapsed().as_millis() as u64,
            attempt: receive_count,
            created_date: now,
            ttl: now + RESULT_TTL,
        };
        match outcome {
            Ok(out) => {
                self.publish(message, &out.notifications).await?;
                result.output = out.output;
                result.response_code = out.response_code;
                result.response_body = out.response_body.as_deref().map(cap_body);
                self.results.put_result(&result).await.map_err(store_err)?;
                tracing::info!(message_id = %message.id, action, operation, ms = result.execution_time_ms, "web action done");
                Ok(Handled::Done)
            }
            // Not finished, and not a failure: no result until it is.
            Err(e) if let Some(after) = e.retry_after.filter(|_| e.kind == WebActionErrorKind::Transient) => {
                tracing::info!(message_id = %message.id, action, operation, retry_after_ms = after.as_millis() as u64, reason = %e.message, "web action continues later");
                Err(HandlerError::later(e.message, after))
            }
            Err(e) => {
                result.error_message = Some(e.message.clone());
                result.status =
                    if e.kind == WebActionErrorKind::Conflict { ResultStatus::Conflict } else { ResultStatus::Failed };
                if e.kind != WebActionErrorKind::Transient {
                    self.publish(message, &e.notifications).await?;
                }
                self.results.put_result(&result).await.map_err(store_err)?;
                match e.kind {
                    // Reported to the user (the result and a notification), never retried.
                    WebActionErrorKind::Conflict => {
                        tracing::warn!(message_id = %message.id, action, operation, error = %e.message, "web action conflict");
                        Ok(Handled::Done)
                    }
                    WebActionErrorKind::Transient => Err(HandlerError::transient(e.message)),
                    WebActionErrorKind::Permanent => Err(HandlerError::permanent(e.message)),
                }
            }
        }
    }
}

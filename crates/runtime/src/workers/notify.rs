//! The notification processor: delivers `notify` (and `hello_world`) messages to the
//! push server and records every notification in the inbox.
//!
//! Idempotency: before pushing a redelivered message, the inbox entry for the message id
//! is read; if a push was already recorded as delivered, the message is completed
//! without pushing again. A first delivery ever (`ports::is_first_delivery`: receive
//! count 1, never retried, redriven or failed) cannot have an earlier push, so it skips
//! that read (one database read per notification, most of them). A successful push is recorded together with the delivery's completion
//! ([`Handled::Notified`] → `Queues::complete_notified`, one transaction locally), so the
//! only window for a duplicate is between the push server's answer and that commit —
//! one group commit, a few milliseconds.

use std::sync::Arc;

use async_trait::async_trait;
use rez_core::message::{Message, MessageType};
use rez_core::notify::NotifyPayload;
use rez_core::ports::{AttemptOutcome, DeliveryState, Inbox, Notifier, PushError, is_first_delivery};

use super::{Handled, Handler, HandlerError};
use crate::metrics::Metrics;

pub struct NotificationProcessor {
    inbox: Arc<dyn Inbox>,
    notifier: Option<Arc<dyn Notifier>>,
    metrics: Arc<Metrics>,
}

impl NotificationProcessor {
    pub fn new(inbox: Arc<dyn Inbox>, notifier: Option<Arc<dyn Notifier>>, metrics: Arc<Metrics>) -> Self {
        Self { inbox, notifier, metrics }
    }
}

/// The notification a message asks for.
pub fn notification_of(message: &Message) -> Result<NotifyPayload, HandlerError> {
    match message.message_type {
        MessageType::Notify => NotifyPayload::from_payload(&message.payload)
            .map_err(|e| HandlerError::permanent(format!("invalid notify payload: {e}"))),
        MessageType::HelloWorld => {
            let text = message.payload.get("message").and_then(|v| v.as_str()).unwrap_or("Hello, world");
            let mut n = NotifyPayload::text(text);
            n.title = Some(format!("rez_agent - {}", message.stage));
            Ok(n)
        }
        other => Err(HandlerError::permanent(format!("the notification processor does not handle `{other}` messages"))),
    }
}

#[async_trait]
impl Handler for NotificationProcessor {
    async fn handle(&self, message: &Message, receive_count: u32) -> Result<Handled, HandlerError> {
        let notification = notification_of(message)?;
        let store_err = |e: rez_core::ports::StoreError| HandlerError::transient(format!("inbox: {e}"));
        if !is_first_delivery(message, receive_count)
            && let Some(entry) = self.inbox.get_entry(&message.id).await.map_err(store_err)?
            && matches!(entry.state, DeliveryState::Delivered | DeliveryState::InboxOnly)
        {
            tracing::info!(message_id = %message.id, "push already recorded; not pushing again");
            self.metrics.pushed("skipped_duplicate");
            return Ok(Handled::Done);
        }
        let Some(notifier) = &self.notifier else {
            self.metrics.pushed("inbox_only");
            return Ok(Handled::Notified { notification, outcome: AttemptOutcome::InboxOnly });
        };
        match notifier.push(&message.id, &notification).await {
            Ok(receipt) => {
                self.metrics.pushed("delivered");
                tracing::debug!(message_id = %message.id, "notification delivered");
                // Recorded by the pool with the completion, in one write.
                Ok(Handled::Notified { notification, outcome: AttemptOutcome::Delivered { push_id: receipt.push_id } })
            }
            Err(e) => {
                self.metrics.pushed("failed");
                let text = e.to_string();
                // Recording the failure is best effort: the queue keeps the error too.
                if let Err(re) =
                    self.inbox.record(&message.id, &notification, AttemptOutcome::Failed { error: text.clone() }).await
                {
                    tracing::warn!(message_id = %message.id, error = %re, "could not record failed attempt");
                }
                Err(match e {
                    PushError::Transient { .. } => HandlerError::transient(text),
                    PushError::Permanent { .. } => HandlerError::permanent(text),
                })
            }
        }
    }
}

//! Queue consumers. A [`Handler`] knows how to process one message; a [`pool`] runs
//! handlers for one queue with bounded concurrency. The same handlers run in the AWS
//! deployment, where Lambda's SQS event source replaces the pool.

pub mod notify;
pub mod pool;
pub mod web_action;

use std::time::Duration;

use async_trait::async_trait;
use rez_core::Message;
use rez_core::notify::NotifyPayload;
use rez_core::ports::{AttemptOutcome, FailureKind};

/// Why handling a message failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub kind: FailureKind,
    pub message: String,
    /// Not a failure: the handler made progress and its next step is due after this
    /// long, so the delivery is deferred (`Queues::defer`) instead of failed.
    pub defer: Option<Duration>,
}

impl HandlerError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: FailureKind::Transient, message: message.into(), defer: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: FailureKind::Permanent, message: message.into(), defer: None }
    }

    /// Deliver the message again after `after`, without counting this receive.
    pub fn later(message: impl Into<String>, after: Duration) -> Self {
        Self { defer: Some(after), ..Self::transient(message) }
    }
}

/// What a handler did, for settling its delivery.
#[derive(Debug, Clone)]
pub enum Handled {
    /// Nothing left but to complete the delivery.
    Done,
    /// A notification attempt to record with the completion, in the same write
    /// (`Queues::complete_notified`): the push's record costs no write of its own.
    Notified { notification: NotifyPayload, outcome: AttemptOutcome },
}

/// Processes one message. Must be idempotent: the same message may arrive again after a
/// crash, a timeout or a retry.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, message: &Message, receive_count: u32) -> Result<Handled, HandlerError>;
}

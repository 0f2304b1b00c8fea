//! Submitting the message a tool call acts through, and waiting (bounded) for the worker
//! that handles it to settle it. The message is the durable record of the call; waiting
//! only shapes the answer: a tool whose work is still running answers with the message id
//! and the work carries on.

use std::time::Duration;

use rez_core::message::{Message, NewMessage};
use rez_core::status::Status;
use rez_core::web_action::WebActionResult;
use tokio::time::Instant;

use super::{ToolResult, Tools};
use crate::intake::{self, IntakeError};

/// Where a submitted message stood when the tool stopped waiting.
pub(crate) enum Settled {
    /// `completed`, with its web-action results (oldest first).
    Completed { message: Message, results: Vec<WebActionResult> },
    /// `dead_lettered`: it failed for good.
    Failed { message: Message, results: Vec<WebActionResult> },
    /// Still queued, processing or waiting for a retry when the wait ended.
    Pending { message: Message, picked_up: bool },
}

/// A tool-facing message for an intake refusal (the field names of a message body are
/// not the tool's field names, so the payload/arguments prefixes are dropped).
pub(crate) fn intake_error(e: IntakeError) -> ToolResult {
    match e {
        IntakeError::Invalid(v) => {
            let field =
                v.field.strip_prefix("payload.").or_else(|| v.field.strip_prefix("arguments.")).unwrap_or(&v.field);
            ToolResult::error(format!("{field}: {}", v.message))
        }
        IntakeError::Store(s) => ToolResult::error(format!("rez could not accept the request right now: {s}")),
        e @ IntakeError::TooLarge { .. } => ToolResult::error(e.to_string()),
    }
}

impl Tools<'_> {
    /// Submit `new` as created by the caller and wait up to `wait` for it to settle.
    /// The caller's idempotency key, if it has one, replaces the tool's.
    pub(crate) async fn submit_and_wait(&self, mut new: NewMessage, wait: Duration) -> Result<Settled, ToolResult> {
        if let Some(key) = &self.ctx.idempotency_key {
            new.idempotency_key = Some(key.clone());
        }
        let submitted = intake::submit(self.services, new, self.ctx.created_by).await.map_err(intake_error)?;
        let first = submitted.into_message();
        let id = first.id.clone();
        let started = Instant::now();
        let deadline = started + wait;
        let mut last = first;
        loop {
            match last.status {
                Status::Completed | Status::DeadLettered => {
                    let results =
                        self.services.results.results_for(&id).await.map_err(|e| {
                            ToolResult::error_for(id.clone(), format!("reading the result failed: {e}"))
                        })?;
                    return Ok(if last.status == Status::Completed {
                        Settled::Completed { message: last, results }
                    } else {
                        Settled::Failed { message: last, results }
                    });
                }
                _ => {}
            }
            let now = Instant::now();
            // Never received by anyone: no worker is running on this data directory.
            let unclaimed = last.status == Status::Queued && last.retry_count == 0;
            if now >= deadline || (unclaimed && now >= started + self.options.pickup_grace) {
                return Ok(Settled::Pending { picked_up: !unclaimed, message: last });
            }
            // Poll quickly at first (most actions take well under a second), then less often.
            let pause = if now < started + Duration::from_secs(2) { self.options.poll } else { self.options.poll * 3 };
            tokio::time::sleep(pause.min(deadline - now)).await;
            last = match self.services.messages.get_message(&id).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(ToolResult::error_for(id, "the message vanished while waiting for it")),
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "reading a message while waiting failed");
                    continue;
                }
            };
        }
    }
}

/// The answer for work still running when the wait ended.
pub(crate) fn pending_text(message: &Message, picked_up: bool) -> String {
    if picked_up {
        format!(
            "Still running: message {} is {}. Ask for it later with get_message_status.",
            message.id, message.status
        )
    } else {
        format!(
            "Queued as message {}, but no worker has picked it up yet (is `rez serve` running on this data \
             directory?). It runs as soon as one does; ask for it with get_message_status.",
            message.id
        )
    }
}

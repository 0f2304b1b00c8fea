//! What happens once a run has ended: its outcome is pushed to the user (unless the run
//! said `notify: false`; a run stopped by the budget always tells), and a chat run's
//! exchange is added to its session. Both are idempotent — the push is a `notify`
//! message whose idempotency key is derived from the run, the exchange is keyed by the
//! run — so a delivery that finds the run already ended simply does them again.

use rez_core::agent::run::ChatExchange;
use rez_core::agent::{AgentRun, RunStatus};
use rez_core::message::{CreatedBy, IdempotencyKey, MessageType, NewMessage};
use rez_core::notify::MAX_MESSAGE_BYTES;
use serde_json::{Map, Value, json};

use super::AgentPorts;
use crate::Services;
use crate::intake::{self, IntakeError};
use crate::workers::HandlerError;

/// The push and the session exchange of an ended run.
pub async fn after_end(services: &Services, ports: &AgentPorts, run: &AgentRun) -> Result<(), HandlerError> {
    if run.request.notify || run.status == RunStatus::BudgetExceeded {
        let new = notification(services, run);
        match intake::submit(services, new, CreatedBy::Agent).await {
            Ok(_) => {}
            Err(IntakeError::Store(e)) => {
                return Err(HandlerError::transient(format!("queueing the outcome push: {e}")));
            }
            Err(e) => tracing::error!(error = %e, "the outcome push was refused"),
        }
    }
    if let Some(session) = &run.session_id {
        let exchange = ChatExchange {
            run_id: run.id.clone(),
            user: run.request.prompt.clone(),
            assistant: reply(run),
            at: run.finished_at.unwrap_or(run.updated_at),
        };
        ports
            .runs
            .append_exchange(session, &exchange)
            .await
            .map_err(|e| HandlerError::transient(format!("recording the chat exchange: {e}")))?;
    }
    Ok(())
}

/// What the user is told the run answered.
pub fn reply(run: &AgentRun) -> String {
    match (&run.answer, &run.error) {
        (Some(a), None) => a.clone(),
        (Some(a), Some(e)) => format!("{a}\n\n({e})"),
        (None, Some(e)) => format!("The run ended {}: {e}", run.status),
        (None, None) => format!("The run ended {}.", run.status),
    }
}

fn notification(services: &Services, run: &AgentRun) -> NewMessage {
    let (title, priority, tag) = match run.status {
        RunStatus::Completed => ("rez agent: done", 3, "white_check_mark"),
        RunStatus::MaxTurns => ("rez agent: stopped after its last turn", 4, "warning"),
        RunStatus::BudgetExceeded => ("rez agent: budget reached", 4, "money_with_wings"),
        RunStatus::Cancelled => ("rez agent: cancelled", 3, "no_entry"),
        RunStatus::ApprovalExpired => ("rez agent: approval expired", 3, "hourglass"),
        _ => ("rez agent: failed", 4, "x"),
    };
    let mut text = reply(run);
    if text.len() > MAX_MESSAGE_BYTES - 64 {
        let mut end = MAX_MESSAGE_BYTES - 64;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    let mut payload = Map::new();
    payload.insert("title".into(), Value::String(title.into()));
    payload.insert("message".into(), Value::String(text));
    payload.insert("priority".into(), json!(priority));
    payload.insert("tags".into(), json!([tag, "robot"]));
    let mut arguments = Map::new();
    arguments.insert("run_id".into(), Value::String(run.id.to_string()));
    NewMessage {
        message_type: MessageType::Notify,
        stage: services.stage,
        payload,
        arguments,
        idempotency_key: IdempotencyKey::parse(&format!("{}.outcome", run.id)).ok(),
    }
}

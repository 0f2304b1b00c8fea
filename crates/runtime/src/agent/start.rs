//! Starting a run: the request becomes an `agent_response` message (durable and queued in
//! one step, like every message) and the run's record is stored at once, so the caller can
//! follow it by id. Should the record's write fail after the message was accepted, the
//! worker creates the same record when it takes the message: the run is never lost.

use rez_core::agent::{AgentRequest, AgentRun};
use rez_core::id::{ChatSessionId, ScheduleId};
use rez_core::message::{CreatedBy, IdempotencyKey, Message, MessageType, NewMessage};
use rez_core::ports::StoreError;
use serde_json::{Map, Value};

use super::worker::run_for_message;
use crate::Services;
use crate::intake::{self, IntakeError};

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the agent is off: set REZ_AGENT_PROVIDER (anthropic, openai or bedrock) and REZ_AGENT_MODEL")]
    Off,
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a run comes from, besides its request.
#[derive(Debug, Clone, Default)]
pub struct RunOrigin {
    pub schedule_id: Option<ScheduleId>,
    pub scheduled_time: Option<String>,
    pub session_id: Option<ChatSessionId>,
    /// Makes starting idempotent: the same key within 24 h is the same run.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The `agent_response` message that carries a run of `request`.
pub fn run_message(services: &Services, request: &AgentRequest, origin: &RunOrigin) -> NewMessage {
    let mut arguments = Map::new();
    if let Some(s) = &origin.schedule_id {
        arguments.insert("schedule_id".into(), Value::String(s.to_string()));
    }
    if let Some(t) = &origin.scheduled_time {
        arguments.insert("scheduled_time".into(), Value::String(t.clone()));
    }
    if let Some(s) = &origin.session_id {
        arguments.insert("session_id".into(), Value::String(s.to_string()));
    }
    NewMessage {
        message_type: MessageType::AgentResponse,
        stage: services.stage,
        payload: request.to_object(),
        arguments,
        idempotency_key: origin.idempotency_key.clone(),
    }
}

/// Accept a run: queue its message and record it. Answers the run as stored (for an
/// idempotent repeat, the first one) and its message.
pub async fn start_run(
    services: &Services,
    request: &AgentRequest,
    origin: &RunOrigin,
    created_by: CreatedBy,
) -> Result<(AgentRun, Message), StartError> {
    let ports = services.agent.as_ref().ok_or(StartError::Off)?;
    let settings = ports.settings.as_ref().ok_or(StartError::Off)?;
    let message = intake::submit(services, run_message(services, request, origin), created_by).await?.into_message();
    let run = run_for_message(&message, &settings.provider, &settings.model)
        .map_err(|e| StartError::Intake(IntakeError::Store(StoreError::Corrupt(e.message))))?;
    let (run, _) = ports.runs.create_run(&run).await?;
    tracing::info!(run_id = %run.id, message_id = %message.id, created_by = %created_by, "agent run accepted");
    Ok((run, message))
}

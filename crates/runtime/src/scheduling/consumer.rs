//! The consumer of the schedule-creation queue: `schedule_creation` messages (the seed's
//! way to manage schedules through the bus: `arguments.action` = create, update, delete,
//! pause, resume, execute; `run_now` after create) and fired `scheduled` messages (an
//! `agent` schedule's firing becomes an agent run).
//!
//! A malformed message fails permanently with an error that says what is wrong; nothing
//! here can panic on input.

use async_trait::async_trait;
use rez_core::ScheduleId;
use rez_core::message::{CreatedBy, Message, MessageType};
use rez_core::ports::StoreError;
use rez_core::schedule_spec::{SchedulePatch, ScheduleSpec};
use serde_json::{Map, Value};

use rez_core::agent::AgentRequest;
use rez_core::id::RunId;
use rez_core::message::IdempotencyKey;

use super::service::{ScheduleError, Schedules};
use crate::Services;
use crate::agent::start::{RunOrigin, run_message};
use crate::intake::{self, IntakeError};
use crate::workers::{Handled, Handler, HandlerError};

pub struct ScheduleConsumer {
    schedules: Schedules,
    services: Services,
}

impl ScheduleConsumer {
    pub fn new(services: Services) -> Self {
        Self { schedules: services.schedules.clone(), services }
    }

    /// A fired `agent` schedule: its run, as an `agent_response` message on the agent
    /// queue. The key is derived from the fired message, so a redelivery of it is the
    /// same run.
    async fn start_agent_run(&self, m: &Message) -> Result<Handled, HandlerError> {
        let request =
            AgentRequest::from_json(&m.payload, "payload").map_err(|e| HandlerError::permanent(e.to_string()))?;
        let arg = |k: &str| m.arguments.get(k).and_then(Value::as_str);
        let origin = RunOrigin {
            schedule_id: arg("schedule_id").and_then(|s| ScheduleId::parse(s).ok()),
            scheduled_time: arg("scheduled_time").map(str::to_owned),
            session_id: None,
            idempotency_key: IdempotencyKey::parse(&format!("{}.run", m.id)).ok(),
        };
        let new = run_message(&self.services, &request, &origin);
        match intake::submit(&self.services, new, CreatedBy::Scheduler).await {
            Ok(submitted) => {
                let run = RunId::for_message(&submitted.message().id);
                tracing::info!(message_id = %m.id, run_id = %run, "scheduled agent run queued");
                Ok(Handled::Done)
            }
            Err(IntakeError::Store(e)) => Err(HandlerError::transient(format!("queueing the agent run: {e}"))),
            Err(e) => Err(HandlerError::permanent(format!("the agent run was refused: {e}"))),
        }
    }
}

fn to_handler(e: ScheduleError) -> HandlerError {
    match e {
        ScheduleError::Store(StoreError::Unavailable(m)) => HandlerError::transient(m),
        ScheduleError::Store(StoreError::Conflict(m)) => HandlerError::transient(m),
        other => HandlerError::permanent(other.to_string()),
    }
}

const ACTIONS: [&str; 6] = ["create", "update", "delete", "pause", "resume", "execute"];
/// Keys of `arguments` that steer the action rather than describe the schedule.
const CONTROL: [&str; 3] = ["action", "run_now", "schedule_id"];

fn schedule_id(args: &Map<String, Value>) -> Result<ScheduleId, HandlerError> {
    match args.get("schedule_id") {
        Some(Value::String(s)) => {
            ScheduleId::parse(s).map_err(|e| HandlerError::permanent(format!("arguments.schedule_id: {}", e.message)))
        }
        None | Some(Value::Null) => Err(HandlerError::permanent("arguments.schedule_id is required for this action")),
        Some(_) => Err(HandlerError::permanent("arguments.schedule_id must be a string")),
    }
}

/// The schedule fields of a `schedule_creation` message: `arguments` minus the control
/// keys; the target is `arguments.target`, or else the message's `payload`.
fn schedule_fields(m: &Message) -> Map<String, Value> {
    let mut fields: Map<String, Value> = m
        .arguments
        .iter()
        .filter(|(k, _)| !CONTROL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !fields.contains_key("target") && !m.payload.is_empty() {
        fields.insert("target".into(), Value::Object(m.payload.clone()));
    }
    fields
}

#[async_trait]
impl Handler for ScheduleConsumer {
    async fn handle(&self, m: &Message, _receive_count: u32) -> Result<Handled, HandlerError> {
        match m.message_type {
            MessageType::ScheduleCreation => self.manage(m).await.map(|()| Handled::Done),
            MessageType::Scheduled => match m.arguments.get("operation").and_then(Value::as_str) {
                Some("agentEvent") => self.start_agent_run(m).await,
                other => Err(HandlerError::permanent(format!(
                    "a scheduled message needs arguments.operation = \"agentEvent\" (got {other:?})"
                ))),
            },
            other => Err(HandlerError::permanent(format!("the scheduler does not handle `{other}` messages"))),
        }
    }
}

impl ScheduleConsumer {
    async fn manage(&self, m: &Message) -> Result<(), HandlerError> {
        let action = match m.arguments.get("action") {
            Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => a.as_str(),
            other => {
                return Err(HandlerError::permanent(format!(
                    "arguments.action must be one of {} (got {})",
                    ACTIONS.join(", "),
                    other.map(Value::to_string).unwrap_or_else(|| "nothing".into())
                )));
            }
        };
        let s = &self.schedules;
        match action {
            "create" => {
                let spec = ScheduleSpec::from_object(&schedule_fields(m), m.stage)
                    .map_err(|e| HandlerError::permanent(format!("invalid schedule: {e}")))?;
                let created = s.create(spec, CreatedBy::Scheduler).await.map_err(to_handler)?;
                tracing::info!(message_id = %m.id, schedule_id = %created.id, "schedule created from a message");
                if m.arguments.get("run_now").and_then(Value::as_bool) == Some(true) {
                    s.run_now(&created.id).await.map_err(to_handler)?;
                }
                Ok(())
            }
            "update" => {
                let id = schedule_id(&m.arguments)?;
                let patch = SchedulePatch::from_object(&schedule_fields(m))
                    .map_err(|e| HandlerError::permanent(format!("invalid update: {e}")))?;
                s.update(&id, patch).await.map(|_| ()).map_err(to_handler)
            }
            "delete" => s.delete(&schedule_id(&m.arguments)?).await.map(|_| ()).map_err(to_handler),
            "pause" => s.pause(&schedule_id(&m.arguments)?).await.map(|_| ()).map_err(to_handler),
            "resume" => s.resume(&schedule_id(&m.arguments)?).await.map(|_| ()).map_err(to_handler),
            "execute" => s.run_now(&schedule_id(&m.arguments)?).await.map(|_| ()).map_err(to_handler),
            _ => Err(HandlerError::permanent("unknown action")),
        }
    }
}

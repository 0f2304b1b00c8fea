//! The consumer of the agent queue: each `agent_response` message is one run (its id is
//! the message's ULID). The first delivery creates the run's record if the caller did not
//! (a schedule's firing, a crash between accepting and recording); every delivery then
//! drives the run from where its steps stand.

use async_trait::async_trait;
use rez_core::Message;
use rez_core::agent::{AgentRequest, AgentRun};
use rez_core::id::{ChatSessionId, RunId, ScheduleId};
use rez_core::ports::MAX_RECEIVES;
use serde_json::Value;

use super::Agent;
use crate::workers::{Handled, Handler, HandlerError};

/// The agent queue's handler.
pub struct AgentWorker {
    agent: Agent,
}

impl AgentWorker {
    pub fn new(agent: Agent) -> Self {
        Self { agent }
    }
}

/// The run an `agent_response` message stands for, as a new record.
pub fn run_for_message(m: &Message, provider: &str, model: &str) -> Result<AgentRun, HandlerError> {
    let request = AgentRequest::from_json(&m.payload, "payload").map_err(|e| HandlerError::permanent(e.to_string()))?;
    let arg = |k: &str| m.arguments.get(k).and_then(Value::as_str);
    let schedule_id = arg("schedule_id").and_then(|s| ScheduleId::parse(s).ok());
    let session_id = arg("session_id").and_then(|s| ChatSessionId::parse(s).ok());
    Ok(AgentRun::new(
        RunId::for_message(&m.id),
        request,
        m.created_by,
        Some(m.id.clone()),
        schedule_id,
        session_id,
        provider,
        model,
        m.created_date,
    ))
}

#[async_trait]
impl Handler for AgentWorker {
    async fn handle(&self, m: &Message, receive_count: u32) -> Result<Handled, HandlerError> {
        let Some(ports) = self.agent.services.agent.as_ref() else {
            return Err(HandlerError::permanent("this deployment has no agent store"));
        };
        let (provider, model) =
            ports.settings.as_ref().map_or(("none", ""), |s| (s.provider.as_str(), s.model.as_str()));
        // A continuation (after an approval) names the run it resumes.
        let id = match m.arguments.get("run_id").and_then(Value::as_str) {
            Some(raw) => {
                RunId::parse(raw).map_err(|e| HandlerError::permanent(format!("arguments.run_id: {}", e.message)))?
            }
            None => {
                let run = run_for_message(m, provider, model)?;
                ports
                    .runs
                    .create_run(&run)
                    .await
                    .map_err(|e| HandlerError::transient(format!("recording the run: {e}")))?;
                run.id
            }
        };
        self.agent.drive(&id, receive_count >= MAX_RECEIVES).await?;
        Ok(Handled::Done)
    }
}

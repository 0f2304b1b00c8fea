//! The agent (SPEC §7): runs that carry out a task given in plain words with the tools of
//! the registry, on a model behind the `ModelClient` port. A run travels as an
//! `agent_response` message on the agent queue; [`worker::AgentWorker`] (a pool in
//! `rez serve`, the agent function on AWS) hands each delivery to [`Agent::drive`]
//! (`runner.rs`), which resumes the run from its stored steps. `start.rs` creates runs
//! (API, CLI, chat, schedules); `outcome.rs` tells the user how a run ended;
//! `conversation.rs` rebuilds what the model is sent from the stored steps; `prompt.rs`
//! writes the system prompt; `approvals.rs` asks before side effects (`approval: required`); `retry.rs` bounds the retries of a model call;
//! `settings.rs` holds the caps and prices; `usage.rs` sums spend for reports.

pub mod approvals;
pub mod conversation;
pub mod outcome;
pub mod prompt;
pub mod retry;
pub mod runner;
pub mod settings;
pub mod start;
pub mod usage;
pub mod worker;

use std::sync::Arc;

use rez_core::agent::approval::ApprovalStore;
use rez_core::agent::{AgentStore, BudgetLedger, ModelClient};

pub use settings::AgentSettings;

use crate::Services;
use crate::tools::ToolRegistry;

/// The agent's ports and settings, part of [`Services`] so the API can create and read
/// runs. `settings: None`: the agent is off (no provider configured); runs can be read,
/// and a run that arrives anyway ends `failed` saying so.
#[derive(Clone)]
pub struct AgentPorts {
    pub runs: Arc<dyn AgentStore>,
    pub budget: Arc<dyn BudgetLedger>,
    /// `None`: this deployment keeps no approvals (a run asking for one is told so).
    pub approvals: Option<Arc<dyn ApprovalStore>>,
    pub settings: Option<AgentSettings>,
}

/// The run loop over the services, the tool registry and a model.
#[derive(Clone)]
pub struct Agent {
    services: Services,
    tools: ToolRegistry,
    model: Option<Arc<dyn ModelClient>>,
}

impl Agent {
    /// `model: None` when the agent is off.
    pub fn new(services: Services, tools: ToolRegistry, model: Option<Arc<dyn ModelClient>>) -> Self {
        Self { services, tools, model }
    }

    pub fn services(&self) -> &Services {
        &self.services
    }
}

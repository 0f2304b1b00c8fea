//! The agent's domain (SPEC §7): what a run is asked ([`run::AgentRequest`]), the steps it
//! takes and stores ([`run::Step`]), the provider-neutral conversation and the model port
//! ([`model`]), exact money ([`money`]) and the ports that store runs and spend
//! ([`store`]), and the approvals a run may wait for ([`approval`]). The run loop itself is
//! `rez-runtime::agent`.

pub mod approval;
pub mod model;
pub mod money;
pub mod run;
pub mod store;

pub use model::{ContentBlock, ModelClient, ModelError, ModelRequest, ModelResponse, StopReason, Usage};
pub use money::{ModelPrice, Nanodollars, PriceTable};
pub use run::{AgentRequest, AgentRun, RunStatus, Step, StepKind, ToolCall, ToolOutcome};
pub use store::{AgentStore, BudgetLedger, BudgetReservation, Reserved, RunClaim, RunFilter};

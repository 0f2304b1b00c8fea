//! AWS adapters of rez_agent's ports. The serverless deployment (SPEC §10) runs the same
//! core and runtime as `rez serve`; only these adapters differ:
//!
//! - DynamoDB tables for messages, idempotency keys, the inbox, API keys, schedules,
//!   web-action results (TTL), the booking ledger, the agent's runs and budget ledger, and
//!   the approvals runs wait for;
//! - SNS topics (one per [`Topic`](rez_core::routing::Topic)) fanned out to SQS queues
//!   with raw message delivery, each queue with a DLQ;
//! - EventBridge Scheduler as the [`ScheduleEngine`](rez_core::ports::ScheduleEngine);
//! - Secrets Manager as the [`SecretStore`](rez_core::ports::SecretStore), behind a TTL
//!   cache.
//!
//! Only this crate and the Lambda binaries depend on the AWS SDK. Every resource name
//! comes from [`Names`]; nothing here creates infrastructure except [`provision`], which
//! builds the template's resources on an emulator for tests and laptops.

pub mod agent_runs;
pub mod approvals;
pub mod bedrock;
pub mod budget;
pub mod clients;
pub mod codec;
pub mod config;
pub mod error;
pub mod inbox;
#[cfg(test)]
mod index_load;
pub mod keys;
pub mod ledger;
pub mod messages;
pub mod policies;
pub mod provision;
pub mod publish_refusal;
pub mod queues;
pub mod results;
pub mod scheduler;
pub mod schedules;
pub mod secrets;
pub mod shards;
pub mod sqs_event;
pub mod store;
pub mod sweeper;
pub(crate) mod transact;

pub use clients::Clients;
pub use config::Names;
pub use store::AwsStore;

//! `rez-runtime` holds rez_agent's use cases, written once over the ports of
//! `rez-core`: accepting messages ([`intake`]), API-key auth ([`keys`]), worker pools and
//! the notification processor ([`workers`]), metrics ([`metrics`]), the HTTP API
//! ([`api`]) and the tool registry the MCP server and the agent share ([`tools`]). It
//! never names a concrete adapter; binaries wire SQLite or AWS adapters in.

pub mod agent;
pub mod api;
pub mod intake;
pub mod keys;
pub mod metrics;
pub mod scheduling;
pub mod services;
pub mod tools;
pub mod workers;

pub use services::Services;

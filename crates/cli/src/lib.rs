//! The `rez` binary's library half: configuration, `serve` wiring and the admin
//! commands. Integration tests drive [`serve::Server`] in-process on port 0; the crash
//! test runs the real binary.

pub mod agent_config;
pub mod commands;
pub mod config;
pub mod inbound;
pub mod serve;
pub mod wiring;

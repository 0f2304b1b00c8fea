//! `rez-actions`: clients for the outside services rez_agent acts on — ntfy, NOAA weather
//! and cps.golf. Each one goes through `rez-http`, so the SSRF policy of SPEC §6.1 applies
//! to every call.

pub mod assembly;
pub mod golf;
pub mod handlers;
pub mod ntfy;
pub mod weather;

pub use ntfy::{InvalidSequenceId, NtfyAuth, NtfyClient, NtfyConfig, NtfyConfigError, SequenceId};

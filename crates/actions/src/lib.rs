//! `rez-actions`: clients for the outside services rez_agent acts on. Each one goes
//! through `rez-http`, so the SSRF policy of SPEC §6.1 applies to every call.

pub mod ntfy;

pub use ntfy::{NtfyAuth, NtfyClient, NtfyConfig, NtfyConfigError};

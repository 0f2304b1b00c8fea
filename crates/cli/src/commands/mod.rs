//! The admin commands. They work directly on the data directory (SQLite in WAL mode
//! allows that while `rez serve` runs), so they need no API key.

pub mod agent;
pub mod approvals;
pub mod dlq;
pub mod keys;
pub mod messages;
pub mod schedules;
pub mod secrets;
pub mod send;

use std::io::Write;

/// Print `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

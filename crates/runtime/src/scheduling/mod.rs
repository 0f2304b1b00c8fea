//! Schedules: the management service (API, CLI, `schedule_creation` messages and MCP all
//! go through it), the in-process engine that fires due schedules, and the consumer of
//! the schedule-creation queue.

pub mod consumer;
pub mod engine;
pub mod service;

pub use service::{ScheduleError, Schedules};

//! `rez-core` is the domain of rez_agent: what a message is, which states it may move
//! through, where each message type is routed, and the ports (traits) that every
//! deployment — embedded SQLite or AWS — implements.
//!
//! Nothing in here performs I/O. Adapters (`rez-local`, later `rez-aws`) implement the
//! ports; `rez-runtime` holds the use cases and only ever sees the ports.

pub mod agent;
pub mod auth;
pub mod backoff;
pub mod booking;
pub mod clock;
pub mod error;
pub mod id;
pub mod message;
pub mod notify;
pub mod ports;
pub mod routing;
pub mod schedule;
pub mod schedule_spec;
pub mod schedules;
pub mod status;
pub mod time;
pub mod web_action;

pub use error::ValidationError;
pub use id::{MessageId, ResultId, ScheduleId};
pub use message::{Message, MessageType, NewMessage, Stage};
pub use routing::{QueueName, Topic};
pub use status::Status;

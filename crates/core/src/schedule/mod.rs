//! Schedule expressions, exactly as EventBridge Scheduler understands them, so that a
//! schedule fires at the same instants locally and on AWS (SPEC §5).
//!
//! * [`ScheduleExpression`] parses `cron(...)`, `rate(...)` and `at(...)`, prints them back
//!   in canonical form and (de)serialises as that text;
//! * [`Timezone`] is the IANA zone a schedule is evaluated in;
//! * [`next_after`], [`occurrences`] and [`matches`] compute fire instants in UTC, within a
//!   schedule's [`Bounds`], with EventBridge's daylight-saving rules.
//!
//! Every parser is total: any input gives a value or an [`ExpressionError`] that names the
//! field and column, never a panic.

mod at;
mod cron;
mod error;
mod expression;
mod occurrences;
mod rate;
mod syntax;
mod timezone;

#[cfg(test)]
mod tests;

pub use at::At;
pub use cron::{CronExpr, FIELD_NAMES as CRON_FIELD_NAMES, MAX_YEAR, MIN_YEAR};
pub use error::ExpressionError;
pub use expression::{ScheduleExpression, ScheduleKind};
pub use occurrences::{Bounds, Occurrences, matches, next_after, occurrences};
pub use rate::{Rate, RateUnit};
pub use syntax::MAX_EXPRESSION_LEN;
pub use timezone::{Timezone, TimezoneError};

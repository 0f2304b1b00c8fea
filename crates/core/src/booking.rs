//! The golf booking ledger port: one row per booking key recording the intent before a
//! reserve and the confirmation after, which is what makes booking exactly-once (SPEC
//! §6.4). The `Booker` in `rez-actions` drives it; `rez-local` stores it in SQLite.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// The idempotency key of one booking request: 1–200 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BookingKey(String);

impl BookingKey {
    pub fn new(key: impl Into<String>) -> Result<Self, ValidationError> {
        let key = key.into();
        if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
            return Err(ValidationError::invalid("booking_key", "a booking key is 1–200 printable characters"));
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BookingKey {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, ValidationError> {
        Self::new(s)
    }
}

impl From<BookingKey> for String {
    fn from(k: BookingKey) -> String {
        k.0
    }
}

impl fmt::Display for BookingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is about to be reserved: enough to recognise the reservation among the golfer's
/// upcoming ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingIntent {
    /// Our course id (`birdsfoot`).
    pub course_id: String,
    /// The course name cps.golf uses in reservations.
    pub course_name: String,
    pub tee_sheet_id: i64,
    /// Course-local start.
    pub start_time: NaiveDateTime,
    pub players: u8,
    pub holes: u8,
    pub recorded_at: DateTime<Utc>,
}

/// A booked tee time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingConfirmation {
    pub course_id: String,
    pub course_name: String,
    pub reservation_id: Option<i64>,
    pub confirmation_key: String,
    pub tee_sheet_id: i64,
    pub start_time: NaiveDateTime,
    pub players: u8,
    pub holes: u8,
    pub total: Option<f64>,
    pub total_due_at_course: Option<f64>,
    pub confirmed_at: DateTime<Utc>,
}

/// Where a key stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LedgerState {
    /// The intent is recorded; the outcome of the reserve call is not (yet) known.
    Pending,
    Confirmed {
        confirmation: BookingConfirmation,
    },
    /// The last attempt definitely did not reserve; a new attempt may be made.
    Failed {
        error: String,
    },
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The last recorded intent (none if the key failed before reaching the reserve step).
    pub intent: Option<BookingIntent>,
    pub state: LedgerState,
}

/// Answer of [`BookingLedger::record_intent`].
#[derive(Debug, Clone, PartialEq)]
pub enum IntentOutcome {
    /// The intent was stored as pending: go ahead and reserve.
    New,
    /// Another attempt's intent is pending (left unchanged).
    Pending(BookingIntent),
    /// The key is already confirmed (left unchanged).
    Existing(BookingConfirmation),
}

/// A ledger failure (storage unavailable…); always worth retrying later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// Durable record of booking attempts, one row per key. Over a table
/// `(key PRIMARY KEY, intent_json, state, confirmation_json, error, updated_at)`:
/// `record_intent` is an insert-or-update guarded by `state IS NULL OR state = 'failed'`
/// in one transaction; the others are single-row updates.
#[async_trait]
pub trait BookingLedger: Send + Sync {
    /// The row of `key`, if any.
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError>;

    /// Atomically: a confirmed key answers [`IntentOutcome::Existing`], a pending one
    /// [`IntentOutcome::Pending`] (both unchanged); an absent or failed key stores `intent`
    /// as pending and answers [`IntentOutcome::New`].
    async fn record_intent(&self, key: &BookingKey, intent: &BookingIntent) -> Result<IntentOutcome, LedgerError>;

    /// Store the confirmation of `key` (keeping its intent).
    async fn record_confirmation(
        &self,
        key: &BookingKey,
        confirmation: &BookingConfirmation,
    ) -> Result<(), LedgerError>;

    /// Mark `key` failed with `error`, creating the row if needed. A confirmed key stays
    /// confirmed.
    async fn mark_failed(&self, key: &BookingKey, error: &str) -> Result<(), LedgerError>;
}

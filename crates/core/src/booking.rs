//! The golf booking ledger port: one row per booking key recording the intent before a
//! reserve and the confirmation after, which is what makes booking exactly-once (SPEC
//! §6.4). The `Booker` in `rez-actions` drives it; `rez-local` stores it in SQLite and
//! `rez-aws` in DynamoDB. A pending row is owned by one attempt under a lease, so two
//! deliveries of one booking never both look up, release or reserve.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
pub use crate::id::AttemptId;

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
    /// An attempt owns the key (see [`LedgerEntry::lease`]); if an intent is recorded,
    /// the outcome of its reserve call is not (yet) known.
    Pending,
    Confirmed {
        confirmation: BookingConfirmation,
    },
    /// The last attempt definitely did not reserve; a new attempt may be made.
    Failed {
        error: String,
    },
    /// The stored row cannot be decoded. It holds the key: nothing may be booked under it
    /// until someone looks at it (an unreadable row never reads as "free to book").
    Unreadable {
        reason: String,
    },
}

/// Ownership of a pending key: the attempt working on it and until when. While the lease
/// is live no other attempt looks up, releases or books under the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub attempt: AttemptId,
    pub until: DateTime<Utc>,
}

/// Progress of the search for the outcome of an uncertain reserve (timed out, broke off,
/// answered unreadably). Kept in the row so that a later delivery continues the search
/// where the earlier one stopped instead of starting it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// When the reserve became uncertain; the lookups are scheduled from here.
    pub uncertain_since: DateTime<Utc>,
    /// How many of the scheduled lookups have been done (none found the reservation).
    pub lookups_done: u32,
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The last recorded intent (none if the key failed before reaching the reserve step).
    pub intent: Option<BookingIntent>,
    pub state: LedgerState,
    /// The attempt owning a pending key (kept after it lapses, for the record).
    #[serde(default)]
    pub lease: Option<Lease>,
    /// Set once a reserve under the current intent was uncertain.
    #[serde(default)]
    pub verification: Option<Verification>,
}

impl LedgerEntry {
    /// A row in `state` with nothing else recorded.
    pub fn new(state: LedgerState) -> Self {
        Self { intent: None, state, lease: None, verification: None }
    }

    /// Whether another attempt holds a live lease on the key at `now`.
    pub fn held_by_other(&self, attempt: &AttemptId, now: DateTime<Utc>) -> bool {
        matches!(self.state, LedgerState::Pending)
            && self.lease.as_ref().is_some_and(|l| &l.attempt != attempt && l.until > now)
    }
}

impl LedgerEntry {
    /// Whether `attempt` owns the key: it is pending under `attempt`'s lease. (A lapsed
    /// lease still owns the key until another attempt claims it.)
    pub fn owned_by(&self, attempt: &AttemptId) -> bool {
        matches!(self.state, LedgerState::Pending) && self.lease.as_ref().is_some_and(|l| &l.attempt == attempt)
    }
}

/// The decision of [`BookingLedger::claim`] over the current row, for ledgers that read
/// and write a row in one transaction: the answer, and the row to store (none: unchanged).
pub fn claim_row(
    current: Option<&LedgerEntry>,
    lease: &Lease,
    now: DateTime<Utc>,
) -> (ClaimOutcome, Option<LedgerEntry>) {
    let Some(entry) = current else {
        let fresh = LedgerEntry { lease: Some(lease.clone()), ..LedgerEntry::new(LedgerState::Pending) };
        return (ClaimOutcome::Claimed(None), Some(fresh));
    };
    match &entry.state {
        LedgerState::Confirmed { confirmation } => (ClaimOutcome::Confirmed(confirmation.clone()), None),
        LedgerState::Unreadable { reason } => (ClaimOutcome::Unreadable(reason.clone()), None),
        LedgerState::Pending if entry.held_by_other(&lease.attempt, now) => {
            let until = entry.lease.as_ref().map_or(now, |l| l.until);
            (ClaimOutcome::Held { until }, None)
        }
        LedgerState::Pending => {
            let next = LedgerEntry { lease: Some(lease.clone()), ..entry.clone() };
            (ClaimOutcome::Claimed(Some(entry.clone())), Some(next))
        }
        LedgerState::Failed { .. } => {
            let next = LedgerEntry {
                intent: None,
                state: LedgerState::Pending,
                lease: Some(lease.clone()),
                verification: None,
            };
            (ClaimOutcome::Claimed(Some(entry.clone())), Some(next))
        }
    }
}

/// Answer of [`BookingLedger::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// The attempt now owns the key. The row as it was before the claim (none if the key
    /// was new): a pending row with an intent means an earlier reserve may have happened.
    Claimed(Option<LedgerEntry>),
    /// Another attempt's lease is live until the given time (the row is unchanged).
    Held { until: DateTime<Utc> },
    /// The key is already confirmed (unchanged).
    Confirmed(BookingConfirmation),
    /// The row cannot be decoded; it holds the key (unchanged).
    Unreadable(String),
}

/// A ledger failure (storage unavailable…); always worth retrying later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// Durable record of booking attempts, one row per key. Every change after
/// [`claim`](BookingLedger::claim) is conditional on the caller still owning the key
/// (the row is pending and its lease names the caller's attempt) and answers `false`,
/// changing nothing, when it does not: an attempt whose lease lapsed and was taken over
/// can never confirm, fail or release a key another attempt now works on.
#[async_trait]
pub trait BookingLedger: Send + Sync {
    /// The row of `key`, if any.
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError>;

    /// Atomically take ownership of `key` for `lease.attempt` until `lease.until`: an
    /// absent, failed, or pending key whose lease lapsed at `now` becomes pending under
    /// the new lease (a pending key keeps its intent and verification progress; a failed
    /// one starts without). A live lease of another attempt, a confirmed key and an
    /// unreadable row are answered as they are, unchanged.
    async fn claim(&self, key: &BookingKey, lease: &Lease, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError>;

    /// Record the intent before reserving (clearing any verification of an earlier one).
    async fn record_intent(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        intent: &BookingIntent,
    ) -> Result<bool, LedgerError>;

    /// Record the progress of the search for an uncertain reserve's outcome.
    async fn record_verification(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        verification: &Verification,
    ) -> Result<bool, LedgerError>;

    /// Store the confirmation of `key` (keeping its intent).
    async fn record_confirmation(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        confirmation: &BookingConfirmation,
    ) -> Result<bool, LedgerError>;

    /// Mark `key` failed with `error`: the next attempt starts afresh.
    async fn mark_failed(&self, key: &BookingKey, attempt: &AttemptId, error: &str) -> Result<bool, LedgerError>;

    /// End the lease and leave the key pending as it is (intent and verification kept),
    /// so the next delivery can claim it at once.
    async fn end_lease(&self, key: &BookingKey, attempt: &AttemptId) -> Result<bool, LedgerError>;
}

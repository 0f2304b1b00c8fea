//! Exactly-once tee-time booking over a ledger (SPEC §6.4).
//!
//! Messages are delivered at least once and a reserve request can break off after
//! cps.golf has carried it out, so booking cannot simply be retried. [`Booker`] makes it
//! exactly-once from the user's point of view with a [`BookingLedger`] keyed by a
//! caller-supplied [`BookingKey`] (e.g. derived from the message id):
//!
//! 1. a recorded confirmation is returned as is, without any call to cps.golf;
//! 2. an intent without a confirmation (an earlier attempt broke off) is resolved by
//!    reading the golfer's upcoming reservations: a matching one (same course, start time
//!    and player count) is recorded as the confirmation and returned; only when there is
//!    none is the key released for a new attempt;
//! 3. a new attempt locks and prices the tee time, records the intent (with the start
//!    time and course name needed to recognise the reservation later) **before**
//!    reserving, and records the confirmation right after.
//!
//! No step is retried blindly. A definite refusal of the reserve marks the key failed (a
//! later attempt may try again); an uncertain reserve leaves the intent pending for step
//! 2. Failures before the intent is recorded (search, lock, price) leave the ledger alone,
//! so they can never overwrite the pending intent of a concurrent attempt. A conflict
//! ("already have a reservation") is reported as [`GolfError::Conflict`] and never retried.
//! cps.golf has no known unlock call, so a lock left by a failed attempt expires
//! server-side.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::GolfCredentials;
use super::client::{GolfClient, GolfError, SearchRequest, check_players};
use super::courses::Course;
use super::model::{Holes, Reservation};

pub use rez_core::booking::{
    BookingConfirmation, BookingIntent, BookingKey, BookingLedger, IntentOutcome, LedgerEntry, LedgerError, LedgerState,
};

impl From<LedgerError> for GolfError {
    fn from(e: LedgerError) -> Self {
        GolfError::Ledger(e.0)
    }
}

/// A [`BookingLedger`] in memory, for tests and single-process demos.
#[derive(Debug, Default)]
pub struct InMemoryLedger {
    entries: Mutex<HashMap<BookingKey, LedgerEntry>>,
}

impl InMemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BookingKey, LedgerEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every row, for assertions.
    pub fn entries(&self) -> HashMap<BookingKey, LedgerEntry> {
        self.lock().clone()
    }

    /// Store a row as is (tests that start from a given state).
    pub fn insert(&self, key: BookingKey, entry: LedgerEntry) {
        self.lock().insert(key, entry);
    }
}

#[async_trait]
impl BookingLedger for InMemoryLedger {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn record_intent(&self, key: &BookingKey, intent: &BookingIntent) -> Result<IntentOutcome, LedgerError> {
        let mut entries = self.lock();
        if let Some(e) = entries.get(key) {
            match &e.state {
                LedgerState::Confirmed { confirmation } => return Ok(IntentOutcome::Existing(confirmation.clone())),
                LedgerState::Pending => {
                    return Ok(IntentOutcome::Pending(e.intent.clone().unwrap_or_else(|| intent.clone())));
                }
                LedgerState::Failed { .. } => {}
            }
        }
        entries.insert(key.clone(), LedgerEntry { intent: Some(intent.clone()), state: LedgerState::Pending });
        Ok(IntentOutcome::New)
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        confirmation: &BookingConfirmation,
    ) -> Result<(), LedgerError> {
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_insert(LedgerEntry { intent: None, state: LedgerState::Pending });
        entry.state = LedgerState::Confirmed { confirmation: confirmation.clone() };
        Ok(())
    }

    async fn mark_failed(&self, key: &BookingKey, error: &str) -> Result<(), LedgerError> {
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_insert(LedgerEntry { intent: None, state: LedgerState::Pending });
        if !matches!(entry.state, LedgerState::Confirmed { .. }) {
            entry.state = LedgerState::Failed { error: error.to_owned() };
        }
        Ok(())
    }
}

/// How a booking result came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingPath {
    /// This call reserved the tee time.
    Reserved,
    /// The key was already confirmed; nothing was sent to cps.golf.
    AlreadyConfirmed,
    /// An interrupted earlier attempt had reserved it; found among the reservations.
    FoundInReservations,
}

/// The result of [`Booker::book`] and [`Booker::auto_book`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingOutcome {
    pub confirmation: BookingConfirmation,
    pub path: BookingPath,
}

/// Books tee times exactly once per [`BookingKey`].
#[derive(Clone)]
pub struct Booker {
    client: GolfClient,
    ledger: Arc<dyn BookingLedger>,
}

impl fmt::Debug for Booker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Booker").field("client", &self.client).finish()
    }
}

fn names_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_lowercase(), b.trim().to_lowercase());
    a.is_empty() || b.is_empty() || a == b || a.contains(&b) || b.contains(&a)
}

/// Whether `r` is the reservation `intent` was about to make.
fn is_same_booking(intent: &BookingIntent, r: &Reservation) -> bool {
    r.start_time == intent.start_time
        && r.players.is_none_or(|p| p == intent.players)
        && names_match(&r.course_name, &intent.course_name)
}

impl Booker {
    pub fn new(client: GolfClient, ledger: Arc<dyn BookingLedger>) -> Self {
        Self { client, ledger }
    }

    pub fn client(&self) -> &GolfClient {
        &self.client
    }

    /// Book `tee_sheet_id` for `players` (1–4) exactly once per `key`.
    pub async fn book(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        tee_sheet_id: i64,
        players: u8,
        holes: Holes,
    ) -> Result<BookingOutcome, GolfError> {
        check_players(players)?;
        if tee_sheet_id <= 0 {
            return Err(GolfError::InvalidRequest("tee sheet id must be positive".into()));
        }
        if let Some(done) = self.resolve_existing(key, course, creds).await? {
            return Ok(done);
        }
        self.attempt(key, course, creds, tee_sheet_id, players, holes, None).await
    }

    /// Search, then book the **earliest** matching tee time, exactly once per `key`.
    pub async fn auto_book(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        search: &SearchRequest,
    ) -> Result<BookingOutcome, GolfError> {
        check_players(search.players)?;
        if let Some(done) = self.resolve_existing(key, course, creds).await? {
            return Ok(done);
        }
        let slots = self.client.search_tee_times(course, creds, search).await?;
        let Some(earliest) = slots.iter().min_by_key(|s| (s.start_time, s.tee_sheet_id)) else {
            return Err(GolfError::NoTeeTimes(format!("{} on {} in the requested window", course.name, search.date)));
        };
        tracing::info!(
            booking_key = %key,
            course = %course.id,
            tee_sheet_id = earliest.tee_sheet_id,
            start = %earliest.start_time,
            "auto-booking the earliest tee time"
        );
        let known = (earliest.start_time, earliest.course_name.clone());
        self.attempt(key, course, creds, earliest.tee_sheet_id, search.players, search.holes, Some(known)).await
    }

    /// Steps 1 and 2 of the module doc: a finished or interrupted earlier attempt.
    async fn resolve_existing(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
    ) -> Result<Option<BookingOutcome>, GolfError> {
        let Some(entry) = self.ledger.get(key).await? else { return Ok(None) };
        match entry.state {
            LedgerState::Confirmed { confirmation } => {
                tracing::info!(booking_key = %key, "booking already confirmed; returning the recorded confirmation");
                Ok(Some(BookingOutcome { confirmation, path: BookingPath::AlreadyConfirmed }))
            }
            LedgerState::Failed { .. } => Ok(None),
            LedgerState::Pending => {
                let Some(intent) = entry.intent else {
                    self.ledger.mark_failed(key, "pending without an intent").await?;
                    return Ok(None);
                };
                if intent.course_id != course.id {
                    return Err(GolfError::InvalidRequest(format!(
                        "booking key {key} belongs to a booking at {}",
                        intent.course_id
                    )));
                }
                tracing::info!(
                    booking_key = %key,
                    tee_sheet_id = intent.tee_sheet_id,
                    "an earlier attempt did not finish; checking the upcoming reservations"
                );
                let reservations = self.client.fetch_reservations(course, creds).await?;
                if let Some(r) = reservations.iter().find(|r| is_same_booking(&intent, r)) {
                    let confirmation = BookingConfirmation {
                        course_id: intent.course_id.clone(),
                        course_name: r.course_name.clone(),
                        reservation_id: r.reservation_id,
                        confirmation_key: r.confirmation_key.clone().unwrap_or_default(),
                        tee_sheet_id: intent.tee_sheet_id,
                        start_time: r.start_time,
                        players: r.players.unwrap_or(intent.players),
                        holes: intent.holes,
                        total: None,
                        total_due_at_course: None,
                        confirmed_at: Utc::now(),
                    };
                    self.ledger.record_confirmation(key, &confirmation).await?;
                    tracing::info!(
                        booking_key = %key,
                        reservation_id = confirmation.reservation_id,
                        "found the reservation of the interrupted attempt"
                    );
                    return Ok(Some(BookingOutcome { confirmation, path: BookingPath::FoundInReservations }));
                }
                tracing::info!(booking_key = %key, "no matching reservation; the earlier attempt did not reserve");
                self.ledger.mark_failed(key, "interrupted attempt left no reservation").await?;
                Ok(None)
            }
        }
    }

    /// Step 3: lock, price, record the intent, reserve, record the confirmation.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        tee_sheet_id: i64,
        players: u8,
        holes: Holes,
        known: Option<(NaiveDateTime, String)>,
    ) -> Result<BookingOutcome, GolfError> {
        let result = self.attempt_inner(key, course, creds, tee_sheet_id, players, holes, known).await;
        if let Err(e) = &result {
            tracing::warn!(booking_key = %key, course = %course.id, tee_sheet_id, error = %e, "booking failed");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt_inner(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        tee_sheet_id: i64,
        players: u8,
        holes: Holes,
        known: Option<(NaiveDateTime, String)>,
    ) -> Result<BookingOutcome, GolfError> {
        let session = self.client.session(course, creds).await?;
        let lock = self.client.lock_tee_time(course, creds, &session, tee_sheet_id, players).await?;
        let priced =
            self.client.price_tee_time(course, creds, &session, &lock, holes, known.as_ref().map(|k| k.0)).await?;
        let start_time = priced.start_time.or(known.as_ref().map(|k| k.0)).ok_or_else(|| GolfError::Decode {
            step: super::client::Step::Price,
            message: "no start time for the tee time; refusing to reserve what could not be recognised later".into(),
        })?;
        let course_name = priced
            .course_name
            .clone()
            .filter(|n| !n.is_empty())
            .or(known.map(|k| k.1))
            .unwrap_or_else(|| course.name.clone());
        let intent = BookingIntent {
            course_id: course.id.clone(),
            course_name,
            tee_sheet_id,
            start_time,
            players,
            holes: priced.holes,
            recorded_at: Utc::now(),
        };
        match self.ledger.record_intent(key, &intent).await? {
            IntentOutcome::New => {}
            IntentOutcome::Existing(confirmation) => {
                return Ok(BookingOutcome { confirmation, path: BookingPath::AlreadyConfirmed });
            }
            IntentOutcome::Pending(_) => return Err(GolfError::InProgress { key: key.to_string() }),
        }
        // From here on this attempt owns the pending intent. Only a definite refusal
        // releases it; an uncertain outcome leaves it for the reservations check.
        let receipt = match self.client.reserve_tee_time(course, creds, &session, &lock, &priced).await {
            Ok(receipt) => receipt,
            Err(e) => {
                if !matches!(e, GolfError::Uncertain { .. })
                    && let Err(le) = self.ledger.mark_failed(key, &e.to_string()).await
                {
                    tracing::warn!(booking_key = %key, error = %le, "cannot record the failed booking attempt");
                }
                return Err(e);
            }
        };
        let (reservation_id, confirmation_key) = match receipt.reservation_id {
            Some(id) => (Some(id), receipt.confirmation_key),
            None => self.complete_from_list(key, course, creds, &intent, receipt.confirmation_key).await,
        };
        let confirmation = BookingConfirmation {
            course_id: course.id.clone(),
            course_name: intent.course_name.clone(),
            reservation_id,
            confirmation_key,
            tee_sheet_id,
            start_time,
            players,
            holes: intent.holes,
            total: priced.total,
            total_due_at_course: priced.total_due_at_course,
            confirmed_at: Utc::now(),
        };
        self.ledger.record_confirmation(key, &confirmation).await?;
        tracing::info!(
            booking_key = %key,
            course = %course.id,
            tee_sheet_id,
            reservation_id = confirmation.reservation_id,
            "tee time booked"
        );
        Ok(BookingOutcome { confirmation, path: BookingPath::Reserved })
    }

    /// A reserve confirmed without a reservation id: the id (and the confirmation key, if
    /// the answer had none) of the matching reservation in the list. The booking is made
    /// either way; without a single match it is recorded without an id.
    async fn complete_from_list(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        intent: &BookingIntent,
        answered_key: String,
    ) -> (Option<i64>, String) {
        let found = match self.client.fetch_reservations(course, creds).await {
            Ok(list) => {
                let matches: Vec<&Reservation> = list.iter().filter(|r| is_same_booking(intent, r)).collect();
                match matches.as_slice() {
                    [one] => Some((*one).clone()),
                    _ => None,
                }
            }
            Err(e) => {
                tracing::warn!(booking_key = %key, error = %e, "cannot read the reservations to complete the receipt");
                None
            }
        };
        match found {
            Some(r) => {
                let confirmation_key =
                    if answered_key.is_empty() { r.confirmation_key.unwrap_or_default() } else { answered_key };
                (r.reservation_id, confirmation_key)
            }
            None => {
                tracing::info!(booking_key = %key, "reserved; the reservation is not (yet) identifiable in the list");
                (None, answered_key)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent() -> BookingIntent {
        BookingIntent {
            course_id: "birdsfoot".into(),
            course_name: "Birdsfoot Golf Course".into(),
            tee_sheet_id: 5,
            start_time: NaiveDateTime::parse_from_str("2025-06-14 08:10", "%Y-%m-%d %H:%M").expect("t"),
            players: 2,
            holes: 18,
            recorded_at: Utc::now(),
        }
    }

    fn confirmation() -> BookingConfirmation {
        let i = intent();
        BookingConfirmation {
            course_id: i.course_id,
            course_name: i.course_name,
            reservation_id: Some(1),
            confirmation_key: "K".into(),
            tee_sheet_id: 5,
            start_time: i.start_time,
            players: 2,
            holes: 18,
            total: None,
            total_due_at_course: None,
            confirmed_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn in_memory_ledger_semantics() {
        let l = InMemoryLedger::new();
        let k = BookingKey::new("msg_1").expect("key");
        assert_eq!(l.record_intent(&k, &intent()).await.expect("new"), IntentOutcome::New);
        assert!(matches!(l.record_intent(&k, &intent()).await.expect("pending"), IntentOutcome::Pending(_)));
        l.mark_failed(&k, "boom").await.expect("failed");
        assert_eq!(l.record_intent(&k, &intent()).await.expect("again"), IntentOutcome::New);
        l.record_confirmation(&k, &confirmation()).await.expect("confirm");
        l.mark_failed(&k, "late failure").await.expect("ignored");
        assert!(matches!(l.record_intent(&k, &intent()).await.expect("existing"), IntentOutcome::Existing(_)));
        let e = l.get(&k).await.expect("get").expect("row");
        assert!(matches!(e.state, LedgerState::Confirmed { .. }));
        // Rows serialise for a table-backed implementation.
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["state"]["state"], "confirmed");
    }

    #[test]
    fn reservation_matching() {
        let i = intent();
        let r = |time: &str, players, name: &str| Reservation {
            reservation_id: Some(1),
            start_time: NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M").expect("t"),
            course_name: name.into(),
            players,
            confirmation_key: None,
        };
        assert!(is_same_booking(&i, &r("2025-06-14 08:10", Some(2), "Birdsfoot Golf Course")));
        assert!(is_same_booking(&i, &r("2025-06-14 08:10", Some(2), "BIRDSFOOT")));
        assert!(!is_same_booking(&i, &r("2025-06-14 08:20", Some(2), "Birdsfoot Golf Course")));
        assert!(!is_same_booking(&i, &r("2025-06-14 08:10", Some(3), "Birdsfoot Golf Course")));
        assert!(!is_same_booking(&i, &r("2025-06-14 08:10", Some(2), "Totteridge")));
        assert!(BookingKey::new("").is_err() && BookingKey::new("a\nb").is_err());
    }
}

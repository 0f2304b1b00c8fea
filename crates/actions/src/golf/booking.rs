//! Exactly-once tee-time booking over a ledger (SPEC §6.4).
//!
//! Messages are delivered at least once, two deliveries of one message may run at the
//! same time, and cps.golf may carry out a reserve after our client gave up on it (and
//! list it among the golfer's reservations only some seconds later). [`Booker`] makes
//! booking exactly-once from the user's point of view with a [`BookingLedger`] keyed by
//! a caller-supplied [`BookingKey`] (the message id):
//!
//! 1. **Claim.** Each call is an attempt with its own [`AttemptId`] and first claims the
//!    key under a lease ([`BookingPolicy::lease`]). A confirmed key answers its recorded
//!    confirmation without any call to cps.golf; a key another attempt holds answers
//!    [`BookingError::InProgress`] (retry later) without looking up, releasing or
//!    booking; an unreadable row holds the key ([`BookingError::Held`]). Every later
//!    write is conditional on still owning the key.
//! 2. **Find out, never try again blindly.** An intent without an outcome (a reserve that
//!    timed out, broke off or answered unreadably, or an attempt that crashed around its
//!    reserve) is resolved by looking up the upcoming reservations on a schedule counted
//!    from when the outcome became uncertain ([`BookingPolicy::verify_after`], by default
//!    30 s, 1, 2, 5 and 10 min). The progress is kept in the row, so a later delivery
//!    continues the search. A lookup due within [`BookingPolicy::max_wait`] is waited
//!    for; a later one ends the call with [`BookingError::Verifying`], whose
//!    `retry_after` tells the queue when to deliver the message again. Only after the
//!    whole schedule without a match is the key booked again.
//! 3. **Err toward "it is ours".** A reservation at the same start time on the same
//!    course is ours (player count and name are not required to agree). Two candidates,
//!    or a list that cannot be read, are not "none": the key stays held and the user is
//!    told ([`BookingError::Held`]).
//! 4. **A new attempt** locks and prices the tee time, records the intent (with the
//!    start time and course name needed to recognise the reservation later) **before**
//!    reserving, and records the confirmation right after. A definite refusal marks the
//!    key failed (a later attempt may try again); failures before the intent do too (no
//!    reserve was sent). A conflict ("already have a reservation") is never retried.
//!    `auto_book` moves on to the next slot of the window when one is taken between the
//!    search and the lock.
//!
//! cps.golf has no known unlock call, so a lock left by a failed attempt expires
//! server-side.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::GolfCredentials;
use super::client::{GolfClient, GolfError, SearchRequest, Step, check_players};
use super::courses::Course;
use super::model::{Holes, Reservation};

pub use rez_core::booking::{
    AttemptId, BookingConfirmation, BookingIntent, BookingKey, BookingLedger, ClaimOutcome, Lease, LedgerEntry,
    LedgerError, LedgerState, Verification, claim_row,
};

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

    /// Apply `change` to the row of `key` if `attempt` owns it.
    fn if_owner(&self, key: &BookingKey, attempt: &AttemptId, change: impl FnOnce(&mut LedgerEntry)) -> bool {
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(e) if e.owned_by(attempt) => {
                change(e);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl BookingLedger for InMemoryLedger {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn claim(&self, key: &BookingKey, lease: &Lease, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        let mut entries = self.lock();
        let (outcome, next) = claim_row(entries.get(key), lease, now);
        if let Some(next) = next {
            entries.insert(key.clone(), next);
        }
        Ok(outcome)
    }

    async fn record_intent(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        intent: &BookingIntent,
    ) -> Result<bool, LedgerError> {
        Ok(self.if_owner(key, attempt, |e| {
            e.intent = Some(intent.clone());
            e.verification = None;
        }))
    }

    async fn record_verification(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        verification: &Verification,
    ) -> Result<bool, LedgerError> {
        Ok(self.if_owner(key, attempt, |e| e.verification = Some(verification.clone())))
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        confirmation: &BookingConfirmation,
    ) -> Result<bool, LedgerError> {
        Ok(self.if_owner(key, attempt, |e| e.state = LedgerState::Confirmed { confirmation: confirmation.clone() }))
    }

    async fn mark_failed(&self, key: &BookingKey, attempt: &AttemptId, error: &str) -> Result<bool, LedgerError> {
        Ok(self.if_owner(key, attempt, |e| e.state = LedgerState::Failed { error: error.to_owned() }))
    }

    async fn end_lease(&self, key: &BookingKey, attempt: &AttemptId) -> Result<bool, LedgerError> {
        Ok(self.if_owner(key, attempt, |e| e.lease = None))
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
    /// An uncertain earlier reserve had been carried out; found among the reservations.
    FoundInReservations,
}

/// The result of [`Booker::book`] and [`Booker::auto_book`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingOutcome {
    pub confirmation: BookingConfirmation,
    pub path: BookingPath,
}

/// Why a booking did not (yet) produce a confirmation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BookingError {
    #[error(transparent)]
    Golf(#[from] GolfError),
    /// Another attempt owns the key (its lease is live): try again after `retry_after`.
    #[error("booking {key} is in progress in another attempt")]
    InProgress { key: String, retry_after: Duration },
    /// A reserve's outcome is not known yet and is being looked for among the
    /// reservations; the next lookup is due after `retry_after`.
    #[error("booking {key}: waiting to see whether an uncertain reserve went through ({done} of {total} lookups done)")]
    Verifying { key: String, retry_after: Duration, done: u32, total: u32 },
    /// The key stays held and needs the user's attention: an unreadable ledger row, two
    /// reservations that could both be this booking, an unreadable reservations list.
    /// Nothing is booked under the key until it is resolved.
    #[error("booking {key} is on hold: {reason}")]
    Held { key: String, reason: String },
    #[error("booking ledger failed: {0}")]
    Ledger(#[from] LedgerError),
}

impl BookingError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        match self {
            BookingError::Golf(e) => e.is_transient(),
            BookingError::InProgress { .. } | BookingError::Verifying { .. } | BookingError::Ledger(_) => true,
            BookingError::Held { .. } => false,
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, BookingError::Golf(e) if e.is_conflict())
    }

    /// When to try again, if the booking said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BookingError::InProgress { retry_after, .. } | BookingError::Verifying { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

/// The timing of exactly-once booking. Production defaults; tests scale them down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingPolicy {
    /// How long an attempt owns a key. Longer than one attempt can take (sign-in, lock,
    /// price, reserve and the lookups waited for), shorter than the queue's visibility
    /// timeout (6 min), so the redelivery after a crash finds the lease lapsed.
    pub lease: Duration,
    /// When to look for an uncertain reserve among the reservations, counted from when it
    /// became uncertain; only after the last lookup without a match is the key booked
    /// again.
    pub verify_after: Vec<Duration>,
    /// The longest a call waits for a lookup that is not due yet; a later one ends the
    /// call with [`BookingError::Verifying`].
    pub max_wait: Duration,
}

impl Default for BookingPolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            verify_after: [30, 60, 120, 300, 600].map(Duration::from_secs).to_vec(),
            max_wait: Duration::from_secs(45),
        }
    }
}

/// What the reservations say about an intent.
enum Search {
    /// Exactly one reservation is ours.
    Found(Box<BookingOutcome>),
    /// The next lookup is not due within the wait bound.
    NotYet { retry_after: Duration, done: u32 },
    /// Every scheduled lookup was done without a match: the reserve did not happen.
    Nothing,
}

/// What to book.
#[derive(Debug, Clone)]
enum Target<'a> {
    Slot { tee_sheet_id: i64, players: u8, holes: Holes },
    Earliest(&'a SearchRequest),
}

/// Books tee times exactly once per [`BookingKey`].
#[derive(Clone)]
pub struct Booker {
    client: GolfClient,
    ledger: Arc<dyn BookingLedger>,
    policy: BookingPolicy,
}

impl fmt::Debug for Booker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Booker").field("client", &self.client).field("policy", &self.policy).finish()
    }
}

fn names_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_lowercase(), b.trim().to_lowercase());
    a.is_empty() || b.is_empty() || a == b || a.contains(&b) || b.contains(&a)
}

/// Whether `r` could be the reservation `intent` was about to make: same start (date and
/// time) on the same course. Player count and name may differ (a site may show them
/// otherwise); erring toward "ours" is what prevents a second booking.
fn could_be_ours(intent: &BookingIntent, r: &Reservation) -> bool {
    r.start_time == intent.start_time && names_match(&r.course_name, &intent.course_name)
}

fn positive(d: chrono::TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

impl Booker {
    pub fn new(client: GolfClient, ledger: Arc<dyn BookingLedger>) -> Self {
        Self::with_policy(client, ledger, BookingPolicy::default())
    }

    pub fn with_policy(client: GolfClient, ledger: Arc<dyn BookingLedger>, policy: BookingPolicy) -> Self {
        Self { client, ledger, policy }
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
    ) -> Result<BookingOutcome, BookingError> {
        check_players(players)?;
        if tee_sheet_id <= 0 {
            return Err(GolfError::InvalidRequest("tee sheet id must be positive".into()).into());
        }
        self.run(key, course, creds, Target::Slot { tee_sheet_id, players, holes }).await
    }

    /// Search, then book the **earliest** matching tee time (the next one when it is
    /// taken between the search and the lock), exactly once per `key`.
    pub async fn auto_book(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        search: &SearchRequest,
    ) -> Result<BookingOutcome, BookingError> {
        check_players(search.players)?;
        self.run(key, course, creds, Target::Earliest(search)).await
    }

    async fn run(
        &self,
        key: &BookingKey,
        course: &Course,
        creds: &GolfCredentials,
        target: Target<'_>,
    ) -> Result<BookingOutcome, BookingError> {
        let now = Utc::now();
        let attempt = AttemptId::new(now);
        let lease = Lease { attempt: attempt.clone(), until: now + self.policy.lease };
        let previous = match self.ledger.claim(key, &lease, now).await? {
            ClaimOutcome::Confirmed(confirmation) => {
                tracing::info!(booking_key = %key, "booking already confirmed; returning the recorded confirmation");
                return Ok(BookingOutcome { confirmation, path: BookingPath::AlreadyConfirmed });
            }
            ClaimOutcome::Held { until } => {
                tracing::info!(booking_key = %key, lease_until = %until, "booking in progress in another attempt");
                let retry_after = positive(until - now).max(Duration::from_secs(1));
                return Err(BookingError::InProgress { key: key.to_string(), retry_after });
            }
            ClaimOutcome::Unreadable(reason) => {
                tracing::error!(booking_key = %key, reason, "the booking record cannot be read; the key stays held");
                return Err(BookingError::Held {
                    key: key.to_string(),
                    reason: format!("its record cannot be read ({reason}); check the reservations by hand"),
                });
            }
            ClaimOutcome::Claimed(previous) => previous,
        };
        let result = self.owned(key, &attempt, course, creds, target, previous).await;
        if let Err(e) = &result {
            tracing::warn!(booking_key = %key, course = %course.id, error = %e, "booking not finished");
            // A key left pending (its intent kept, a search under way) is handed on at
            // once; a failed or taken-over key is no longer ours and stays as it is.
            if let Err(e) = self.ledger.end_lease(key, &attempt).await {
                tracing::warn!(booking_key = %key, error = %e, "cannot end the booking lease; it lapses");
            }
        }
        result
    }

    /// Everything done while `attempt` owns the key.
    async fn owned(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        course: &Course,
        creds: &GolfCredentials,
        target: Target<'_>,
        previous: Option<LedgerEntry>,
    ) -> Result<BookingOutcome, BookingError> {
        if let Some(LedgerEntry { state: LedgerState::Pending, intent: Some(intent), verification, .. }) = previous {
            if intent.course_id != course.id {
                return Err(GolfError::InvalidRequest(format!(
                    "booking key {key} belongs to a booking at {}",
                    intent.course_id
                ))
                .into());
            }
            // An earlier attempt recorded its intent and did not finish: its reserve may
            // have happened. Continue the search where it stopped.
            let verification =
                verification.unwrap_or(Verification { uncertain_since: intent.recorded_at, lookups_done: 0 });
            tracing::info!(
                booking_key = %key,
                lookups_done = verification.lookups_done,
                "an earlier attempt did not finish; looking for its reservation"
            );
            match self.search(key, attempt, course, creds, &intent, verification).await? {
                Search::Found(outcome) => return Ok(*outcome),
                Search::NotYet { retry_after, done } => return Err(self.verifying(key, retry_after, done)),
                Search::Nothing => {
                    tracing::info!(booking_key = %key, "no reservation after the whole grace period; booking again");
                }
            }
        }
        let (intent, result) = self.attempt(key, attempt, course, creds, &target).await?;
        match result {
            Ok(outcome) => Ok(outcome),
            Err(uncertain) => {
                tracing::warn!(booking_key = %key, error = %uncertain, "reserve outcome unknown; looking for it before anything else");
                let verification = Verification { uncertain_since: Utc::now(), lookups_done: 0 };
                if !self.ledger.record_verification(key, attempt, &verification).await? {
                    return Err(self.lost(key));
                }
                match self.search(key, attempt, course, creds, &intent, verification).await? {
                    Search::Found(outcome) => Ok(*outcome),
                    Search::NotYet { retry_after, done } => Err(self.verifying(key, retry_after, done)),
                    // Only with a schedule shorter than one call's wait: leave the retry
                    // to the next delivery, which books again.
                    Search::Nothing => Err(BookingError::Golf(uncertain)),
                }
            }
        }
    }

    fn verifying(&self, key: &BookingKey, retry_after: Duration, done: u32) -> BookingError {
        let total = u32::try_from(self.policy.verify_after.len()).unwrap_or(u32::MAX);
        BookingError::Verifying { key: key.to_string(), retry_after, done, total }
    }

    fn lost(&self, key: &BookingKey) -> BookingError {
        tracing::warn!(booking_key = %key, "the booking lease was taken over by another attempt");
        BookingError::InProgress { key: key.to_string(), retry_after: self.policy.lease }
    }

    /// Look for `intent`'s reservation on the schedule, from `verification` on.
    async fn search(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        course: &Course,
        creds: &GolfCredentials,
        intent: &BookingIntent,
        mut verification: Verification,
    ) -> Result<Search, BookingError> {
        loop {
            let Some(after) = self.policy.verify_after.get(verification.lookups_done as usize) else {
                return Ok(Search::Nothing);
            };
            let due =
                verification.uncertain_since + chrono::TimeDelta::from_std(*after).unwrap_or(chrono::TimeDelta::MAX);
            let wait = positive(due - Utc::now());
            if wait > self.policy.max_wait {
                return Ok(Search::NotYet { retry_after: wait, done: verification.lookups_done });
            }
            tokio::time::sleep(wait).await;
            let reservations = match self.client.fetch_reservations(course, creds).await {
                Ok(r) => r,
                Err(e @ GolfError::Decode { .. }) => {
                    return Err(BookingError::Held {
                        key: key.to_string(),
                        reason: format!("the reservations list could not be read ({e}); check it by hand"),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let candidates: Vec<&Reservation> = reservations.iter().filter(|r| could_be_ours(intent, r)).collect();
            match candidates.as_slice() {
                [] => {}
                [r] => return self.found(key, attempt, intent, r).await.map(|o| Search::Found(Box::new(o))),
                many => {
                    tracing::warn!(booking_key = %key, candidates = many.len(), "several reservations could be this booking");
                    return Err(BookingError::Held {
                        key: key.to_string(),
                        reason: format!(
                            "{} reservations at {} could be this booking; check them by hand",
                            many.len(),
                            intent.start_time.format("%a %-d %b %H:%M")
                        ),
                    });
                }
            }
            verification.lookups_done += 1;
            tracing::info!(booking_key = %key, lookups_done = verification.lookups_done, "reservation not listed (yet)");
            if !self.ledger.record_verification(key, attempt, &verification).await? {
                return Err(self.lost(key));
            }
        }
    }

    async fn found(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        intent: &BookingIntent,
        r: &Reservation,
    ) -> Result<BookingOutcome, BookingError> {
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
        if !self.ledger.record_confirmation(key, attempt, &confirmation).await? {
            return Err(self.lost(key));
        }
        tracing::info!(booking_key = %key, reservation_id = confirmation.reservation_id, "found the reservation of the uncertain reserve");
        Ok(BookingOutcome { confirmation, path: BookingPath::FoundInReservations })
    }

    /// Step 4: (search,) lock, price, record the intent, reserve, record the
    /// confirmation. The outer error ends the call (the key is marked failed when no
    /// reserve was sent or it was refused); the inner one is an uncertain reserve, with
    /// the intent to look for.
    async fn attempt(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        course: &Course,
        creds: &GolfCredentials,
        target: &Target<'_>,
    ) -> Result<(BookingIntent, Result<BookingOutcome, GolfError>), BookingError> {
        match self.reserve(key, attempt, course, creds, target).await {
            Ok(done) => Ok(done),
            Err(BookingError::Golf(e)) => {
                // Nothing reserved: release the key for a later attempt.
                if !self.ledger.mark_failed(key, attempt, &e.to_string()).await? {
                    return Err(self.lost(key));
                }
                Err(e.into())
            }
            Err(e) => Err(e),
        }
    }

    async fn reserve(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        course: &Course,
        creds: &GolfCredentials,
        target: &Target<'_>,
    ) -> Result<(BookingIntent, Result<BookingOutcome, GolfError>), BookingError> {
        let (tee_sheet_id, players, holes, known, session, lock) = match target {
            Target::Slot { tee_sheet_id, players, holes } => {
                let session = self.client.session(course, creds).await?;
                let lock = self.client.lock_tee_time(course, creds, &session, *tee_sheet_id, *players).await?;
                (*tee_sheet_id, *players, *holes, None, session, lock)
            }
            Target::Earliest(search) => {
                let mut slots = self.client.search_tee_times(course, creds, search).await?;
                slots.sort_by_key(|s| (s.start_time, s.tee_sheet_id));
                // After the search, which may have refreshed the token.
                let session = self.client.session(course, creds).await?;
                let mut locked = None;
                for slot in &slots {
                    tracing::info!(booking_key = %key, course = %course.id, tee_sheet_id = slot.tee_sheet_id, start = %slot.start_time, "auto-booking the earliest tee time");
                    match self.client.lock_tee_time(course, creds, &session, slot.tee_sheet_id, search.players).await {
                        Ok(lock) => {
                            locked = Some((slot, lock));
                            break;
                        }
                        // Taken between the search and the lock: the next one.
                        Err(GolfError::Rejected { step: Step::Lock, message }) => {
                            tracing::info!(booking_key = %key, tee_sheet_id = slot.tee_sheet_id, reason = message, "tee time taken; trying the next");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let Some((slot, lock)) = locked else {
                    let what =
                        if slots.is_empty() { "in the requested window" } else { "left in the requested window" };
                    return Err(GolfError::NoTeeTimes(format!("{} on {} {what}", course.name, search.date)).into());
                };
                (
                    slot.tee_sheet_id,
                    search.players,
                    search.holes,
                    Some((slot.start_time, slot.course_name.clone())),
                    session,
                    lock,
                )
            }
        };
        let priced =
            self.client.price_tee_time(course, creds, &session, &lock, holes, known.as_ref().map(|k| k.0)).await?;
        let start_time = priced.start_time.or(known.as_ref().map(|k| k.0)).ok_or_else(|| GolfError::Decode {
            step: Step::Price,
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
        if !self.ledger.record_intent(key, attempt, &intent).await? {
            return Err(self.lost(key));
        }
        // From here on a reserve may happen: only a definite refusal releases the key; an
        // uncertain outcome is looked for.
        let receipt = match self.client.reserve_tee_time(course, creds, &session, &lock, &priced).await {
            Ok(receipt) => receipt,
            Err(e @ GolfError::Uncertain { .. }) => return Ok((intent, Err(e))),
            Err(e) => return Err(e.into()),
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
        if !self.ledger.record_confirmation(key, attempt, &confirmation).await? {
            return Err(self.lost(key));
        }
        tracing::info!(booking_key = %key, course = %course.id, tee_sheet_id, reservation_id = confirmation.reservation_id, "tee time booked");
        Ok((intent, Ok(BookingOutcome { confirmation, path: BookingPath::Reserved })))
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
                let matches: Vec<&Reservation> = list.iter().filter(|r| could_be_ours(intent, r)).collect();
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
    use chrono::NaiveDateTime;

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

    fn lease(now: DateTime<Utc>, secs: i64) -> Lease {
        Lease { attempt: AttemptId::new(now), until: now + chrono::TimeDelta::seconds(secs) }
    }

    #[tokio::test]
    async fn in_memory_ledger_semantics() {
        let l = InMemoryLedger::new();
        let k = BookingKey::new("msg_1").expect("key");
        let now = Utc::now();
        let (a, b) = (lease(now, 60), lease(now, 60));
        assert_eq!(l.claim(&k, &a, now).await.expect("claim"), ClaimOutcome::Claimed(None));
        assert_eq!(l.claim(&k, &b, now).await.expect("held"), ClaimOutcome::Held { until: a.until });
        assert!(!l.record_intent(&k, &b.attempt, &intent()).await.expect("not b's"));
        assert!(l.record_intent(&k, &a.attempt, &intent()).await.expect("a's"));
        // The lease lapses: b takes over with the intent; a can change nothing any more.
        let later = now + chrono::TimeDelta::seconds(61);
        let ClaimOutcome::Claimed(Some(prev)) = l.claim(&k, &b, later).await.expect("takeover") else {
            panic!("b claims the lapsed key");
        };
        assert_eq!(prev.intent.map(|i| i.start_time), Some(intent().start_time));
        assert!(!l.record_confirmation(&k, &a.attempt, &confirmation()).await.expect("stale"));
        assert!(!l.mark_failed(&k, &a.attempt, "stale").await.expect("stale"));
        assert!(!l.end_lease(&k, &a.attempt).await.expect("stale"));
        assert!(l.mark_failed(&k, &b.attempt, "boom").await.expect("b's"));
        let c = lease(later, 60);
        assert!(matches!(l.claim(&k, &c, later).await.expect("after failure"), ClaimOutcome::Claimed(Some(_))));
        let confirmed = confirmation();
        assert!(l.record_confirmation(&k, &c.attempt, &confirmed).await.expect("confirm"));
        assert!(!l.mark_failed(&k, &c.attempt, "late failure").await.expect("ignored"));
        assert_eq!(l.claim(&k, &a, later).await.expect("existing"), ClaimOutcome::Confirmed(confirmed));
        let e = l.get(&k).await.expect("get").expect("row");
        assert!(matches!(e.state, LedgerState::Confirmed { .. }));
        // Rows serialise for a table-backed implementation.
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["state"]["state"], "confirmed");
    }

    #[test]
    fn reservation_matching_errs_toward_ours() {
        let i = intent();
        let r = |time: &str, players, name: &str| Reservation {
            reservation_id: Some(1),
            start_time: NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M").expect("t"),
            course_name: name.into(),
            players,
            confirmation_key: None,
        };
        assert!(could_be_ours(&i, &r("2025-06-14 08:10", Some(2), "Birdsfoot Golf Course")));
        assert!(could_be_ours(&i, &r("2025-06-14 08:10", Some(2), "BIRDSFOOT")));
        assert!(could_be_ours(&i, &r("2025-06-14 08:10", Some(3), "Birdsfoot Golf Course")), "players not required");
        assert!(could_be_ours(&i, &r("2025-06-14 08:10", None, "")), "a missing name is not a mismatch");
        assert!(!could_be_ours(&i, &r("2025-06-14 08:20", Some(2), "Birdsfoot Golf Course")));
        assert!(!could_be_ours(&i, &r("2025-06-15 08:10", Some(2), "Birdsfoot Golf Course")));
        assert!(!could_be_ours(&i, &r("2025-06-14 08:10", Some(2), "Totteridge")));
        assert!(BookingKey::new("").is_err() && BookingKey::new("a\nb").is_err());
    }
}

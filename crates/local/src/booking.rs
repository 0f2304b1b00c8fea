//! `BookingLedger` on SQLite: one row per booking key. Each operation reads the row,
//! decides (the shared rules of `rez_core::booking`) and writes it back in one write
//! transaction of the single writer, so a claim and the owner-only updates after it are
//! atomic: two attempts racing on one key cannot both own it. A row whose parts cannot be
//! decoded reads as `Unreadable` and holds the key.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rez_core::booking::{
    AttemptId, BookingConfirmation, BookingIntent, BookingKey, BookingLedger, ClaimOutcome, Lease, LedgerEntry,
    LedgerError, LedgerState, Verification, claim_row,
};
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;

fn err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError(format!("booking ledger: {e}"))
}

/// The stored columns of one row.
struct Row {
    state: String,
    intent: Option<String>,
    confirmation: Option<String>,
    error: Option<String>,
    lease_attempt: Option<String>,
    lease_until_ms: Option<i64>,
    verification: Option<String>,
}

fn part<T>(name: &str, raw: Option<&str>, decode: impl Fn(&str) -> serde_json::Result<T>) -> Result<Option<T>, String> {
    raw.map(|r| decode(r).map_err(|e| format!("{name}: {e}"))).transpose()
}

/// Decode a row; any part that does not decode makes the whole row `Unreadable`.
fn decode(row: Row) -> LedgerEntry {
    let parts = || -> Result<LedgerEntry, String> {
        let intent = part("intent", row.intent.as_deref(), |r| serde_json::from_str::<BookingIntent>(r))?;
        let verification =
            part("verification", row.verification.as_deref(), |r| serde_json::from_str::<Verification>(r))?;
        let lease = match (row.lease_attempt.as_deref(), row.lease_until_ms) {
            (Some(a), Some(ms)) => Some(Lease {
                attempt: AttemptId::parse(a).map_err(|e| format!("lease: {e}"))?,
                until: Utc.timestamp_millis_opt(ms).single().ok_or("lease: bad expiry")?,
            }),
            (None, None) => None,
            _ => return Err("lease: half recorded".into()),
        };
        let state = match row.state.as_str() {
            "pending" => LedgerState::Pending,
            "failed" => LedgerState::Failed { error: row.error.clone().unwrap_or_default() },
            "confirmed" => match part("confirmation", row.confirmation.as_deref(), |r| {
                serde_json::from_str::<BookingConfirmation>(r)
            })? {
                Some(confirmation) => LedgerState::Confirmed { confirmation },
                None => return Err("confirmed without a confirmation".into()),
            },
            other => return Err(format!("unknown state `{other}`")),
        };
        Ok(LedgerEntry { intent, state, lease, verification })
    };
    parts().unwrap_or_else(|reason| LedgerEntry::new(LedgerState::Unreadable { reason }))
}

fn load(c: &Connection, key: &str) -> Result<Option<LedgerEntry>, rusqlite::Error> {
    c.prepare_cached(
        "SELECT state, intent, confirmation, error, lease_attempt, lease_until_ms, verification \
         FROM booking_ledger WHERE key = ?1",
    )?
    .query_row([key], |r| {
        Ok(Row {
            state: r.get(0)?,
            intent: r.get(1)?,
            confirmation: r.get(2)?,
            error: r.get(3)?,
            lease_attempt: r.get(4)?,
            lease_until_ms: r.get(5)?,
            verification: r.get(6)?,
        })
    })
    .optional()
    .map(|row| row.map(decode))
}

fn json<T>(v: Option<&T>, encode: fn(&T) -> serde_json::Result<String>) -> Result<Option<String>, LedgerError> {
    v.map(|v| encode(v).map_err(err)).transpose()
}

/// Write `entry` as the whole row of `key` (never an unreadable one: those are left as
/// they are).
fn store(c: &Connection, key: &str, entry: &LedgerEntry, now_ms: i64) -> Result<(), rez_core::ports::StoreError> {
    let (state, confirmation, error) = match &entry.state {
        LedgerState::Pending => ("pending", None, None),
        LedgerState::Confirmed { confirmation } => ("confirmed", Some(confirmation), None),
        LedgerState::Failed { error } => ("failed", None, Some(error.chars().take(2000).collect::<String>())),
        LedgerState::Unreadable { .. } => return Ok(()),
    };
    let to_store = |e: LedgerError| rez_core::ports::StoreError::Unavailable(e.0);
    c.execute(
        "INSERT INTO booking_ledger \
         (key, state, intent, confirmation, error, lease_attempt, lease_until_ms, verification, updated_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT(key) DO UPDATE SET state = ?2, intent = ?3, confirmation = ?4, error = ?5, \
         lease_attempt = ?6, lease_until_ms = ?7, verification = ?8, updated_ms = ?9",
        rusqlite::params![
            key,
            state,
            json(entry.intent.as_ref(), serde_json::to_string::<BookingIntent>).map_err(to_store)?,
            json(confirmation, serde_json::to_string::<BookingConfirmation>).map_err(to_store)?,
            error,
            entry.lease.as_ref().map(|l| l.attempt.to_string()),
            entry.lease.as_ref().map(|l| l.until.timestamp_millis()),
            json(entry.verification.as_ref(), serde_json::to_string::<Verification>).map_err(to_store)?,
            now_ms,
        ],
    )
    .map_err(crate::db::sql)?;
    Ok(())
}

impl LocalStore {
    /// Apply `change` to the row of `key` if `attempt` owns it, in one transaction.
    async fn if_owner(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        change: impl FnOnce(&mut LedgerEntry) + Send + 'static,
    ) -> Result<bool, LedgerError> {
        let key = key.as_str().to_owned();
        let attempt = attempt.clone();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                let Some(mut entry) = load(ctx.tx, &key).map_err(crate::db::sql)? else { return Ok(false) };
                if !entry.owned_by(&attempt) {
                    return Ok(false);
                }
                change(&mut entry);
                store(ctx.tx, &key, &entry, now_ms)?;
                Ok(true)
            })
            .await
            .map_err(err)
    }
}

#[async_trait]
impl BookingLedger for LocalStore {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        let key = key.as_str().to_owned();
        self.db.read(move |c| load(c, &key).map_err(crate::db::sql)).await.map_err(err)
    }

    async fn claim(&self, key: &BookingKey, lease: &Lease, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        let key = key.as_str().to_owned();
        let lease = lease.clone();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                let current = load(ctx.tx, &key).map_err(crate::db::sql)?;
                let (outcome, next) = claim_row(current.as_ref(), &lease, now);
                if let Some(next) = next {
                    store(ctx.tx, &key, &next, now_ms)?;
                }
                Ok(outcome)
            })
            .await
            .map_err(err)
    }

    async fn record_intent(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        intent: &BookingIntent,
    ) -> Result<bool, LedgerError> {
        let intent = intent.clone();
        self.if_owner(key, attempt, move |e| {
            e.intent = Some(intent);
            e.verification = None;
        })
        .await
    }

    async fn record_verification(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        verification: &Verification,
    ) -> Result<bool, LedgerError> {
        let verification = verification.clone();
        self.if_owner(key, attempt, move |e| e.verification = Some(verification)).await
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        confirmation: &BookingConfirmation,
    ) -> Result<bool, LedgerError> {
        let confirmation = confirmation.clone();
        self.if_owner(key, attempt, move |e| e.state = LedgerState::Confirmed { confirmation }).await
    }

    async fn mark_failed(&self, key: &BookingKey, attempt: &AttemptId, error: &str) -> Result<bool, LedgerError> {
        let error = error.to_owned();
        self.if_owner(key, attempt, move |e| e.state = LedgerState::Failed { error }).await
    }

    async fn end_lease(&self, key: &BookingKey, attempt: &AttemptId) -> Result<bool, LedgerError> {
        self.if_owner(key, attempt, |e| e.lease = None).await
    }
}

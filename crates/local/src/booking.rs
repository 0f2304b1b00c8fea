//! `BookingLedger` on SQLite: one row per booking key. `record_intent` is a single
//! conditional write (only an absent or failed key takes a new intent), so two attempts
//! racing on one key cannot both proceed to reserve.

use async_trait::async_trait;
use rez_core::booking::{
    BookingConfirmation, BookingIntent, BookingKey, BookingLedger, IntentOutcome, LedgerEntry, LedgerError, LedgerState,
};
use rusqlite::{Connection, OptionalExtension};

use crate::LocalStore;

fn err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError(format!("booking ledger: {e}"))
}

fn load(c: &Connection, key: &str) -> Result<Option<LedgerEntry>, rusqlite::Error> {
    c.prepare_cached("SELECT state, intent, confirmation, error FROM booking_ledger WHERE key = ?1")?
        .query_row([key], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()
        .map(|row| {
            row.map(|(state, intent, confirmation, error)| {
                let intent = intent.and_then(|i| serde_json::from_str::<BookingIntent>(&i).ok());
                let state = match (state.as_str(), confirmation) {
                    ("confirmed", Some(c)) => match serde_json::from_str::<BookingConfirmation>(&c) {
                        Ok(confirmation) => LedgerState::Confirmed { confirmation },
                        // An unreadable confirmation must never look like "free to book".
                        Err(_) => LedgerState::Pending,
                    },
                    ("failed", _) => LedgerState::Failed { error: error.unwrap_or_default() },
                    _ => LedgerState::Pending,
                };
                LedgerEntry { intent, state }
            })
        })
}

#[async_trait]
impl BookingLedger for LocalStore {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        let key = key.as_str().to_owned();
        self.db.read(move |c| load(c, &key).map_err(crate::db::sql)).await.map_err(err)
    }

    async fn record_intent(&self, key: &BookingKey, intent: &BookingIntent) -> Result<IntentOutcome, LedgerError> {
        let key = key.as_str().to_owned();
        let body = serde_json::to_string(intent).map_err(err)?;
        let intent = intent.clone();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                let tx = ctx.tx;
                if let Some(e) = load(tx, &key).map_err(crate::db::sql)? {
                    match e.state {
                        LedgerState::Confirmed { confirmation } => return Ok(IntentOutcome::Existing(confirmation)),
                        LedgerState::Pending => return Ok(IntentOutcome::Pending(e.intent.unwrap_or(intent))),
                        LedgerState::Failed { .. } => {}
                    }
                }
                tx.execute(
                    "INSERT INTO booking_ledger (key, state, intent, updated_ms) VALUES (?1, 'pending', ?2, ?3) \
                     ON CONFLICT(key) DO UPDATE SET state = 'pending', intent = ?2, error = NULL, updated_ms = ?3 \
                     WHERE booking_ledger.state = 'failed'",
                    rusqlite::params![key, body, now_ms],
                )
                .map_err(crate::db::sql)?;
                Ok(IntentOutcome::New)
            })
            .await
            .map_err(err)
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        confirmation: &BookingConfirmation,
    ) -> Result<(), LedgerError> {
        let key = key.as_str().to_owned();
        let body = serde_json::to_string(confirmation).map_err(err)?;
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                ctx.tx
                    .execute(
                        "INSERT INTO booking_ledger (key, state, confirmation, updated_ms) VALUES (?1, 'confirmed', ?2, ?3) \
                         ON CONFLICT(key) DO UPDATE SET state = 'confirmed', confirmation = ?2, error = NULL, updated_ms = ?3",
                        rusqlite::params![key, body, now_ms],
                    )
                    .map_err(crate::db::sql)?;
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn mark_failed(&self, key: &BookingKey, error: &str) -> Result<(), LedgerError> {
        let key = key.as_str().to_owned();
        let error: String = error.chars().take(2000).collect();
        let now_ms = self.now_ms();
        self.db
            .write(move |ctx| {
                ctx.tx
                    .execute(
                        "INSERT INTO booking_ledger (key, state, error, updated_ms) VALUES (?1, 'failed', ?2, ?3) \
                         ON CONFLICT(key) DO UPDATE SET state = 'failed', error = ?2, updated_ms = ?3 \
                         WHERE booking_ledger.state != 'confirmed'",
                        rusqlite::params![key, error, now_ms],
                    )
                    .map_err(crate::db::sql)?;
                Ok(())
            })
            .await
            .map_err(err)
    }
}

//! `BookingLedger` on DynamoDB (the booking-ledger table), the AWS counterpart of
//! `rez_local::booking`: one item per booking key. It exists so golf booking stays
//! exactly-once when Lambda runs two deliveries of one booking message at the same time.
//!
//! Item layout mirrors the local row: `key` (hash), `state` (`pending` | `confirmed` |
//! `failed`), `intent`, `confirmation` and `verification` (JSON), `error`,
//! `lease_attempt` and `lease_until_ms` (the owner of a pending key), `updated_ms`, and
//! `rev`, a counter every write increments. Every write is one conditional write:
//!
//! - `claim` reads the item (strongly consistent), decides with the shared rules of
//!   `rez_core::booking::claim_row`, and puts the new item on the condition that it is
//!   still absent or at the `rev` it read; when another write came in between it reads
//!   and decides again;
//! - every other write is an update on the condition
//!   `state = pending AND lease_attempt = :attempt`: an attempt that lost the key changes
//!   nothing.
//!
//! A part that does not decode makes the item `Unreadable`, which holds the key.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use chrono::{DateTime, TimeZone, Utc};
use rez_core::booking::{
    AttemptId, BookingConfirmation, BookingIntent, BookingKey, BookingLedger, ClaimOutcome, Lease, LedgerEntry,
    LedgerError, LedgerState, Verification, claim_row,
};

use crate::AwsStore;
use crate::codec::{Item, n, opt_n, opt_s, s};
use crate::error::backend;

/// How often `claim` reads and decides again when the item changes under it.
const CLAIM_ATTEMPTS: usize = 8;
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 2000;

fn err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError(format!("booking ledger: {e}"))
}

fn part<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>, String> {
    opt_s(item, name).map(|r| serde_json::from_str(r).map_err(|e| format!("{name}: {e}"))).transpose()
}

/// Decode an item; any part that does not decode makes it `Unreadable`.
fn entry_of(item: &Item) -> LedgerEntry {
    let parts = || -> Result<LedgerEntry, String> {
        let intent = part::<BookingIntent>(item, "intent")?;
        let verification = part::<Verification>(item, "verification")?;
        let until = opt_n(item, "lease_until_ms").map_err(|e| format!("lease: {e}"))?;
        let lease = match (opt_s(item, "lease_attempt"), until) {
            (Some(a), Some(ms)) => Some(Lease {
                attempt: AttemptId::parse(a).map_err(|e| format!("lease: {e}"))?,
                until: Utc.timestamp_millis_opt(ms).single().ok_or("lease: bad expiry")?,
            }),
            (None, None) => None,
            _ => return Err("lease: half recorded".into()),
        };
        let state = match opt_s(item, "state") {
            Some("pending") => LedgerState::Pending,
            Some("failed") => LedgerState::Failed { error: opt_s(item, "error").unwrap_or_default().to_owned() },
            Some("confirmed") => match part::<BookingConfirmation>(item, "confirmation")? {
                Some(confirmation) => LedgerState::Confirmed { confirmation },
                None => return Err("confirmed without a confirmation".into()),
            },
            other => return Err(format!("unknown state {other:?}")),
        };
        Ok(LedgerEntry { intent, state, lease, verification })
    };
    parts().unwrap_or_else(|reason| LedgerEntry::new(LedgerState::Unreadable { reason }))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, LedgerError> {
    serde_json::to_string(v).map_err(err)
}

/// The item of `entry` (never called for an unreadable one).
fn item_of(key: &BookingKey, entry: &LedgerEntry, rev: i64, now_ms: i64) -> Result<Item, LedgerError> {
    let mut item = Item::new();
    item.insert("key".into(), s(key.as_str()));
    let state = match &entry.state {
        LedgerState::Pending => "pending",
        LedgerState::Confirmed { confirmation } => {
            item.insert("confirmation".into(), s(&json(confirmation)?));
            "confirmed"
        }
        LedgerState::Failed { error } => {
            item.insert("error".into(), s(&error.chars().take(MAX_ERROR_CHARS).collect::<String>()));
            "failed"
        }
        LedgerState::Unreadable { .. } => return Err(err("an unreadable row is never written")),
    };
    item.insert("state".into(), s(state));
    if let Some(i) = &entry.intent {
        item.insert("intent".into(), s(&json(i)?));
    }
    if let Some(v) = &entry.verification {
        item.insert("verification".into(), s(&json(v)?));
    }
    if let Some(l) = &entry.lease {
        item.insert("lease_attempt".into(), s(&l.attempt.to_string()));
        item.insert("lease_until_ms".into(), n(l.until.timestamp_millis()));
    }
    item.insert("rev".into(), n(rev));
    item.insert("updated_ms".into(), n(now_ms));
    Ok(item)
}

impl AwsStore {
    async fn ledger_item(&self, key: &BookingKey) -> Result<Option<Item>, LedgerError> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.names.ledger_table)
            .key("key", s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err(backend("dynamodb get_item ledger", e)))?;
        Ok(out.item().cloned())
    }

    /// An update of `key` on the condition that `attempt` owns it; `update` adds the
    /// changes to `SET #updated = :now, #rev = #rev + :one`. False when it does not own it.
    async fn if_owner(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        what: &'static str,
        update: impl FnOnce(UpdateItemFluentBuilder) -> UpdateItemFluentBuilder,
    ) -> Result<bool, LedgerError> {
        let req = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.names.ledger_table)
            .key("key", s(key.as_str()))
            .condition_expression("#state = :pending AND #attempt = :attempt")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#attempt", "lease_attempt")
            .expression_attribute_names("#updated", "updated_ms")
            .expression_attribute_names("#rev", "rev")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":attempt", s(&attempt.to_string()))
            .expression_attribute_values(":now", n(self.clock.now().timestamp_millis()))
            .expression_attribute_values(":one", n(1));
        match update(req).send().await {
            Ok(_) => {
                tracing::info!(booking_key = %key, attempt = %attempt, what, "booking ledger updated");
                Ok(true)
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::info!(booking_key = %key, attempt = %attempt, what, "the attempt no longer owns the booking key");
                Ok(false)
            }
            Err(e) => Err(err(backend("dynamodb update_item ledger", e))),
        }
    }
}

#[async_trait]
impl BookingLedger for AwsStore {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        Ok(self.ledger_item(key).await?.as_ref().map(entry_of))
    }

    async fn claim(&self, key: &BookingKey, lease: &Lease, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let current = self.ledger_item(key).await?;
            let stored_rev = match &current {
                Some(item) => opt_n(item, "rev").map_err(err)?,
                None => None,
            };
            let rev = stored_rev.unwrap_or(0);
            let entry = current.as_ref().map(entry_of);
            let (outcome, next) = claim_row(entry.as_ref(), lease, now);
            let Some(next) = next else { return Ok(outcome) };
            let item = item_of(key, &next, rev + 1, self.clock.now().timestamp_millis())?;
            let mut put = self.clients.dynamodb.put_item().table_name(&self.names.ledger_table).set_item(Some(item));
            put = if current.is_none() {
                put.condition_expression("attribute_not_exists(#key)").expression_attribute_names("#key", "key")
            } else if stored_rev.is_some() {
                put.condition_expression("#rev = :rev")
                    .expression_attribute_names("#rev", "rev")
                    .expression_attribute_values(":rev", n(rev))
            } else {
                // An item written before revisions were kept.
                put.condition_expression("attribute_exists(#key) AND attribute_not_exists(#rev)")
                    .expression_attribute_names("#key", "key")
                    .expression_attribute_names("#rev", "rev")
            };
            match put.send().await {
                Ok(_) => {
                    tracing::info!(booking_key = %key, attempt = %lease.attempt, "booking key claimed");
                    return Ok(outcome);
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => continue,
                Err(e) => return Err(err(backend("dynamodb put_item ledger claim", e))),
            }
        }
        Err(err(format!("key {key} keeps changing; try again")))
    }

    async fn record_intent(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        intent: &BookingIntent,
    ) -> Result<bool, LedgerError> {
        let body = json(intent)?;
        self.if_owner(key, attempt, "intent", |u| {
            u.update_expression("SET #intent = :intent, #updated = :now, #rev = #rev + :one REMOVE #verification")
                .expression_attribute_names("#intent", "intent")
                .expression_attribute_names("#verification", "verification")
                .expression_attribute_values(":intent", s(&body))
        })
        .await
    }

    async fn record_verification(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        verification: &Verification,
    ) -> Result<bool, LedgerError> {
        let body = json(verification)?;
        self.if_owner(key, attempt, "verification", |u| {
            u.update_expression("SET #verification = :v, #updated = :now, #rev = #rev + :one")
                .expression_attribute_names("#verification", "verification")
                .expression_attribute_values(":v", s(&body))
        })
        .await
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        attempt: &AttemptId,
        confirmation: &BookingConfirmation,
    ) -> Result<bool, LedgerError> {
        let body = json(confirmation)?;
        self.if_owner(key, attempt, "confirmation", |u| {
            u.update_expression(
                "SET #state = :confirmed, #conf = :conf, #updated = :now, #rev = #rev + :one REMOVE #error",
            )
            .expression_attribute_names("#conf", "confirmation")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":confirmed", s("confirmed"))
            .expression_attribute_values(":conf", s(&body))
        })
        .await
    }

    async fn mark_failed(&self, key: &BookingKey, attempt: &AttemptId, error: &str) -> Result<bool, LedgerError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.if_owner(key, attempt, "failure", |u| {
            u.update_expression("SET #state = :failed, #error = :error, #updated = :now, #rev = #rev + :one")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":error", s(&error))
        })
        .await
    }

    async fn end_lease(&self, key: &BookingKey, attempt: &AttemptId) -> Result<bool, LedgerError> {
        self.if_owner(key, attempt, "release", |u| {
            u.update_expression("SET #updated = :now, #rev = #rev + :one REMOVE #attempt, #until")
                .expression_attribute_names("#until", "lease_until_ms")
        })
        .await
    }
}

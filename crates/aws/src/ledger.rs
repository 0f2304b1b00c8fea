//! `BookingLedger` on DynamoDB (the booking-ledger table), the AWS counterpart of
//! `rez_local::booking`: one item per booking key, recording the intent before a reserve
//! and the confirmation after. It exists so golf booking stays exactly-once when Lambda
//! runs two attempts of one booking message at the same time.
//!
//! Item layout mirrors the local row: `key` (hash), `state` (`pending` | `confirmed` |
//! `failed`), `intent` and `confirmation` (JSON), `error`, `updated_ms`. The parts are
//! separate attributes rather than one `doc` because each write changes only some of
//! them (a failure keeps the intent) and must stay a single conditional write:
//!
//! - `record_intent`: an update that creates or takes over the item only if it is absent
//!   or `failed`; when the condition fails, the stored item (returned with the failure,
//!   or read back) says whether the key is pending or confirmed;
//! - `record_confirmation`: an unconditional update;
//! - `mark_failed`: an update guarded by "not confirmed" (a confirmed key stays so).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use rez_core::booking::{
    BookingConfirmation, BookingIntent, BookingKey, BookingLedger, IntentOutcome, LedgerEntry, LedgerError, LedgerState,
};

use crate::AwsStore;
use crate::codec::{Item, n, opt_s, s};
use crate::error::backend;

/// How often `record_intent` re-reads when the key changes between its write and read.
const INTENT_ATTEMPTS: usize = 5;

fn err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError(format!("booking ledger: {e}"))
}

fn entry_of(item: &Item) -> LedgerEntry {
    let intent = opt_s(item, "intent").and_then(|i| serde_json::from_str::<BookingIntent>(i).ok());
    let state = match (opt_s(item, "state"), opt_s(item, "confirmation")) {
        (Some("confirmed"), Some(c)) => match serde_json::from_str::<BookingConfirmation>(c) {
            Ok(confirmation) => LedgerState::Confirmed { confirmation },
            // An unreadable confirmation must never look like "free to book".
            Err(_) => LedgerState::Pending,
        },
        (Some("failed"), _) => LedgerState::Failed { error: opt_s(item, "error").unwrap_or_default().to_owned() },
        _ => LedgerState::Pending,
    };
    LedgerEntry { intent, state }
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
}

#[async_trait]
impl BookingLedger for AwsStore {
    async fn get(&self, key: &BookingKey) -> Result<Option<LedgerEntry>, LedgerError> {
        Ok(self.ledger_item(key).await?.as_ref().map(entry_of))
    }

    async fn record_intent(&self, key: &BookingKey, intent: &BookingIntent) -> Result<IntentOutcome, LedgerError> {
        let body = serde_json::to_string(intent).map_err(err)?;
        for _ in 0..INTENT_ATTEMPTS {
            let out = self
                .clients
                .dynamodb
                .update_item()
                .table_name(&self.names.ledger_table)
                .key("key", s(key.as_str()))
                .update_expression("SET #state = :pending, #intent = :intent, #updated = :now REMOVE #error")
                .condition_expression("attribute_not_exists(#key) OR #state = :failed")
                .expression_attribute_names("#key", "key")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#intent", "intent")
                .expression_attribute_names("#updated", "updated_ms")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":intent", s(&body))
                .expression_attribute_values(":now", n(self.clock.now().timestamp_millis()))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let stored = match out {
                Ok(_) => {
                    tracing::info!(booking_key = %key, "booking intent recorded");
                    return Ok(IntentOutcome::New);
                }
                Err(e) => match e.as_service_error() {
                    Some(se) if se.is_conditional_check_failed_exception() => {
                        let returned = match se {
                            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                                c,
                            ) => c.item().cloned(),
                            _ => None,
                        };
                        match returned {
                            Some(item) => Some(item),
                            None => self.ledger_item(key).await?,
                        }
                    }
                    _ => return Err(err(backend("dynamodb update_item ledger intent", e))),
                },
            };
            // The condition failed, so the key is pending or confirmed, unless it changed
            // again in between (then try the write again).
            if let Some(item) = stored {
                let entry = entry_of(&item);
                match entry.state {
                    LedgerState::Confirmed { confirmation } => return Ok(IntentOutcome::Existing(confirmation)),
                    LedgerState::Pending => {
                        tracing::info!(booking_key = %key, "booking intent already pending");
                        return Ok(IntentOutcome::Pending(entry.intent.unwrap_or_else(|| intent.clone())));
                    }
                    LedgerState::Failed { .. } => {}
                }
            }
        }
        Err(LedgerError(format!("booking ledger: key {key} keeps changing; try again")))
    }

    async fn record_confirmation(
        &self,
        key: &BookingKey,
        confirmation: &BookingConfirmation,
    ) -> Result<(), LedgerError> {
        let body = serde_json::to_string(confirmation).map_err(err)?;
        self.clients
            .dynamodb
            .update_item()
            .table_name(&self.names.ledger_table)
            .key("key", s(key.as_str()))
            .update_expression("SET #state = :confirmed, #conf = :conf, #updated = :now REMOVE #error")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#conf", "confirmation")
            .expression_attribute_names("#updated", "updated_ms")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":confirmed", s("confirmed"))
            .expression_attribute_values(":conf", s(&body))
            .expression_attribute_values(":now", n(self.clock.now().timestamp_millis()))
            .send()
            .await
            .map_err(|e| err(backend("dynamodb update_item ledger confirmation", e)))?;
        tracing::info!(booking_key = %key, "booking confirmed");
        Ok(())
    }

    async fn mark_failed(&self, key: &BookingKey, error: &str) -> Result<(), LedgerError> {
        let error: String = error.chars().take(2000).collect();
        let out = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.names.ledger_table)
            .key("key", s(key.as_str()))
            .update_expression("SET #state = :failed, #error = :error, #updated = :now")
            .condition_expression("attribute_not_exists(#key) OR #state <> :confirmed")
            .expression_attribute_names("#key", "key")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#updated", "updated_ms")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":confirmed", s("confirmed"))
            .expression_attribute_values(":error", s(&error))
            .expression_attribute_values(":now", n(self.clock.now().timestamp_millis()))
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(booking_key = %key, "booking attempt marked failed");
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::warn!(booking_key = %key, "failure reported for a confirmed booking; it stays confirmed");
                Ok(())
            }
            Err(e) => Err(err(backend("dynamodb update_item ledger failure", e))),
        }
    }
}

//! One DynamoDB transaction with its cancellation read: which of its items failed their
//! condition. The agent's run store and budget ledger decide from that what a refused write
//! means (a step already stored, a lost lease, a cap reached), so this file turns the SDK's
//! error into the list of reasons, and retries the one cancellation that says nothing about
//! the items: a concurrent transaction on the same items (`TransactionConflict`).

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use rez_core::ports::{StoreError, StoreResult};

use crate::error::backend;

/// How often a transaction cancelled only by contention is sent again.
const CONTENTION_RETRIES: u32 = 8;

/// The reason code DynamoDB gives an item whose condition failed.
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transacted {
    Committed,
    /// Cancelled; the reason code of each item in order (`None` for an item that was fine).
    Cancelled(Vec<String>),
}

impl Transacted {
    /// Whether item `i`'s condition failed.
    pub(crate) fn failed(&self, i: usize) -> bool {
        match self {
            Transacted::Committed => false,
            Transacted::Cancelled(codes) => codes.get(i).is_some_and(|c| c == CONDITION_FAILED),
        }
    }
}

/// Send `items` as one TransactWriteItems; a cancellation caused only by contention (a
/// concurrent transaction, or one still in progress) is retried after a short pause.
pub(crate) async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
    context: &str,
) -> StoreResult<Transacted> {
    let mut attempt = 0;
    loop {
        let out = client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
        let e = match out {
            Ok(_) => return Ok(Transacted::Committed),
            Err(e) => e,
        };
        let contention = match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(t)) => {
                let codes: Vec<String> =
                    t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
                if !only_contention(&codes) {
                    return Ok(Transacted::Cancelled(codes));
                }
                true
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_)) => true,
            _ => false,
        };
        attempt += 1;
        if !contention || attempt > CONTENTION_RETRIES {
            return Err(backend(context, e));
        }
        tracing::debug!(attempt, context, "transaction cancelled by a concurrent one; sending it again");
        tokio::time::sleep(contention_pause(attempt)).await;
    }
}

/// Whether a cancellation says nothing about the items: no condition failed, and another
/// transaction on the same items was the cause (sending it again may commit it).
fn only_contention(codes: &[String]) -> bool {
    !codes.iter().any(|c| c == CONDITION_FAILED) && codes.iter().any(|c| c == "TransactionConflict")
}

/// The pause before sending a transaction again after its `attempt`-th contention: growing,
/// and jittered so that transactions which collided once do not collide again in step (a
/// day's budget item is shared by every run of the day).
fn contention_pause(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 5 * u64::from(attempt.min(CONTENTION_RETRIES));
    Duration::from_millis(base + rand::rng().random_range(0..=base))
}

/// A builder error of a transaction item (a required field left out: a bug).
pub(crate) fn build_error(what: &str, e: impl std::error::Error) -> StoreError {
    StoreError::Corrupt(format!("cannot build {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_conflict_without_a_failed_condition_is_sent_again() {
        let codes = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(only_contention(&codes(&["None", "TransactionConflict", "None"])));
        assert!(!only_contention(&codes(&["ConditionalCheckFailed", "TransactionConflict"])), "a refusal is final");
        assert!(!only_contention(&codes(&["None", "ConditionalCheckFailed"])));
        assert!(!only_contention(&codes(&["ThrottlingError", "None"])), "throttling is the SDK's to retry");
        assert!(!only_contention(&[]));
        assert!(Transacted::Cancelled(codes(&["None", "ConditionalCheckFailed"])).failed(1));
        assert!(!Transacted::Committed.failed(0));
    }

    #[test]
    fn contention_pauses_grow_within_bounds() {
        for attempt in 1..=CONTENTION_RETRIES {
            let p = contention_pause(attempt).as_millis() as u64;
            let base = 5 * u64::from(attempt);
            assert!((base..=2 * base).contains(&p), "{attempt}: {p}");
        }
    }
}

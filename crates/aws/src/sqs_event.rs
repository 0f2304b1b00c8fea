//! Lambda mode: the SQS event source receives for us and hands the function a batch of
//! records. [`deliveries_from_records`] turns each record into a [`Delivery`] exactly as
//! [`Queues::receive`](rez_core::ports::Queues::receive) would (current record read
//! from DynamoDB, marked `processing`, receipt remembered), so processors then call
//! `complete`/`fail` on them as in `rez serve`. Records that fail here should be
//! reported as batch item failures (their `message_id`); records that are skipped
//! (already completed, no such message, dead-lettered) are simply absent from the
//! output's deliveries, their SQS copy already deleted.

use aws_lambda_events::event::sqs::SqsMessage;
use rez_core::ports::{Delivery, StoreError};

use crate::AwsStore;

/// What became of one record.
#[derive(Debug)]
pub enum RecordOutcome {
    /// Process it, then `complete` or `fail` it.
    Deliver(Box<Delivery>),
    /// Nothing to do (already handled, or moved to the DLQ); not a failure.
    Skipped,
}

/// One outcome per record, in order. `Err((record message id, error))` marks a record
/// to report as a batch item failure: SQS makes it visible again after its visibility
/// timeout.
pub async fn deliveries_from_records(
    store: &AwsStore,
    records: &[SqsMessage],
) -> Vec<Result<RecordOutcome, (String, StoreError)>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let record_id = r.message_id.clone().unwrap_or_default();
        out.push(take(store, r).await.map_err(|e| {
            tracing::warn!(sqs_message_id = %record_id, error = %e, "could not take an SQS record");
            (record_id, e)
        }));
    }
    out
}

async fn take(store: &AwsStore, r: &SqsMessage) -> Result<RecordOutcome, StoreError> {
    let arn = r.event_source_arn.as_deref().unwrap_or_default();
    let queue = store
        .names
        .queue_by_arn(arn)
        .ok_or_else(|| StoreError::Unavailable(format!("record from an unknown queue `{arn}`")))?;
    let receipt = r.receipt_handle.as_deref().ok_or_else(|| StoreError::Corrupt("record without receipt".into()))?;
    let body = r.body.as_deref().unwrap_or_default();
    let count = r.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
    Ok(match crate::queues::take_delivery(store, queue, receipt, body, count).await? {
        Some(d) => RecordOutcome::Deliver(Box::new(d)),
        None => RecordOutcome::Skipped,
    })
}

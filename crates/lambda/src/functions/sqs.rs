//! The queue consumers (`processor`, `webaction`, `scheduler`, `agent`): an SQS event source hands
//! them batches of up to 10 records; each record is processed exactly like a local
//! worker processes a delivery, and the records that must be retried come back as
//! `batchItemFailures` (`ReportBatchItemFailures`), so one bad record never makes SQS
//! redeliver the whole batch. Each batch's size and failed records are logged as metrics
//! (`metrics.rs`), so the error-rate alarms see records that failed without the
//! invocation failing.
//!
//! The scheduler's queue also receives EventBridge Scheduler firings (the schedule's
//! target input, not a stored message); those are recognised and recorded through
//! `Schedules::fire_occurrence`, which creates the occurrence's message exactly once.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use rez_runtime::metrics::Outcome;
use rez_runtime::workers::Handler;
use rez_runtime::workers::pool;
use serde::Serialize;

use crate::metrics;
use crate::settings::Function;
use crate::wiring::App;

/// The `SQSBatchResponse` document.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

pub async fn run(function: Function, app: App, handler: Arc<dyn Handler>) -> Result<(), lambda_runtime::Error> {
    // Lambda names the function in the environment; the metrics carry it as a dimension.
    let function_name: Arc<str> =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| function.as_str().to_owned()).into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        let handler = handler.clone();
        let function_name = function_name.clone();
        async move {
            let records = event.payload.records;
            let items = records.len();
            let response = handle_batch(function, &app, &*handler, records).await;
            let now_ms = chrono::Utc::now().timestamp_millis();
            println!("{}", metrics::batch_line(&function_name, items, response.batch_item_failures.len(), now_ms));
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// Process one batch; the records to retry are returned.
pub async fn handle_batch(
    function: Function,
    app: &App,
    handler: &dyn Handler,
    records: Vec<SqsMessage>,
) -> BatchResponse {
    let results = futures::future::join_all(records.iter().map(|r| handle_record(function, app, handler, r))).await;
    let mut response = BatchResponse::default();
    for (record, ok) in records.iter().zip(results) {
        if !ok {
            response
                .batch_item_failures
                .push(ItemFailure { item_identifier: record.message_id.clone().unwrap_or_default() });
        }
    }
    response
}

/// True when the record is done with (SQS may delete it).
async fn handle_record(function: Function, app: &App, handler: &dyn Handler, record: &SqsMessage) -> bool {
    let body = record.body.as_deref().unwrap_or_default();
    if function == Function::Scheduler {
        use rez_aws::scheduler::{FiringParseError, parse_firing};
        match parse_firing(body) {
            Ok(firing) => {
                return match app.services.schedules.fire_occurrence(&firing.schedule_id, firing.scheduled_time).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(schedule_id = %firing.schedule_id, execution_id = %firing.execution_id, error = %e, "recording a firing failed; SQS will redeliver it");
                        false
                    }
                };
            }
            // An ordinary message of the schedule-creation queue.
            Err(FiringParseError::NotAFiring | FiringParseError::NotJson(_)) => {}
            Err(e) => {
                // Retrying cannot fix it; after the receive limit it rests in the DLQ.
                tracing::error!(sqs_message_id = record.message_id.as_deref().unwrap_or(""), error = %e, "malformed EventBridge firing");
                return false;
            }
        }
    }
    use rez_aws::sqs_event::{RecordOutcome, deliveries_from_records};
    let delivery = match deliveries_from_records(&app.store, std::slice::from_ref(record)).await.pop() {
        Some(Ok(RecordOutcome::Deliver(d))) => *d,
        // Nothing to do (already completed, dead-lettered or no longer stored).
        Some(Ok(RecordOutcome::Skipped)) => return true,
        // Logged where it happened; SQS redelivers it after its visibility timeout.
        Some(Err(_)) | None => return false,
    };
    let s = &app.services;
    match pool::process(&*s.queues, handler, &s.metrics, delivery, app.settings.handler_timeout).await {
        // A deferred delivery was replaced by a delayed copy: this record is done.
        Outcome::Completed | Outcome::Deferred | Outcome::DeadLettered => true,
        Outcome::Retrying | Outcome::Stale => false,
    }
}

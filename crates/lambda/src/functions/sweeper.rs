//! The `sweeper` function: an EventBridge rule invokes it every few minutes to
//! re-publish messages whose publish failed after they were stored (status `created`),
//! which is what makes "accepted means delivered" hold on AWS (a message SNS refuses for
//! good becomes a dead letter with the reason instead), and to record as dead
//! letters the messages SQS's own redrive policy moved to a DLQ (a consumer that died
//! three times mid-delivery), so `GET /api/dlq` and the message status tell the truth.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::wiring::App;

/// Messages younger than this may still be on their way through `submit`.
pub const GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// At most this many per invocation; the next run takes the rest.
pub const LIMIT: usize = 500;

pub async fn sweep(app: &App) -> Result<Value, lambda_runtime::Error> {
    let created = rez_aws::sweeper::sweep_created(&app.store, GRACE, LIMIT).await?;
    if created.published > 0 {
        tracing::warn!(republished = created.published, "re-published messages left in created");
    }
    if created.dead_lettered > 0 {
        tracing::warn!(dead_lettered = created.dead_lettered, "dead-lettered messages SNS refuses for good");
    }
    let dead = rez_aws::sweeper::sweep_dead_letter_queues(&app.store).await?;
    if dead > 0 {
        tracing::warn!(recorded = dead, "recorded messages SQS moved to a DLQ");
    }
    Ok(json!({
        "republished": created.published,
        "refused_dead_lettered": created.dead_lettered,
        "left_created": created.left,
        "dead_letters_recorded": dead,
    }))
}

pub async fn run(app: App) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { sweep(&app).await }
    }))
    .await
}

//! `rez-lambda serve`: the whole AWS flow in one long-lived process (a container, or a
//! laptop against moto). The API and MCP routers, and per queue a long-polling SQS
//! consumer that hands each batch to exactly the code the Lambda event source invokes
//! (`functions::sqs::handle_batch`), then deletes what succeeded — what the event source
//! does for a function. Plus the sweeper, every minute.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use rez_core::routing::QueueName;
use rez_runtime::workers::Handler;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::functions;
use crate::settings::Function;
use crate::wiring::{App, Loads};

/// SQS's longest receive wait.
const LONG_POLL_SECONDS: i32 = 20;

pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let app = App::from_env(Loads::ALL).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for (function, queue) in [
        (Function::Processor, QueueName::Notifications),
        (Function::WebAction, QueueName::WebActions),
        (Function::Scheduler, QueueName::ScheduleCreation),
        (Function::Agent, QueueName::AgentResponse),
    ] {
        let handler = functions::queue_handler(function, &app).await?;
        tasks.push(tokio::spawn(consume(app.clone(), function, queue, handler, shutdown.clone())));
    }
    let sweeper_app = app.clone();
    let sweeper_stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = sweeper_stop.cancelled() => return,
                _ = every.tick() => {
                    if let Err(e) = functions::sweeper::sweep(&sweeper_app).await {
                        tracing::error!(error = %e, "sweep failed");
                    }
                }
            }
        }
    }));
    let router = functions::http::api_router(&app).merge(functions::http::mcp_router(&app));
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
    println!("rez (AWS adapters) listening on http://{}", listener.local_addr()?);
    let token = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        })
        .await
        .context("HTTP server")?;
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// Long-poll `queue` until `shutdown`; each batch is handled like a Lambda invocation.
async fn consume(
    app: App,
    function: Function,
    queue: QueueName,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let Some(address) = app.store.names().queue(queue).cloned() else {
        tracing::error!(queue = %queue, "no address for the queue; its consumer does not run");
        return;
    };
    let sqs = app.store.clients().sqs.clone();
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sqs
                .receive_message()
                .queue_url(&address.url)
                .max_number_of_messages(10)
                .wait_time_seconds(LONG_POLL_SECONDS)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send() => r,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(queue = %queue, error = %rez_aws::error::backend("sqs receive_message", e), "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // The records exactly as the SQS event source would hand them to the function.
        let records: Vec<SqsMessage> = messages
            .iter()
            .filter_map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
                    .unwrap_or_default();
                serde_json::from_value(json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": address.arn,
                    "awsRegion": region,
                }))
                .ok()
            })
            .collect();
        let response = functions::sqs::handle_batch(function, &app, &*handler, records.clone()).await;
        for r in &records {
            let id = r.message_id.as_deref().unwrap_or_default();
            if response.batch_item_failures.iter().any(|f| f.item_identifier == id) {
                continue; // visible again after its backoff or visibility timeout
            }
            if let Some(receipt) = r.receipt_handle.as_deref()
                && let Err(e) = sqs.delete_message().queue_url(&address.url).receipt_handle(receipt).send().await
            {
                tracing::warn!(queue = %queue, sqs_message_id = id, error = %rez_aws::error::backend("sqs delete_message", e), "could not delete a handled record; it will be seen again");
            }
        }
    }
}

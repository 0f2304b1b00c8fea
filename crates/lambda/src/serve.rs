//! `rez-lambda serve`: the whole AWS flow in one long-lived process (a container, or a
//! laptop against moto). The API and MCP routers, one long-polling worker pool per queue
//! over the SQS adapter, and the sweeper — the same code the functions run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use rez_core::routing::QueueName;
use rez_runtime::workers::pool::{self, PoolConfig};
use tokio_util::sync::CancellationToken;

use crate::functions;
use crate::settings::Function;
use crate::wiring::App;

pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let app = App::from_env().await?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for (function, queue) in [
        (Function::Processor, QueueName::Notifications),
        (Function::WebAction, QueueName::WebActions),
        (Function::Scheduler, QueueName::ScheduleCreation),
    ] {
        let handler = functions::queue_handler(function, &app)?;
        tasks.push(tokio::spawn(pool::run(
            app.services.queues.clone(),
            handler,
            app.services.metrics.clone(),
            PoolConfig::new(queue, 8),
            shutdown.clone(),
            Duration::from_secs(10),
        )));
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
    let router = rez_runtime::api::router(app.services.clone()).merge(functions::http::mcp_router(&app));
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

//! `rez serve`: one process with the API, the MCP endpoint (`/mcp`), the worker pools and
//! the local maintenance tasks (lease heartbeat, retention) over the SQLite store.
//!
//! Shutdown (SIGTERM/SIGINT or [`Server::shutdown`]): stop accepting connections and
//! taking work, let in-flight handlers finish up to the grace period, then resign the
//! process lease so anything unfinished is redelivered at once by the next process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rez_core::routing::QueueName;
use rez_local::LocalStore;
use rez_runtime::Services;
use rez_runtime::agent::Agent;
use rez_runtime::agent::worker::AgentWorker;
use rez_runtime::scheduling::consumer::ScheduleConsumer;
use rez_runtime::scheduling::engine::{Engine, EngineConfig, LocalEngine};
use rez_runtime::workers::Handler;
use rez_runtime::workers::notify::NotificationProcessor;
use rez_runtime::workers::pool::{self, PoolConfig};
use rez_runtime::workers::web_action::WebActionWorker;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::wiring;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub store: LocalStore,
    pub services: Services,
    shutdown: CancellationToken,
    done: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Open the store, start the workers and serve the API on `listener`.
    pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let addr = listener.local_addr().context("listener address")?;
        let mcp_auth = if config.mcp_auth_none {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "REZ_MCP_AUTH=none is only allowed on a loopback address, and rez is bound to {addr}"
            );
            tracing::warn!("REZ_MCP_AUTH=none: the MCP endpoint accepts requests without a key (loopback only)");
            rez_mcp::Auth::None
        } else {
            rez_mcp::Auth::Keys
        };
        if let Some(ntfy) = &config.ntfy
            && ntfy.url.scheme() == "http"
        {
            // Named by host only: the path is the topic, a credential.
            tracing::warn!(
                host = ntfy.url.host_str().unwrap_or(""),
                "REZ_NTFY_URL uses plain http: pushes and the ntfy credentials cross the network unencrypted; use it only on a network you trust"
            );
        }
        let store = wiring::open_store(&config)?;
        let engine = LocalEngine::new();
        let services = wiring::services(&config, &store, engine.clone())?;
        // Take our lease first: a restart reclaims a dead predecessor's work from here on.
        store.heartbeat().await.context("registering the process lease")?;
        // Commits by other processes (the `rez` CLI) wake the workers and the engine.
        let cross_process = store.db().listen_for_other_processes();
        tracing::debug!(cross_process, "listening for other processes' writes");

        let shutdown = CancellationToken::new();
        // One worker pool per queue; each drains on shutdown within the grace period.
        let spawn_pool = |queue: QueueName, concurrency: usize, handler: Arc<dyn Handler>| {
            let mut pc = PoolConfig::new(queue, concurrency);
            pc.visibility = config.visibility;
            tokio::spawn(pool::run(
                services.queues.clone(),
                handler,
                services.metrics.clone(),
                pc,
                shutdown.clone(),
                config.drain,
            ))
        };
        let notifications =
            NotificationProcessor::new(services.inbox.clone(), services.notifier.clone(), services.metrics.clone());
        let web_actions =
            WebActionWorker::new(wiring::web_actions(&config, &store)?, services.results.clone(), services.clone());
        let schedule_messages = ScheduleConsumer::new(services.clone());
        let model = wiring::model(&config, &store).await?;
        match (&config.agent.provider, &model) {
            (Some(p), Some(_)) => tracing::info!(provider = p.as_str(), model = %config.agent.model, "agent on"),
            _ => tracing::info!(
                "the agent is off: set REZ_AGENT_PROVIDER (anthropic or openai) and REZ_AGENT_MODEL to turn it on"
            ),
        }
        let agent = Agent::new(services.clone(), wiring::tools(&config, services.clone())?, model);
        let mut workers = vec![
            spawn_pool(QueueName::Notifications, config.notify_concurrency, Arc::new(notifications)),
            spawn_pool(QueueName::WebActions, 8, Arc::new(web_actions)),
            spawn_pool(QueueName::ScheduleCreation, 4, Arc::new(schedule_messages)),
            spawn_pool(QueueName::AgentResponse, config.agent.concurrency, Arc::new(AgentWorker::new(agent))),
        ];
        let scheduler = Engine::new(
            services.schedules.store().clone(),
            services.clock.clone(),
            services.metrics.clone(),
            EngineConfig::new(store.instance_id()),
        );
        let engine_wake = engine.waker();
        let mut external = store.db().subscribe_external();
        let forward = tokio::spawn(async move {
            while external.changed().await.is_ok() {
                engine_wake.notify_one();
            }
        });
        workers.push(tokio::spawn(scheduler.run(engine.waker(), shutdown.clone())));

        let maintenance = tokio::spawn(maintain(store.clone(), shutdown.clone()));

        let mcp_hosts = config.mcp_allowed_hosts.clone().unwrap_or_else(|| rez_mcp::default_allowed_hosts(addr));
        let mut mcp_config = rez_mcp::HttpConfig::new(mcp_auth, mcp_hosts, shutdown.clone());
        mcp_config.max_sessions = config.mcp_max_sessions;
        let mcp = rez_mcp::router(wiring::tools(&config, services.clone())?, mcp_config);
        let dashboard = rez_dashboard::Config::in_data_dir(
            &config.data_dir,
            config.api_key.clone(),
            config.agent.settings.public_url.as_ref().map(url::Url::as_str),
        )
        .context("preparing the dashboard's session secret")?
        .with_courses(rez_dashboard::Courses {
            list: wiring::course_infos(&config)?,
            secrets: Some(Arc::new(store.clone())),
        });
        let app = rez_runtime::api::router(services.clone())
            .merge(mcp)
            .merge(rez_dashboard::router(services.clone(), dashboard));
        let token = shutdown.clone();
        let (inbound, drain) = (config.inbound, config.drain);
        let store_for_exit = store.clone();
        let done = tokio::spawn(async move {
            let served =
                crate::inbound::serve(listener, app, inbound, token.clone(), drain).await.context("HTTP server");
            token.cancel();
            for w in workers {
                let _ = w.await;
            }
            maintenance.abort();
            forward.abort();
            if let Err(e) = store_for_exit.resign().await {
                tracing::warn!(error = %e, "could not resign the process lease");
            }
            tracing::info!("rez stopped");
            served
        });
        Ok(Self { addr, store, services, shutdown, done })
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stop gracefully and wait for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.done.await.context("server task")?
    }

    /// Wait until the server stops by itself (after a signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("server task")?
    }
}

/// The process lease (renewed, and dead processes' work reclaimed, only while work is in
/// flight: see `rez_local::lease`) and queue retention.
async fn maintain(store: LocalStore, shutdown: CancellationToken) {
    use rez_local::lease::{HEARTBEAT_EVERY, IDLE_CHECK_EVERY};
    let mut retention = tokio::time::interval(Duration::from_secs(600));
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_lease = tokio::time::Instant::now();
    let mut busy = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // Idle: taking work starts the heartbeat at once. Busy: the tick paces it.
            _ = store.work_taken(), if !busy => {}
            _ = tokio::time::sleep_until(next_lease) => {}
            _ = retention.tick() => {
                match store.enforce_retention().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(expired = n, "queue items expired after the retention period"),
                    Err(e) => tracing::error!(error = %e, "retention sweep failed"),
                }
                match rez_core::ports::ResultStore::purge_expired_results(&store, store.clock().now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired web-action results removed"),
                    Err(e) => tracing::error!(error = %e, "result purge failed"),
                }
                continue;
            }
        }
        busy = match store.lease_tick().await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::error!(error = %e, "lease heartbeat failed");
                true
            }
        };
        next_lease = tokio::time::Instant::now() + if busy { HEARTBEAT_EVERY } else { IDLE_CHECK_EVERY };
    }
}

/// Resolve on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

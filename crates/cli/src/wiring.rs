//! Builds concrete adapters from the configuration and hands them to the runtime as
//! ports. This is the only place that knows the deployment is SQLite + ntfy.

use std::sync::Arc;

use anyhow::Context;
use rez_actions::ntfy::{NtfyClient, NtfyConfig as ClientConfig};
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::Notifier;
use rez_http::{HttpClient, OutboundPolicy};
use rez_local::{LocalStore, QueueConfig};
use rez_runtime::Services;
use rez_runtime::scheduling::engine::LocalEngine;
use rez_runtime::services::Ports;

use crate::config::Config;

pub fn open_store(config: &Config) -> anyhow::Result<LocalStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue_config = QueueConfig { backoff_base: config.retry_backoff, ..QueueConfig::default() };
    LocalStore::open(&config.db_path(), clock, queue_config)
        .with_context(|| format!("opening {}", config.db_path().display()))
}

/// The ntfy client, if a topic URL is configured. Its outbound policy allows only the
/// configured ntfy host.
pub fn notifier(config: &Config) -> anyhow::Result<Option<Arc<dyn Notifier>>> {
    let Some(ntfy) = &config.ntfy else { return Ok(None) };
    let host = ntfy.url.host_str().context("REZ_NTFY_URL has no host")?;
    let mut policy = OutboundPolicy::allowing([host]).context("ntfy host")?;
    policy.allow_loopback_for_tests = config.allow_loopback_for_tests;
    let http = HttpClient::new(policy).context("building the outbound HTTP client")?;
    let mut client_config = ClientConfig::new(ntfy.url.as_str());
    if let Some(token) = &ntfy.token {
        client_config = client_config.with_token(token);
    } else if let Some(user) = &ntfy.username {
        client_config = client_config.with_basic_auth(user, ntfy.password.clone().unwrap_or_default());
    }
    let client = NtfyClient::new(client_config, http).context("configuring ntfy")?;
    Ok(Some(Arc::new(client)))
}

/// The runtime over the SQLite store. `engine` is told about schedule changes; `rez
/// serve` passes the engine it runs, one-shot commands a fresh one (the server notices
/// their changes within the engine's renew interval).
pub fn services(config: &Config, store: &LocalStore, engine: LocalEngine) -> anyhow::Result<Services> {
    let s = Arc::new(store.clone());
    let ports = Ports {
        messages: s.clone(),
        queues: s.clone(),
        inbox: s.clone(),
        keys: s.clone(),
        schedules: s,
        engine: Arc::new(engine),
        notifier: notifier(config)?,
        clock: store.clock().clone(),
    };
    Ok(Services::new(ports, config.api_key.clone(), config.stage))
}

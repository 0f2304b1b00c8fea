//! Builds concrete adapters from the configuration and hands them to the runtime as
//! ports. This is the only place that knows the deployment is SQLite + ntfy.

use std::sync::Arc;

use anyhow::Context;
use rez_actions::golf::{Booker, Courses, GolfClient, GolfConfig};
use rez_actions::handlers::{GolfAction, WeatherAction};
use rez_actions::ntfy::{NtfyClient, NtfyConfig as ClientConfig};
use rez_actions::weather::{WeatherClient, WeatherConfig};
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::{Notifier, SecretStore, WebActionHandler};
use rez_http::{HttpClient, OutboundPolicy};
use rez_local::MasterKey;
use rez_local::{LocalStore, QueueConfig};
use rez_runtime::Services;
use rez_runtime::scheduling::engine::LocalEngine;
use rez_runtime::services::Ports;
use rez_runtime::tools::{CourseInfo, ToolOptions, ToolRegistry};

use crate::config::Config;

pub fn open_store(config: &Config) -> anyhow::Result<LocalStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    // The directory holds the database and the master key: only its owner may enter.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue_config = QueueConfig { backoff_base: config.retry_backoff, ..QueueConfig::default() };
    let store = LocalStore::open(&config.db_path(), clock, queue_config)
        .with_context(|| format!("opening {}", config.db_path().display()))?;
    let key = MasterKey::from_env_or_file(&config.data_dir).context("loading the master key of the secret store")?;
    Ok(store.with_master_key(key))
}

pub fn courses(config: &Config) -> anyhow::Result<Courses> {
    Courses::load_with_overrides_opts(config.courses_file.as_deref(), config.allow_loopback_for_tests)
        .context("loading golf courses")
}

/// The courses as the tools and MCP clients see them.
pub fn course_infos(config: &Config) -> anyhow::Result<Vec<CourseInfo>> {
    Ok(courses(config)?
        .list()
        .iter()
        .map(|c| CourseInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            address: c.address.clone(),
            description: c.description.clone(),
            latitude: c.latitude,
            longitude: c.longitude,
            time_zone: c.time_zone.clone(),
        })
        .collect())
}

/// The tool registry (MCP server, later the agent) over `services`.
pub fn tools(config: &Config, services: Services) -> anyhow::Result<ToolRegistry> {
    Ok(ToolRegistry::new(services, course_infos(config)?, ToolOptions::default()))
}

fn policy(hosts: &[String], config: &Config) -> anyhow::Result<OutboundPolicy> {
    let mut policy = OutboundPolicy::allowing(hosts).context("outbound host allowlist")?;
    policy.allow_loopback_for_tests = config.allow_loopback_for_tests;
    Ok(policy)
}

/// The web-action handlers: NOAA weather and cps.golf. Each gets an outbound policy that
/// allows only its own hosts.
pub fn web_actions(config: &Config, store: &LocalStore) -> anyhow::Result<Vec<Arc<dyn WebActionHandler>>> {
    let courses = Arc::new(courses(config)?);
    let noaa_host = config.noaa_url.host_str().context("REZ_NOAA_URL has no host")?.to_owned();
    let weather_http = HttpClient::new(policy(&[noaa_host], config)?).context("weather HTTP client")?;
    let weather = WeatherClient::new(
        WeatherConfig::new(config.noaa_user_agent.clone())
            .with_base_url(config.noaa_url.as_str().trim_end_matches('/')),
        weather_http,
    )
    .context("configuring NOAA weather")?;
    let mut golf_hosts = vec!["*.cps.golf".to_owned()];
    for c in courses.list() {
        if let Some(h) = url::Url::parse(&c.origin).ok().and_then(|u| u.host_str().map(str::to_owned))
            && !h.ends_with(".cps.golf")
        {
            golf_hosts.push(h);
        }
    }
    let golf_http = HttpClient::new(policy(&golf_hosts, config)?).context("golf HTTP client")?;
    let booker = Booker::new(GolfClient::new(golf_http, GolfConfig::default()), Arc::new(store.clone()));
    let secrets: Arc<dyn SecretStore> = Arc::new(store.clone());
    Ok(vec![
        Arc::new(WeatherAction::new(weather, courses.clone())),
        Arc::new(GolfAction::new(booker, courses, secrets)),
    ])
}

/// The ntfy client, if a topic URL is configured. Its outbound policy allows only the
/// configured ntfy host.
pub fn notifier(config: &Config) -> anyhow::Result<Option<Arc<dyn Notifier>>> {
    let Some(ntfy) = &config.ntfy else { return Ok(None) };
    let host = ntfy.url.host_str().context("REZ_NTFY_URL has no host")?;
    let http_policy = policy(&[host.to_owned()], config)?;
    let http = HttpClient::new(http_policy).context("building the outbound HTTP client")?;
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
        schedules: s.clone(),
        results: s,
        engine: Arc::new(engine),
        notifier: notifier(config)?,
        clock: store.clock().clone(),
    };
    Ok(Services::new(ports, config.api_key.clone(), config.stage))
}

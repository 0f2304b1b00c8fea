//! Builds concrete adapters from the configuration and hands them to the runtime as
//! ports. This is the only place that knows the deployment is SQLite + ntfy.

use std::sync::Arc;

use anyhow::Context;
use rez_actions::assembly::{self, ActionSettings, NtfyAuth};
use rez_actions::golf::Courses;
use rez_core::agent::ModelClient;
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::{Notifier, SecretStore, WebActionHandler};
use rez_local::MasterKey;
use rez_local::{LocalStore, QueueConfig};
use rez_models::{AnthropicClient, AnthropicConfig, ApiKey, OpenAiClient, OpenAiConfig};
use rez_runtime::Services;
use rez_runtime::agent::AgentPorts;
use rez_runtime::scheduling::engine::LocalEngine;
use rez_runtime::services::Ports;
use rez_runtime::tools::{CourseInfo, ToolOptions, ToolRegistry};

use crate::agent_config::Provider;
use crate::config::Config;

pub fn open_store(config: &Config) -> anyhow::Result<LocalStore> {
    // The directory holds the database and the master key: only its owner may enter.
    rez_local::files::ensure_private_dir(&config.data_dir).context("preparing the data directory")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue_config =
        QueueConfig { backoff_base: config.retry_backoff, direct_handoff: true, ..QueueConfig::default() };
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

/// The web-action handlers: NOAA weather and cps.golf, each allowed only its own hosts.
pub fn web_actions(config: &Config, store: &LocalStore) -> anyhow::Result<Vec<Arc<dyn WebActionHandler>>> {
    let settings = ActionSettings {
        noaa_url: config.noaa_url.clone(),
        noaa_user_agent: config.noaa_user_agent.clone(),
        allow_loopback_for_tests: config.allow_loopback_for_tests,
    };
    let secrets: Arc<dyn SecretStore> = Arc::new(store.clone());
    let golf = assembly::GolfSettings {
        request_timeout: Some(config.golf.request_timeout),
        booking: config.golf.booking.clone(),
    };
    Ok(assembly::web_action_handlers_with(
        &settings,
        &golf,
        Arc::new(courses(config)?),
        Arc::new(store.clone()),
        secrets,
    )?)
}

/// The ntfy client, if a topic URL is configured. Its outbound policy allows only the
/// configured ntfy host.
pub fn notifier(config: &Config) -> anyhow::Result<Option<Arc<dyn Notifier>>> {
    let Some(ntfy) = &config.ntfy else { return Ok(None) };
    let auth = if let Some(token) = &ntfy.token {
        NtfyAuth::Token(token.clone())
    } else if let Some(user) = &ntfy.username {
        NtfyAuth::Basic { username: user.clone(), password: ntfy.password.clone().unwrap_or_default() }
    } else {
        NtfyAuth::None
    };
    Ok(Some(assembly::ntfy_notifier(&ntfy.url, auth, config.allow_loopback_for_tests)?))
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
        agent: Some(agent_ports(config, store)),
    };
    let services = Services::with_limits(ports, config.api_key.clone(), config.stage, config.limits);
    let metrics = services.metrics.clone();
    store.db().on_commit(move |took| metrics.store_committed(took.as_secs_f64()));
    Ok(services)
}

/// The agent's run store and budget ledger (the SQLite store) and its settings (`None`:
/// the agent is off).
pub fn agent_ports(config: &Config, store: &LocalStore) -> AgentPorts {
    AgentPorts {
        runs: Arc::new(store.clone()),
        budget: Arc::new(store.clone()),
        approvals: Some(Arc::new(store.clone())),
        settings: config.agent.runtime_settings(),
    }
}

/// A provider key: the environment or rez.toml, else the secret store (`rez secrets set
/// <name>`).
async fn provider_key(configured: &Option<String>, store: &LocalStore, name: &str) -> anyhow::Result<Option<ApiKey>> {
    let raw = match configured {
        Some(k) => Some(k.clone()),
        None => store
            .get_secret(name)
            .await
            .with_context(|| format!("reading the secret `{name}`"))?
            .map(|v| v.expose().to_owned()),
    };
    raw.map(|k| ApiKey::new(k).with_context(|| format!("the {name}"))).transpose()
}

/// The model client of the configured provider, or `None` when the agent is off. Each
/// client may reach only its own host (an operator-configured base URL may be on the LAN
/// or loopback).
pub async fn model(config: &Config, store: &LocalStore) -> anyhow::Result<Option<Arc<dyn ModelClient>>> {
    let a = &config.agent;
    let Some(provider) = a.provider else { return Ok(None) };
    Ok(Some(match provider {
        Provider::Anthropic => {
            let key = provider_key(&a.anthropic_api_key, store, "anthropic_api_key").await?.context(
                "the agent uses Anthropic but has no key: set REZ_ANTHROPIC_API_KEY or run `rez secrets set anthropic_api_key`",
            )?;
            let mut c = AnthropicConfig::new(key);
            c.base_url = a.anthropic_base_url.clone();
            c.timeout = a.model_timeout;
            Arc::new(AnthropicClient::new(c).context("the Anthropic client")?)
        }
        Provider::OpenAi => {
            let key = provider_key(&a.openai_api_key, store, "openai_api_key").await?;
            if key.is_none() && a.openai_base_url.is_none() {
                anyhow::bail!(
                    "the agent uses OpenAI's API but has no key: set REZ_OPENAI_API_KEY (or `rez secrets set openai_api_key`), or REZ_OPENAI_BASE_URL for a local server"
                );
            }
            let mut c = OpenAiConfig::new(key, a.openai_base_url.clone());
            c.timeout = a.model_timeout;
            Arc::new(OpenAiClient::new(c).context("the OpenAI-compatible client")?)
        }
        Provider::Bedrock => anyhow::bail!(
            "REZ_AGENT_PROVIDER=bedrock works in the AWS deployment only; `rez serve` speaks anthropic or openai (any OpenAI-compatible server)"
        ),
    }))
}

//! Builds the AWS adapters and the runtime services from the environment. This is the
//! only place that knows the deployment is DynamoDB + SNS/SQS + EventBridge Scheduler +
//! Secrets Manager; the functions see ports.
//!
//! In a Lambda the [`App`] is built once per execution environment (cold start) and
//! reused by every invocation it serves, SDK clients included.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rez_actions::assembly::{self, ActionSettings, NtfyAuth};
use rez_actions::golf::Courses;
use rez_aws::bedrock::BedrockModel;
use rez_aws::scheduler::EventBridgeEngine;
use rez_aws::secrets::SecretsManagerStore;
use rez_aws::store::QueueConfig;
use rez_aws::{AwsStore, Clients, Names};
use rez_core::agent::ModelClient;
use rez_core::clock::{Clock, SystemClock};
use rez_core::ports::{Notifier, SecretStore, WebActionHandler};
use rez_models::{AnthropicClient, AnthropicConfig, ApiKey, OpenAiClient, OpenAiConfig};
use rez_runtime::Services;
use rez_runtime::agent::AgentPorts;
use rez_runtime::services::Ports;
use rez_runtime::tools::{CourseInfo, ToolOptions, ToolRegistry};

use crate::agent_config::{AgentConfig, KeySource, Provider};
use crate::settings::{Function, Settings};

/// How long fetched secrets are served from memory.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// Which secrets a process reads at start-up. Each function reads only those it uses, so
/// its role needs no other secret (the admin key in api and mcp, the ntfy token in the
/// processor and the agent, which pushes its approval asks itself; golf credentials are
/// read per booking by the webaction handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loads {
    /// The admin API key (`REZ_API_KEY` or the `REZ_ADMIN_KEY_SECRET` secret): requests
    /// are authenticated only where HTTP arrives.
    pub admin_key: bool,
    /// The ntfy push client and its token secret: the notification processor pushes, and
    /// the agent asks for approvals by push directly (the ask carries the buttons' tokens,
    /// which must not rest in a stored notification).
    pub notifier: bool,
}

impl Loads {
    /// Everything: `rez-lambda serve` runs every function in one process.
    pub const ALL: Loads = Loads { admin_key: true, notifier: true };

    pub fn for_function(function: Function) -> Self {
        match function {
            Function::Api | Function::Mcp => Loads { admin_key: true, notifier: false },
            Function::Processor | Function::Agent => Loads { admin_key: false, notifier: true },
            Function::WebAction | Function::Scheduler | Function::Sweeper => {
                Loads { admin_key: false, notifier: false }
            }
        }
    }
}

/// The adapters and services of one process.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    /// The agent's provider, model, caps and keys (`provider: None`: the agent is off).
    pub agent: Arc<AgentConfig>,
    pub clients: Clients,
    pub store: AwsStore,
    pub services: Services,
    pub secrets: Arc<SecretsManagerStore>,
    pub courses: Arc<Courses>,
    /// The admin key, for the functions that load it (api, mcp): the dashboard's admin
    /// sign-in and the seed of its session secret.
    pub admin_key: Option<String>,
}

impl App {
    /// Everything from the environment: resource names, settings, SDK clients.
    pub async fn from_env(loads: Loads) -> anyhow::Result<Self> {
        let names = Names::from_env().context("resource names")?;
        let settings = Settings::from_env()?;
        let agent = AgentConfig::from_lookup(&|k| std::env::var(k).ok()).context("the agent's configuration")?;
        let clients = Clients::from_env().await;
        Self::build(settings, agent, clients, names, loads).await
    }

    pub async fn build(
        settings: Settings,
        agent: AgentConfig,
        clients: Clients,
        names: Names,
        loads: Loads,
    ) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let queue_config = QueueConfig { backoff_base: settings.retry_backoff, ..QueueConfig::default() };
        let store = AwsStore::new(clients.clone(), names.clone(), clock.clone(), queue_config);
        let secrets = Arc::new(SecretsManagerStore::new(&clients, &names).with_ttl(SECRET_TTL));
        let admin_key = match (loads.admin_key, &settings.admin_key, &settings.admin_key_secret) {
            (false, _, _) => None,
            (true, Some(key), _) => Some(key.clone()),
            (true, None, Some(id)) => {
                Some(secret_by_id(&clients, id).await.context("reading the admin API key secret")?)
            }
            (true, None, None) => None,
        };
        let notifier = if loads.notifier { notifier(&settings, &clients).await? } else { None };
        let engine = Arc::new(EventBridgeEngine::new(clients.clone(), names.clone()));
        let s = Arc::new(store.clone());
        let ports = Ports {
            messages: s.clone(),
            queues: s.clone(),
            inbox: s.clone(),
            keys: s.clone(),
            schedules: s.clone(),
            results: s.clone(),
            engine,
            notifier,
            clock,
            agent: Some(AgentPorts {
                runs: s.clone(),
                budget: s.clone(),
                approvals: Some(s),
                settings: agent.runtime_settings(),
            }),
        };
        let services = Services::new(ports, admin_key.clone(), settings.stage);
        let courses = Arc::new(
            Courses::load_with_overrides_opts(settings.courses_file.as_deref(), settings.allow_loopback_for_tests)
                .context("loading golf courses")?,
        );
        Ok(Self {
            settings: Arc::new(settings),
            agent: Arc::new(agent),
            clients,
            store,
            services,
            secrets,
            courses,
            admin_key,
        })
    }

    /// The agent's model client, or `None` when the agent is off: Bedrock with this
    /// function's role, or Anthropic / OpenAI with the key from the environment or from
    /// Secrets Manager (read here, so only the agent function reads it).
    pub async fn agent_model(&self) -> anyhow::Result<Option<Arc<dyn ModelClient>>> {
        let a = &self.agent;
        let Some(provider) = a.provider else {
            tracing::info!("REZ_AGENT_PROVIDER is not set: the agent is off, and runs end failed saying so");
            return Ok(None);
        };
        let key = |source: &KeySource, what: &'static str| {
            let clients = self.clients.clone();
            let source = source.clone();
            async move {
                let raw = match source {
                    KeySource::None => return Ok::<_, anyhow::Error>(None),
                    KeySource::Value(v) => v,
                    KeySource::Secret(name) => {
                        secret_by_id(&clients, &name).await.with_context(|| format!("reading the {what} secret"))?
                    }
                };
                Ok(Some(ApiKey::new(raw).with_context(|| format!("the {what}"))?))
            }
        };
        Ok(Some(match provider {
            Provider::Bedrock => Arc::new(BedrockModel::new(&self.clients.sdk_config, a.model_timeout)),
            Provider::Anthropic => {
                let api_key = key(&a.anthropic_key, "Anthropic API key").await?.context(
                    "the agent uses Anthropic but has no key: put it in the secret named by REZ_ANTHROPIC_KEY_SECRET",
                )?;
                let mut c = AnthropicConfig::new(api_key);
                c.base_url = a.anthropic_base_url.clone();
                c.timeout = a.model_timeout;
                Arc::new(AnthropicClient::new(c).context("the Anthropic client")?)
            }
            Provider::OpenAi => {
                let api_key = key(&a.openai_key, "OpenAI API key").await?;
                if api_key.is_none() && a.openai_base_url.is_none() {
                    anyhow::bail!(
                        "the agent uses OpenAI's API but has no key: put it in the secret named by REZ_OPENAI_KEY_SECRET"
                    );
                }
                let mut c = OpenAiConfig::new(api_key, a.openai_base_url.clone());
                c.timeout = a.model_timeout;
                Arc::new(OpenAiClient::new(c).context("the OpenAI-compatible client")?)
            }
        }))
    }

    /// The `weather` and `golf` handlers over this deployment's ledger and secrets.
    pub fn web_actions(&self) -> anyhow::Result<Vec<Arc<dyn WebActionHandler>>> {
        let settings = ActionSettings {
            noaa_url: self.settings.noaa_url.clone(),
            noaa_user_agent: self.settings.noaa_user_agent.clone(),
            allow_loopback_for_tests: self.settings.allow_loopback_for_tests,
        };
        let secrets: Arc<dyn SecretStore> = self.secrets.clone();
        Ok(assembly::web_action_handlers(&settings, self.courses.clone(), Arc::new(self.store.clone()), secrets)?)
    }

    /// The courses as the tools and the dashboard show them.
    pub fn course_infos(&self) -> Vec<CourseInfo> {
        self.courses
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
            .collect()
    }

    /// The MCP tool registry over these services.
    pub fn tools(&self) -> ToolRegistry {
        ToolRegistry::new(self.services.clone(), self.course_infos(), ToolOptions::default())
    }
}

async fn notifier(settings: &Settings, clients: &Clients) -> anyhow::Result<Option<Arc<dyn Notifier>>> {
    let Some(url) = &settings.ntfy_url else {
        tracing::info!("REZ_NTFY_URL is not set: notifications go to the inbox only");
        return Ok(None);
    };
    let auth = match &settings.ntfy_token_secret {
        Some(id) => NtfyAuth::Token(secret_by_id(clients, id).await.context("reading the ntfy token secret")?),
        None => NtfyAuth::None,
    };
    Ok(Some(assembly::ntfy_notifier(url, auth, settings.allow_loopback_for_tests)?))
}

/// A secret's string value by its full id (name or ARN).
async fn secret_by_id(clients: &Clients, id: &str) -> anyhow::Result<String> {
    let out = clients.secrets.get_secret_value().secret_id(id).send().await.with_context(|| format!("secret {id}"))?;
    out.secret_string().map(str::to_owned).with_context(|| format!("secret {id} has no string value"))
}

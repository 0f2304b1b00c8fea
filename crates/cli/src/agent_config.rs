//! The agent's configuration: `[agent]` in rez.toml and the `REZ_AGENT_*`, `REZ_ANTHROPIC_*`,
//! `REZ_OPENAI_*` variables (which win). Without a provider the agent is off. A budget
//! without a price for the model is refused here, at start, rather than counted as free.

use std::time::Duration;

use chrono_tz::Tz;
use rez_core::agent::{ModelPrice, Nanodollars, PriceTable};
use rez_runtime::agent::AgentSettings;
use rez_runtime::agent::retry::RetryPolicy;
use serde::Deserialize;
use url::Url;

use crate::config::ConfigError;

/// `[agent]` in rez.toml. No `Debug`: it may hold API keys.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentFile {
    provider: Option<String>,
    model: Option<String>,
    anthropic_api_key: Option<String>,
    anthropic_base_url: Option<String>,
    openai_api_key: Option<String>,
    openai_base_url: Option<String>,
    max_turns: Option<u64>,
    max_tokens: Option<u64>,
    run_max_tokens: Option<u64>,
    run_timeout_seconds: Option<u64>,
    model_timeout_seconds: Option<u64>,
    daily_budget_usd: Option<f64>,
    run_budget_usd: Option<f64>,
    concurrency: Option<u64>,
    timezone: Option<String>,
    /// Where this deployment is reached from the user's phone (`REZ_PUBLIC_URL`).
    public_url: Option<String>,
    approval_ttl_seconds: Option<u64>,
    /// `[agent.prices."model"]`: USD per million tokens.
    #[serde(default)]
    prices: std::collections::BTreeMap<String, PriceFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
}

/// Which wire format the agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Anthropic,
    OpenAi,
    /// Bedrock Converse: the AWS deployment only.
    Bedrock,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Bedrock => "bedrock",
        }
    }

    fn default_model(self) -> &'static str {
        match self {
            Provider::Anthropic => "claude-sonnet-4-5",
            Provider::OpenAi => "gpt-4o-mini",
            Provider::Bedrock => "anthropic.claude-sonnet-4-5-20250929-v1:0",
        }
    }
}

/// The agent's configuration.
#[derive(Clone)]
pub struct AgentConfig {
    /// `None`: the agent is off.
    pub provider: Option<Provider>,
    pub model: String,
    pub anthropic_api_key: Option<String>,
    /// `None`: the public API.
    pub anthropic_base_url: Option<Url>,
    pub openai_api_key: Option<String>,
    /// `None`: the public API.
    pub openai_base_url: Option<Url>,
    /// One HTTP exchange with the model, whole.
    pub model_timeout: Duration,
    /// Runs taken at once by `rez serve`.
    pub concurrency: usize,
    /// Everything the run loop needs (provider and model included).
    pub settings: AgentSettings,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("AgentConfig")
            .field("provider", &self.provider.map(Provider::as_str))
            .field("model", &self.model)
            .field("anthropic_api_key", &hidden(&self.anthropic_api_key))
            .field("anthropic_base_url", &self.anthropic_base_url.as_ref().map(Url::as_str))
            .field("openai_api_key", &hidden(&self.openai_api_key))
            .field("openai_base_url", &self.openai_base_url.as_ref().map(Url::as_str))
            .field("model_timeout", &self.model_timeout)
            .field("concurrency", &self.concurrency)
            .field("max_turns", &self.settings.max_turns)
            .field("max_tokens", &self.settings.max_tokens)
            .field("run_token_cap", &self.settings.run_token_cap)
            .field("run_timeout", &self.settings.run_timeout)
            .field("daily_budget", &self.settings.day_cap.map(|c| c.to_string()))
            .field("run_budget", &self.settings.run_cap.map(|c| c.to_string()))
            .field("timezone", &self.settings.zone.name())
            .field("public_url", &self.settings.public_url.as_ref().map(Url::as_str))
            .field("approval_ttl", &self.settings.approval_ttl)
            .finish()
    }
}

impl AgentConfig {
    /// The settings the runtime gets: `None` when the agent is off.
    pub fn runtime_settings(&self) -> Option<AgentSettings> {
        self.provider.map(|_| self.settings.clone())
    }

    pub(crate) fn load(file: AgentFile, env: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bad =
            |name: &'static str, value: String, reason: &str| ConfigError::Env { name, value, reason: reason.into() };
        let pick = |name: &'static str, file: Option<String>| -> Option<String> {
            env(name).filter(|v| !v.trim().is_empty()).or(file)
        };
        let num = |name: &'static str,
                   file: Option<u64>,
                   default: u64,
                   range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let v = match env(name).filter(|v| !v.trim().is_empty()) {
                Some(v) => v.trim().parse::<u64>().map_err(|_| bad(name, v.clone(), "expected a whole number"))?,
                None => file.unwrap_or(default),
            };
            if !range.contains(&v) {
                return Err(bad(name, v.to_string(), &format!("must be within {}..={}", range.start(), range.end())));
            }
            Ok(v)
        };
        let usd = |name: &'static str, file: Option<f64>| -> Result<Option<Nanodollars>, ConfigError> {
            let raw = match env(name).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some(
                    v.trim()
                        .trim_start_matches('$')
                        .parse::<f64>()
                        .map_err(|_| bad(name, v.clone(), "expected a dollar amount, e.g. 5 or 0.50"))?,
                ),
                None => file,
            };
            raw.map(|d| Nanodollars::from_usd(d).map_err(|e| bad(name, d.to_string(), &e.message))).transpose()
        };
        let url = |name: &'static str, file: Option<String>| -> Result<Option<Url>, ConfigError> {
            match pick(name, file) {
                None => Ok(None),
                Some(v) => {
                    let u = Url::parse(v.trim()).map_err(|e| bad(name, v.clone(), &e.to_string()))?;
                    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                        return Err(bad(name, v, "expected an http(s) URL, e.g. http://127.0.0.1:11434/v1"));
                    }
                    Ok(Some(u))
                }
            }
        };

        let provider = match pick("REZ_AGENT_PROVIDER", file.provider) {
            None => None,
            Some(v) => Some(match v.trim() {
                "anthropic" => Provider::Anthropic,
                "openai" => Provider::OpenAi,
                "bedrock" => Provider::Bedrock,
                "none" | "off" => return Self::off(),
                _ => return Err(bad("REZ_AGENT_PROVIDER", v, "expected anthropic, openai or bedrock")),
            }),
        };
        let model = pick("REZ_AGENT_MODEL", file.model)
            .map(|m| m.trim().to_owned())
            .unwrap_or_else(|| provider.map_or("", |p| p.default_model()).to_owned());
        if model.len() > 200 || model.chars().any(char::is_control) {
            return Err(bad("REZ_AGENT_MODEL", model, "expected a model id"));
        }
        let mut configured = Vec::new();
        for (m, p) in file.prices {
            let price = ModelPrice::listed(p.input, p.output, p.cache_read, p.cache_write)
                .map_err(|e| ConfigError::Invalid(format!("agent.prices.\"{m}\".{}: {}", e.field, e.message)))?;
            configured.push((m, price));
        }
        if let Some(v) = env("REZ_AGENT_PRICE").filter(|v| !v.trim().is_empty()) {
            for entry in v.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let parsed =
                    ModelPrice::parse_entry(entry).map_err(|reason| bad("REZ_AGENT_PRICE", v.clone(), &reason))?;
                configured.retain(|(m, _)| *m != parsed.0);
                configured.push(parsed);
            }
        }
        let zone = match pick("REZ_TIMEZONE", file.timezone) {
            None => Tz::UTC,
            Some(v) => v
                .trim()
                .parse::<Tz>()
                .map_err(|_| bad("REZ_TIMEZONE", v.clone(), "expected an IANA zone, e.g. America/New_York"))?,
        };
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(num("REZ_AGENT_RETRY_BASE_MS", None, 1000, 1..=60_000)?),
            ..RetryPolicy::default()
        };
        let settings = AgentSettings {
            provider: provider.map_or("none", Provider::as_str).to_owned(),
            model: model.clone(),
            max_turns: num("REZ_AGENT_MAX_TURNS", file.max_turns, AgentSettings::DEFAULT_MAX_TURNS.into(), 1..=100)?
                as u32,
            max_tokens: num(
                "REZ_AGENT_MAX_TOKENS",
                file.max_tokens,
                AgentSettings::DEFAULT_MAX_TOKENS.into(),
                16..=128_000,
            )? as u32,
            run_token_cap: num(
                "REZ_AGENT_RUN_MAX_TOKENS",
                file.run_max_tokens,
                AgentSettings::DEFAULT_RUN_TOKEN_CAP,
                1_000..=100_000_000,
            )?,
            run_timeout: Duration::from_secs(num(
                "REZ_AGENT_RUN_TIMEOUT_SECS",
                file.run_timeout_seconds,
                AgentSettings::DEFAULT_RUN_TIMEOUT.as_secs(),
                1..=86_400,
            )?),
            day_cap: usd("REZ_AGENT_DAILY_BUDGET_USD", file.daily_budget_usd)?,
            run_cap: usd("REZ_AGENT_RUN_BUDGET_USD", file.run_budget_usd)?,
            prices: PriceTable::new(configured),
            zone,
            lease: Duration::from_secs(num(
                "REZ_AGENT_LEASE_SECS",
                None,
                AgentSettings::DEFAULT_LEASE.as_secs(),
                1..=3_600,
            )?),
            retry,
            public_url: url("REZ_PUBLIC_URL", file.public_url)?,
            approval_ttl: Duration::from_secs(num(
                "REZ_APPROVAL_TTL_SECS",
                file.approval_ttl_seconds,
                AgentSettings::DEFAULT_APPROVAL_TTL.as_secs(),
                1..=7 * 86_400,
            )?),
        };
        if provider.is_some() {
            settings.check_prices().map_err(ConfigError::Invalid)?;
        }
        Ok(Self {
            provider,
            model,
            anthropic_api_key: pick("REZ_ANTHROPIC_API_KEY", file.anthropic_api_key),
            anthropic_base_url: url("REZ_ANTHROPIC_BASE_URL", file.anthropic_base_url)?,
            openai_api_key: pick("REZ_OPENAI_API_KEY", file.openai_api_key),
            openai_base_url: url("REZ_OPENAI_BASE_URL", file.openai_base_url)?,
            model_timeout: Duration::from_secs(num(
                "REZ_AGENT_MODEL_TIMEOUT_SECS",
                file.model_timeout_seconds,
                120,
                1..=3_600,
            )?),
            concurrency: num("REZ_AGENT_CONCURRENCY", file.concurrency, 8, 1..=256)? as usize,
            settings,
        })
    }

    fn off() -> Result<Self, ConfigError> {
        Self::load(AgentFile::default(), &|_| None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<AgentConfig, ConfigError> {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        AgentConfig::load(AgentFile::default(), &|k: &str| env.get(k).cloned())
    }

    #[test]
    fn without_a_provider_the_agent_is_off() {
        let c = load(&[]).unwrap();
        assert!(c.provider.is_none() && c.runtime_settings().is_none());
        assert!(load(&[("REZ_AGENT_PROVIDER", "none")]).unwrap().provider.is_none());
    }

    #[test]
    fn providers_models_and_caps() {
        let c = load(&[
            ("REZ_AGENT_PROVIDER", "anthropic"),
            ("REZ_ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "5"),
            ("REZ_AGENT_MAX_TURNS", "4"),
            ("REZ_TIMEZONE", "America/New_York"),
        ])
        .unwrap();
        assert_eq!(c.model, "claude-sonnet-4-5");
        let s = c.runtime_settings().unwrap();
        assert_eq!((s.max_turns, s.day_cap), (4, Some(Nanodollars(5_000_000_000))));
        assert_eq!(s.zone, chrono_tz::America::New_York);
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-ant-secret") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn a_budget_needs_a_price_for_the_model() {
        let e = load(&[
            ("REZ_AGENT_PROVIDER", "openai"),
            ("REZ_AGENT_MODEL", "llama3.1:8b"),
            ("REZ_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "1"),
        ])
        .err()
        .unwrap();
        assert!(e.to_string().contains("has no price"), "{e}");
        let c = load(&[
            ("REZ_AGENT_PROVIDER", "openai"),
            ("REZ_AGENT_MODEL", "llama3.1:8b"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "1"),
            ("REZ_AGENT_PRICE", "llama3.1:8b=0.1,0.2"),
        ])
        .unwrap();
        let p = c.settings.prices.price("llama3.1:8b").unwrap();
        assert_eq!((p.input, p.output, p.cache_read), (100, 200, 10));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("REZ_AGENT_PROVIDER", "gemini"),
            ("REZ_AGENT_MAX_TURNS", "0"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "-1"),
            ("REZ_OPENAI_BASE_URL", "ftp://x"),
            ("REZ_TIMEZONE", "Mars/Olympus"),
            ("REZ_AGENT_PRICE", "m=1"),
        ] {
            let e = load(&[("REZ_AGENT_PROVIDER", "openai"), (k, v)]).err().unwrap();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }
}

//! The agent's configuration in the AWS deployment, from environment variables (the same
//! names `rez serve` reads; DEPLOY.md lists them): the provider and model, the caps and
//! prices the API and the agent function share, and, for the agent function only, how to
//! reach the model: Bedrock with the function's role, or Anthropic / OpenAI with a key
//! read from Secrets Manager (`REZ_ANTHROPIC_KEY_SECRET`, `REZ_OPENAI_KEY_SECRET`) or
//! given directly (`REZ_ANTHROPIC_API_KEY`, `REZ_OPENAI_API_KEY`: tests, containers); and
//! where the approval push's buttons link (`REZ_PUBLIC_URL`) and how long an approval
//! waits (`REZ_APPROVAL_TTL_SECS`).

use std::time::Duration;

use anyhow::{Context, bail};
use chrono_tz::Tz;
use rez_core::agent::{ModelPrice, Nanodollars, PriceTable};
use rez_runtime::agent::AgentSettings;
use rez_runtime::agent::retry::RetryPolicy;
use url::Url;

/// Which provider the agent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Bedrock,
    Anthropic,
    OpenAi,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Bedrock => "bedrock",
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
        }
    }
}

/// Where an API key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    None,
    /// Given in the environment.
    Value(String),
    /// The Secrets Manager secret of this name.
    Secret(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::None => f.write_str("None"),
            KeySource::Value(_) => f.write_str("Value(<redacted>)"),
            KeySource::Secret(name) => write!(f, "Secret({name})"),
        }
    }
}

/// The agent's configuration; `provider: None` when the agent is off.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub provider: Option<Provider>,
    pub settings: AgentSettings,
    /// Limit of one model call.
    pub model_timeout: Duration,
    pub anthropic_key: KeySource,
    pub anthropic_base_url: Option<Url>,
    pub openai_key: KeySource,
    pub openai_base_url: Option<Url>,
}

impl AgentConfig {
    /// The settings the runtime gets: `None` when the agent is off.
    pub fn runtime_settings(&self) -> Option<AgentSettings> {
        self.provider.map(|_| self.settings.clone())
    }

    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let num = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> anyhow::Result<u64> {
            let v = match get(name) {
                Some(v) => v.parse::<u64>().with_context(|| format!("{name}={v}: expected a whole number"))?,
                None => default,
            };
            anyhow::ensure!(range.contains(&v), "{name}={v}: must be within {}..={}", range.start(), range.end());
            Ok(v)
        };
        let usd = |name: &str| -> anyhow::Result<Option<Nanodollars>> {
            get(name)
                .map(|v| {
                    let d = v
                        .trim_start_matches('$')
                        .parse::<f64>()
                        .with_context(|| format!("{name}={v}: expected a dollar amount, e.g. 5 or 0.50"))?;
                    Nanodollars::from_usd(d).map_err(|e| anyhow::anyhow!("{name}={v}: {}", e.message))
                })
                .transpose()
        };
        let url = |name: &str| -> anyhow::Result<Option<Url>> {
            get(name)
                .map(|v| {
                    let u = Url::parse(&v).with_context(|| format!("{name}={v}: not a URL"))?;
                    anyhow::ensure!(
                        matches!(u.scheme(), "http" | "https") && u.host_str().is_some(),
                        "{name}={v}: expected an http(s) URL"
                    );
                    Ok(u)
                })
                .transpose()
        };
        let key = |value: &str, secret: &str| match (get(value), get(secret)) {
            (Some(v), _) => KeySource::Value(v),
            (None, Some(name)) => KeySource::Secret(name),
            (None, None) => KeySource::None,
        };

        let provider = match get("REZ_AGENT_PROVIDER").as_deref() {
            None | Some("none" | "off") => None,
            Some("bedrock") => Some(Provider::Bedrock),
            Some("anthropic") => Some(Provider::Anthropic),
            Some("openai") => Some(Provider::OpenAi),
            Some(other) => bail!("REZ_AGENT_PROVIDER={other}: expected bedrock, anthropic, openai or none"),
        };
        let model = get("REZ_AGENT_MODEL").unwrap_or_default();
        if provider.is_some() && (model.is_empty() || model.len() > 200 || model.chars().any(char::is_control)) {
            bail!("REZ_AGENT_MODEL={model:?}: expected the model id the agent calls");
        }
        let mut prices = Vec::new();
        if let Some(v) = get("REZ_AGENT_PRICE") {
            for entry in v.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                prices.push(
                    ModelPrice::parse_entry(entry)
                        .map_err(|reason| anyhow::anyhow!("REZ_AGENT_PRICE={v}: {reason}"))?,
                );
            }
        }
        let zone = match get("REZ_TIMEZONE") {
            None => Tz::UTC,
            Some(v) => v.parse::<Tz>().map_err(|_| anyhow::anyhow!("REZ_TIMEZONE={v}: expected an IANA zone"))?,
        };
        let settings = AgentSettings {
            provider: provider.map_or("none", Provider::as_str).to_owned(),
            model: model.clone(),
            max_turns: num("REZ_AGENT_MAX_TURNS", AgentSettings::DEFAULT_MAX_TURNS.into(), 1..=100)? as u32,
            max_tokens: num("REZ_AGENT_MAX_TOKENS", AgentSettings::DEFAULT_MAX_TOKENS.into(), 16..=128_000)? as u32,
            run_token_cap: num("REZ_AGENT_RUN_MAX_TOKENS", AgentSettings::DEFAULT_RUN_TOKEN_CAP, 1_000..=100_000_000)?,
            run_timeout: Duration::from_secs(num(
                "REZ_AGENT_RUN_TIMEOUT_SECS",
                AgentSettings::DEFAULT_RUN_TIMEOUT.as_secs(),
                1..=86_400,
            )?),
            day_cap: usd("REZ_AGENT_DAILY_BUDGET_USD")?,
            run_cap: usd("REZ_AGENT_RUN_BUDGET_USD")?,
            prices: PriceTable::new(prices),
            zone,
            lease: Duration::from_secs(num("REZ_AGENT_LEASE_SECS", AgentSettings::DEFAULT_LEASE.as_secs(), 1..=3_600)?),
            retry: RetryPolicy {
                base_delay: Duration::from_millis(num("REZ_AGENT_RETRY_BASE_MS", 1000, 1..=60_000)?),
                ..RetryPolicy::default()
            },
            // The approval push's buttons link here (the HTTP API); unset: no buttons.
            public_url: url("REZ_PUBLIC_URL")?,
            approval_ttl: Duration::from_secs(num(
                "REZ_APPROVAL_TTL_SECS",
                AgentSettings::DEFAULT_APPROVAL_TTL.as_secs(),
                1..=7 * 86_400,
            )?),
        };
        if provider.is_some() {
            settings.check_prices().map_err(anyhow::Error::msg)?;
        }
        Ok(Self {
            provider,
            settings,
            model_timeout: Duration::from_secs(num("REZ_AGENT_MODEL_TIMEOUT_SECS", 120, 1..=900)?),
            anthropic_key: key("REZ_ANTHROPIC_API_KEY", "REZ_ANTHROPIC_KEY_SECRET"),
            anthropic_base_url: url("REZ_ANTHROPIC_BASE_URL")?,
            openai_key: key("REZ_OPENAI_API_KEY", "REZ_OPENAI_KEY_SECRET"),
            openai_base_url: url("REZ_OPENAI_BASE_URL")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> anyhow::Result<AgentConfig> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AgentConfig::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn without_a_provider_the_agent_is_off() {
        assert!(load(&[]).unwrap().runtime_settings().is_none());
        assert!(load(&[("REZ_AGENT_PROVIDER", "none"), ("REZ_AGENT_MODEL", "m")]).unwrap().provider.is_none());
    }

    #[test]
    fn bedrock_with_a_daily_cap_and_keys_from_secrets() {
        let c = load(&[
            ("REZ_AGENT_PROVIDER", "bedrock"),
            ("REZ_AGENT_MODEL", "us.anthropic.claude-haiku-4-5-20251001-v1:0"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "2.5"),
            ("REZ_ANTHROPIC_KEY_SECRET", "rez/dev/agent/anthropic-api-key"),
        ])
        .unwrap();
        assert_eq!(c.provider, Some(Provider::Bedrock));
        let s = c.runtime_settings().unwrap();
        assert_eq!((s.provider.as_str(), s.day_cap), ("bedrock", Some(Nanodollars(2_500_000_000))));
        assert_eq!(c.anthropic_key, KeySource::Secret("rez/dev/agent/anthropic-api-key".into()));
        assert!(!format!("{:?}", load(&[("REZ_ANTHROPIC_API_KEY", "sk-secret")]).unwrap()).contains("sk-secret"));
    }

    #[test]
    fn approvals_link_to_the_public_url_and_wait_their_ttl() {
        let c = load(&[("REZ_AGENT_PROVIDER", "bedrock"), ("REZ_AGENT_MODEL", "m")]).unwrap();
        assert_eq!((c.settings.public_url, c.settings.approval_ttl), (None, AgentSettings::DEFAULT_APPROVAL_TTL));
        let c = load(&[
            ("REZ_AGENT_PROVIDER", "bedrock"),
            ("REZ_AGENT_MODEL", "m"),
            ("REZ_PUBLIC_URL", "https://abc.execute-api.us-east-1.amazonaws.com/"),
            ("REZ_APPROVAL_TTL_SECS", "600"),
        ])
        .unwrap();
        assert_eq!(
            c.settings.public_url.as_ref().map(Url::as_str),
            Some("https://abc.execute-api.us-east-1.amazonaws.com/")
        );
        assert_eq!(c.settings.approval_ttl, Duration::from_secs(600));
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
            ("REZ_PUBLIC_URL", "rez.example.com"),
            ("REZ_APPROVAL_TTL_SECS", "0"),
        ] {
            let e = load(&[("REZ_AGENT_PROVIDER", "openai"), ("REZ_AGENT_MODEL", "gpt-4o"), (k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
        let e = load(&[
            ("REZ_AGENT_PROVIDER", "openai"),
            ("REZ_AGENT_MODEL", "llama3"),
            ("REZ_AGENT_DAILY_BUDGET_USD", "1"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("no price"), "{e}");
    }
}

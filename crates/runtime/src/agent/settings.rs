//! How the agent runs: provider and model, the caps of a run and of a day, prices, the
//! user's zone and the timing of leases and retries. Read by the binaries from their
//! configuration; the run loop and the API only see this.

use std::time::Duration;

use chrono_tz::Tz;
use rez_core::agent::{Nanodollars, PriceTable};

use super::retry::RetryPolicy;

/// The agent's settings. A deployment without a provider has none: the agent is off.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// `anthropic`, `openai` or `bedrock`.
    pub provider: String,
    pub model: String,
    /// Model turns per run (`REZ_AGENT_MAX_TURNS`, 10).
    pub max_turns: u32,
    /// Output tokens per model call.
    pub max_tokens: u32,
    /// Tokens a run may use in all (`REZ_AGENT_RUN_MAX_TOKENS`).
    pub run_token_cap: u64,
    /// Wall-clock time a run may take from its first step (`REZ_AGENT_RUN_TIMEOUT_SECS`).
    pub run_timeout: Duration,
    /// Spend per day in the user's zone (`REZ_AGENT_DAILY_BUDGET_USD`).
    pub day_cap: Option<Nanodollars>,
    /// Spend per run (`REZ_AGENT_RUN_BUDGET_USD`).
    pub run_cap: Option<Nanodollars>,
    pub prices: PriceTable,
    /// The user's zone: the date and time in the system prompt, and the budget's day.
    pub zone: Tz,
    /// How long a delivery owns a run without taking a step (renewed at every step);
    /// below the queue's visibility, so a crashed delivery's run is free again before the
    /// message comes back.
    pub lease: Duration,
    pub retry: RetryPolicy,
    /// Where this deployment is reached (`REZ_PUBLIC_URL`): the approval buttons' URLs.
    /// `None`: a push asking for approval says how to answer instead.
    pub public_url: Option<url::Url>,
    /// How long an approval waits (`REZ_APPROVAL_TTL_SECS`, 2 h; never past the tee time).
    pub approval_ttl: Duration,
}

impl AgentSettings {
    pub const DEFAULT_MAX_TURNS: u32 = 10;
    pub const DEFAULT_MAX_TOKENS: u32 = 4096;
    pub const DEFAULT_RUN_TOKEN_CAP: u64 = 400_000;
    pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(600);
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
    pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(2 * 3600);

    /// Settings with every default, for `provider` and `model`.
    pub fn new(provider: &str, model: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            max_turns: Self::DEFAULT_MAX_TURNS,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            run_token_cap: Self::DEFAULT_RUN_TOKEN_CAP,
            run_timeout: Self::DEFAULT_RUN_TIMEOUT,
            day_cap: None,
            run_cap: None,
            prices: PriceTable::default(),
            zone: Tz::UTC,
            lease: Self::DEFAULT_LEASE,
            retry: RetryPolicy::default(),
            public_url: None,
            approval_ttl: Self::DEFAULT_APPROVAL_TTL,
        }
    }

    /// A budget needs a price: without one the spend could not be counted.
    pub fn check_prices(&self) -> Result<(), String> {
        if (self.day_cap.is_some() || self.run_cap.is_some()) && self.prices.price(&self.model).is_none() {
            return Err(format!(
                "a budget is set but the model `{}` has no price: add one (rez.toml [agent.prices.\"{}\"] or REZ_AGENT_PRICE=\"{}=input,output[,cache_read,cache_write]\" in USD per million tokens)",
                self.model, self.model, self.model
            ));
        }
        Ok(())
    }
}

//! The functions' configuration, from environment variables only (Lambda has no files
//! to read). Resource names are [`rez_aws::Names::from_env`]; the rest is here. Every
//! variable is documented in DEPLOY.md.

use std::time::Duration;

use anyhow::Context;
use rez_core::message::Stage;

/// Which function this process is (`REZ_FUNCTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The HTTP API behind API Gateway.
    Api,
    /// Notifications queue consumer.
    Processor,
    /// Web-actions queue consumer.
    WebAction,
    /// Schedule-creation queue consumer: management messages and EventBridge firings.
    Scheduler,
    /// The MCP server, stateless, behind API Gateway.
    Mcp,
    /// Re-publishes messages left in `created` (an EventBridge rule every few minutes).
    Sweeper,
    /// Agent-response queue consumer: one agent run per message.
    Agent,
}

impl Function {
    pub const ALL: [Function; 7] = [
        Function::Api,
        Function::Processor,
        Function::WebAction,
        Function::Scheduler,
        Function::Mcp,
        Function::Sweeper,
        Function::Agent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Function::Api => "api",
            Function::Processor => "processor",
            Function::WebAction => "webaction",
            Function::Scheduler => "scheduler",
            Function::Mcp => "mcp",
            Function::Sweeper => "sweeper",
            Function::Agent => "agent",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }
}

/// Everything but the resource names.
#[derive(Clone)]
pub struct Settings {
    pub stage: Stage,
    /// Full ntfy topic URL; unset = inbox only.
    pub ntfy_url: Option<url::Url>,
    /// Secrets Manager id of the ntfy access token, if any.
    pub ntfy_token_secret: Option<String>,
    /// `REZ_API_KEY`: an admin key given directly (tests, containers).
    pub admin_key: Option<String>,
    /// Secrets Manager id of the admin API key (the deployment's first key).
    pub admin_key_secret: Option<String>,
    pub noaa_url: url::Url,
    pub noaa_user_agent: String,
    pub courses_file: Option<std::path::PathBuf>,
    /// Host names the MCP endpoint accepts in `Host`/`Origin` (the API Gateway domain).
    pub mcp_allowed_hosts: Option<Vec<String>>,
    /// Tests only: outbound clients may reach 127.0.0.1.
    pub allow_loopback_for_tests: bool,
    /// Handler timeout per message (below the function timeout).
    pub handler_timeout: Duration,
    /// First retry delay of a failed message (then exponential, with jitter).
    pub retry_backoff: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("stage", &self.stage)
            .field("ntfy_url", &self.ntfy_url.as_ref().map(|u| u.origin().ascii_serialization()))
            .field("ntfy_token_secret", &self.ntfy_token_secret)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<set>"))
            .field("admin_key_secret", &self.admin_key_secret)
            .field("noaa_url", &self.noaa_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let stage_raw = get("REZ_STAGE").unwrap_or_else(|| "dev".into());
        let stage = Stage::parse(&stage_raw).with_context(|| format!("REZ_STAGE={stage_raw}"))?;
        let ntfy_url = get("REZ_NTFY_URL")
            .map(|u| url::Url::parse(&u).with_context(|| format!("REZ_NTFY_URL is not a URL: {u}")))
            .transpose()?;
        let noaa_raw = get("REZ_NOAA_URL").unwrap_or_else(|| "https://api.weather.gov".into());
        let noaa_url = url::Url::parse(&noaa_raw).with_context(|| format!("REZ_NOAA_URL is not a URL: {noaa_raw}"))?;
        let handler_timeout_secs: u64 = match get("REZ_HANDLER_TIMEOUT_SECS") {
            Some(v) => v.parse().with_context(|| format!("REZ_HANDLER_TIMEOUT_SECS={v}"))?,
            None => 50,
        };
        let retry_backoff_ms: u64 = match get("REZ_RETRY_BACKOFF_MS") {
            Some(v) => v.parse().with_context(|| format!("REZ_RETRY_BACKOFF_MS={v}"))?,
            None => 5_000,
        };
        Ok(Self {
            stage,
            ntfy_url,
            ntfy_token_secret: get("REZ_NTFY_TOKEN_SECRET"),
            admin_key: get("REZ_API_KEY"),
            admin_key_secret: get("REZ_ADMIN_KEY_SECRET"),
            noaa_url,
            noaa_user_agent: get("REZ_NOAA_USER_AGENT")
                .unwrap_or_else(|| "rez_agent (https://github.com/rez-agent/rez_agent)".into()),
            courses_file: get("REZ_COURSES_FILE").map(Into::into),
            mcp_allowed_hosts: get("REZ_MCP_ALLOWED_HOSTS")
                .map(|v| v.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect()),
            allow_loopback_for_tests: matches!(get("REZ_OUTBOUND_ALLOW_LOOPBACK").as_deref(), Some("1" | "true")),
            handler_timeout: Duration::from_secs(handler_timeout_secs),
            retry_backoff: Duration::from_millis(retry_backoff_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_parse_by_name() {
        for f in Function::ALL {
            assert_eq!(Function::parse(f.as_str()), Some(f));
        }
        assert_eq!(Function::parse("nope"), None);
    }

    #[test]
    fn defaults_need_nothing_and_secrets_stay_hidden() {
        let s = Settings::from_lookup(|k| (k == "REZ_API_KEY").then(|| "rez_secret".to_owned())).unwrap();
        assert_eq!(s.stage, Stage::Dev);
        assert!(s.ntfy_url.is_none());
        assert!(!format!("{s:?}").contains("rez_secret"));
    }

    #[test]
    fn bad_values_are_named() {
        let err = Settings::from_lookup(|k| (k == "REZ_NTFY_URL").then(|| "not a url".to_owned())).unwrap_err();
        assert!(err.to_string().contains("REZ_NTFY_URL"));
    }
}

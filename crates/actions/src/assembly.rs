//! Assembles the standard web-action handlers and the ntfy notifier from plain settings,
//! each with an outbound policy that allows only its own hosts. `rez serve` and the
//! Lambda functions both build their adapters here, so the two deployments cannot drift.

use std::sync::Arc;

use rez_core::booking::BookingLedger;
use rez_core::ports::{Notifier, SecretStore, WebActionHandler};
use rez_http::{HttpClient, OutboundPolicy};

use crate::golf::{Booker, BookingPolicy, Courses, GolfClient, GolfConfig};
use crate::handlers::{GolfAction, WeatherAction};
use crate::ntfy::{NtfyClient, NtfyConfig};
use crate::weather::{WeatherClient, WeatherConfig};

/// Why the adapters could not be built (a configuration error).
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct AssemblyError {
    pub context: &'static str,
    pub message: String,
}

fn err(context: &'static str, e: impl std::fmt::Display) -> AssemblyError {
    AssemblyError { context, message: e.to_string() }
}

/// Settings of the web actions.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    /// The NOAA API origin (`https://api.weather.gov`).
    pub noaa_url: url::Url,
    pub noaa_user_agent: String,
    /// Tests only: let the clients reach 127.0.0.1 (fakes).
    pub allow_loopback_for_tests: bool,
}

fn policy(hosts: &[String], allow_loopback: bool) -> Result<OutboundPolicy, AssemblyError> {
    let mut policy = OutboundPolicy::allowing(hosts).map_err(|e| err("outbound host allowlist", e))?;
    policy.allow_loopback_for_tests = allow_loopback;
    Ok(policy)
}

/// Golf timing: the cps.golf request timeout and the exactly-once booking policy.
#[derive(Debug, Clone, Default)]
pub struct GolfSettings {
    /// One cps.golf request, whole; `None`: the outbound policy's default.
    pub request_timeout: Option<std::time::Duration>,
    pub booking: BookingPolicy,
}

/// The `weather` (NOAA) and `golf` (cps.golf) handlers, with the default golf timing.
pub fn web_action_handlers(
    settings: &ActionSettings,
    courses: Arc<Courses>,
    ledger: Arc<dyn BookingLedger>,
    secrets: Arc<dyn SecretStore>,
) -> Result<Vec<Arc<dyn WebActionHandler>>, AssemblyError> {
    web_action_handlers_with(settings, &GolfSettings::default(), courses, ledger, secrets)
}

/// The `weather` (NOAA) and `golf` (cps.golf) handlers.
pub fn web_action_handlers_with(
    settings: &ActionSettings,
    golf: &GolfSettings,
    courses: Arc<Courses>,
    ledger: Arc<dyn BookingLedger>,
    secrets: Arc<dyn SecretStore>,
) -> Result<Vec<Arc<dyn WebActionHandler>>, AssemblyError> {
    let noaa_host = settings.noaa_url.host_str().ok_or_else(|| err("NOAA URL", "it has no host"))?.to_owned();
    let weather_http = HttpClient::new(policy(&[noaa_host], settings.allow_loopback_for_tests)?)
        .map_err(|e| err("weather HTTP client", e))?;
    let weather = WeatherClient::new(
        WeatherConfig::new(settings.noaa_user_agent.clone())
            .with_base_url(settings.noaa_url.as_str().trim_end_matches('/')),
        weather_http,
    )
    .map_err(|e| err("configuring NOAA weather", e))?;
    let mut golf_hosts = vec!["*.cps.golf".to_owned()];
    for c in courses.list() {
        if let Some(h) = url::Url::parse(&c.origin).ok().and_then(|u| u.host_str().map(str::to_owned))
            && !h.ends_with(".cps.golf")
        {
            golf_hosts.push(h);
        }
    }
    let mut golf_policy = policy(&golf_hosts, settings.allow_loopback_for_tests)?;
    if let Some(t) = golf.request_timeout {
        golf_policy.total_timeout = t;
    }
    let golf_http = HttpClient::new(golf_policy).map_err(|e| err("golf HTTP client", e))?;
    let booker = Booker::with_policy(GolfClient::new(golf_http, GolfConfig::default()), ledger, golf.booking.clone());
    Ok(vec![
        Arc::new(WeatherAction::new(weather, courses.clone())),
        Arc::new(GolfAction::new(booker, courses, secrets)),
    ])
}

/// How rez authenticates to ntfy. `Debug` masks the token and password.
#[derive(Clone, Default)]
pub enum NtfyAuth {
    #[default]
    None,
    Token(String),
    Basic {
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for NtfyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NtfyAuth::None => f.write_str("None"),
            NtfyAuth::Token(_) => f.write_str("Token([REDACTED])"),
            NtfyAuth::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: [REDACTED] }}"),
        }
    }
}

/// The ntfy notifier for a full topic URL.
pub fn ntfy_notifier(
    topic_url: &url::Url,
    auth: NtfyAuth,
    allow_loopback_for_tests: bool,
) -> Result<Arc<dyn Notifier>, AssemblyError> {
    // The operator configured this URL: it may be a home server on the LAN over http.
    let mut policy = OutboundPolicy::for_operator_url(topic_url).map_err(|e| err("ntfy URL", e))?;
    policy.allow_loopback_for_tests = allow_loopback_for_tests;
    let http = HttpClient::new(policy).map_err(|e| err("building the outbound HTTP client", e))?;
    let mut config = NtfyConfig::new(topic_url.as_str());
    config = match auth {
        NtfyAuth::None => config,
        NtfyAuth::Token(token) => config.with_token(token),
        NtfyAuth::Basic { username, password } => config.with_basic_auth(username, password),
    };
    Ok(Arc::new(NtfyClient::new(config, http).map_err(|e| err("configuring ntfy", e))?))
}

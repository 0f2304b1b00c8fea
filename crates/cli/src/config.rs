//! Configuration: an optional `rez.toml` plus `REZ_*` environment variables (which win).
//! `rez config check` prints what [`Config::load`] found and every problem with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rez_core::Stage;
use rez_runtime::services::Limits;
use serde::Deserialize;
use url::Url;

use crate::agent_config::{AgentConfig, AgentFile};
use crate::inbound::InboundLimits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{name}={value:?} is not valid: {reason}")]
    Env { name: &'static str, value: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The optional `rez.toml`. Every field may be left out. No `Debug`: it holds the API
/// key and the ntfy credentials as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    bind: Option<String>,
    stage: Option<String>,
    api_key: Option<String>,
    log_format: Option<String>,
    shutdown_grace_seconds: Option<u64>,
    #[serde(default)]
    ntfy: NtfyFile,
    #[serde(default)]
    queues: QueuesFile,
    #[serde(default)]
    outbound: OutboundFile,
    #[serde(default)]
    weather: WeatherFile,
    /// A YAML file adding or overriding golf courses.
    courses_file: Option<PathBuf>,
    #[serde(default)]
    mcp: McpFile,
    #[serde(default)]
    golf: GolfFile,
    #[serde(default)]
    http: HttpFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    agent: AgentFile,
}

/// `[limits]`: input limits of SPEC §8.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_schedules: Option<u64>,
}

/// `[http]`: the inbound limits of `rez serve` (see `inbound.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    max_connections: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpFile {
    /// `keys` (default) or `none` (loopback only).
    auth: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    max_sessions: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeatherFile {
    url: Option<String>,
    user_agent: Option<String>,
}

/// No `Debug`: the topic URL, token and password are credentials.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NtfyFile {
    url: Option<String>,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueuesFile {
    notify_concurrency: Option<usize>,
    visibility_timeout_seconds: Option<u64>,
    retry_backoff_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundFile {
    allow_loopback_for_tests: Option<bool>,
}

/// How to reach ntfy.
#[derive(Clone)]
pub struct NtfyConfig {
    /// Full topic URL, e.g. `https://ntfy.sh/my-topic`.
    pub url: Url,
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for NtfyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtfyConfig")
            .field("url", &rez_http::Redactor.origin_only(self.url.as_str()))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub stage: Stage,
    pub api_key: Option<String>,
    pub log_json: bool,
    pub ntfy: Option<NtfyConfig>,
    pub notify_concurrency: usize,
    pub visibility: Duration,
    pub retry_backoff: Duration,
    pub drain: Duration,
    /// Test/benchmark only: lets outbound calls reach 127.0.0.1 over plain HTTP.
    pub allow_loopback_for_tests: bool,
    /// NOAA's origin (a test points it at a fake).
    pub noaa_url: url::Url,
    /// NOAA requires a User-Agent with a contact.
    pub noaa_user_agent: String,
    pub courses_file: Option<PathBuf>,
    /// `REZ_MCP_AUTH=none`: `/mcp` without keys (conformance runs; refused unless bound to loopback).
    pub mcp_auth_none: bool,
    /// Host names the MCP endpoint answers to (`Host`/`Origin`); `None`: loopback names plus the bind address.
    pub mcp_allowed_hosts: Option<Vec<String>>,
    /// The most MCP sessions held at once.
    pub mcp_max_sessions: usize,
    /// Inbound connection limits and timeouts of `rez serve`.
    pub inbound: InboundLimits,
    /// Input limits (the most schedules).
    pub limits: Limits,
    /// Golf booking: the request timeout and the exactly-once timing.
    pub golf: GolfSettings,
    /// The agent: provider, model, keys, caps and prices.
    pub agent: AgentConfig,
    /// Where the configuration came from, for `rez config check`.
    pub sources: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("bind", &self.bind)
            .field("stage", &self.stage)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ntfy", &self.ntfy)
            .field("notify_concurrency", &self.notify_concurrency)
            .field("visibility", &self.visibility)
            .field("drain", &self.drain)
            .field("allow_loopback_for_tests", &self.allow_loopback_for_tests)
            .field("noaa_url", &self.noaa_url.as_str())
            .field("courses_file", &self.courses_file)
            .field("mcp_auth_none", &self.mcp_auth_none)
            .field("mcp_allowed_hosts", &self.mcp_allowed_hosts)
            .field("mcp_max_sessions", &self.mcp_max_sessions)
            .field("inbound", &self.inbound)
            .field("limits", &self.limits)
            .field("golf", &self.golf)
            .field("agent", &self.agent)
            .finish()
    }
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = ".rez";
/// Notification workers, i.e. pushes in flight to the ntfy server.
pub const DEFAULT_NOTIFY_CONCURRENCY: u64 = 40;
pub const DEFAULT_NOAA_URL: &str = "https://api.weather.gov";
/// NOAA asks for a contact in the User-Agent; set `REZ_NOAA_USER_AGENT` to yours.
pub const DEFAULT_NOAA_USER_AGENT: &str =
    concat!("rez_agent/", env!("CARGO_PKG_VERSION"), " (set REZ_NOAA_USER_AGENT to your contact)");

impl Config {
    /// Load from `file` (or `REZ_CONFIG`, or `./rez.toml` if present) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, |k| std::env::var(k).ok())
    }

    /// Same, with an explicit environment (for tests).
    pub fn load_from(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut sources = Vec::new();
        let path = file.map(Path::to_path_buf).or_else(|| env("REZ_CONFIG").map(PathBuf::from)).or_else(|| {
            let p = PathBuf::from("rez.toml");
            p.exists().then_some(p)
        });
        let fc: FileConfig = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
                sources.push(format!("file {}", p.display()));
                toml::from_str(&text)
                    .map_err(|source| ConfigError::Parse { path: p.clone(), source: Box::new(source) })?
            }
            None => FileConfig::default(),
        };
        let pick = |name: &'static str, file: Option<String>| -> Option<(String, &'static str)> {
            env(name).filter(|v| !v.is_empty()).map(|v| (v, name)).or(file.map(|v| (v, "rez.toml")))
        };
        let parse_env =
            |name: &'static str, value: String, reason: &str| ConfigError::Env { name, value, reason: reason.into() };

        let data_dir = pick("REZ_DATA_DIR", fc.data_dir.map(|p| p.to_string_lossy().into_owned()))
            .map(|(v, _)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let bind = match pick("REZ_BIND", fc.bind) {
            Some((v, _)) => v
                .parse::<SocketAddr>()
                .map_err(|_| parse_env("REZ_BIND", v, "expected host:port, e.g. 127.0.0.1:8080"))?,
            None => DEFAULT_BIND.parse().map_err(|_| ConfigError::Invalid("default bind".into()))?,
        };
        let stage = match pick("REZ_STAGE", fc.stage) {
            Some((v, _)) => Stage::parse(&v).ok_or_else(|| parse_env("REZ_STAGE", v, "expected dev, stage or prod"))?,
            None => Stage::Dev,
        };
        let api_key = pick("REZ_API_KEY", fc.api_key).map(|(v, _)| v);
        if let Some(k) = &api_key
            && k.len() < 16
        {
            return Err(ConfigError::Invalid("REZ_API_KEY must be at least 16 characters".into()));
        }
        let log_json = match pick("REZ_LOG_FORMAT", fc.log_format) {
            Some((v, _)) if v == "json" => true,
            Some((v, _)) if v == "text" => false,
            Some((v, _)) => return Err(parse_env("REZ_LOG_FORMAT", v, "expected text or json")),
            None => false,
        };
        let ntfy = match pick("REZ_NTFY_URL", fc.ntfy.url) {
            Some((v, _)) => {
                // The topic URL is a credential: errors name the variable, never its value.
                let hidden = || rez_http::Redactor.origin_only(&v);
                let url = Url::parse(&v).map_err(|e| parse_env("REZ_NTFY_URL", hidden(), &e.to_string()))?;
                if url.path().trim_matches('/').is_empty() {
                    return Err(parse_env(
                        "REZ_NTFY_URL",
                        hidden(),
                        "give the full topic URL, e.g. https://ntfy.sh/my-topic",
                    ));
                }
                Some(NtfyConfig {
                    url,
                    token: pick("REZ_NTFY_TOKEN", fc.ntfy.token).map(|(v, _)| v),
                    username: pick("REZ_NTFY_USER", fc.ntfy.username).map(|(v, _)| v),
                    password: pick("REZ_NTFY_PASSWORD", fc.ntfy.password).map(|(v, _)| v),
                })
            }
            None => None,
        };
        let num = |name: &'static str,
                   file: Option<u64>,
                   default: u64,
                   range: std::ops::RangeInclusive<u64>|
         -> Result<u64, ConfigError> {
            let v = match env(name).filter(|v| !v.is_empty()) {
                Some(v) => v.parse::<u64>().map_err(|_| parse_env(name, v.clone(), "expected a whole number"))?,
                None => file.unwrap_or(default),
            };
            if !range.contains(&v) {
                return Err(parse_env(
                    name,
                    v.to_string(),
                    &format!("must be within {}..={}", range.start(), range.end()),
                ));
            }
            Ok(v)
        };
        // Pushes in flight to the one ntfy server. Under overload this also decides how the
        // CPU splits between the front door and delivery. Measured on 2 cores (BENCHMARKS.md,
        // "What measurement has shown"): 64 left the front door near 10,000/s while
        // deliveries ran far beyond need, 32 let delivery fall under 5,000/s in some runs, 40
        // met both in all.
        let notify_concurrency = num(
            "REZ_NOTIFY_CONCURRENCY",
            fc.queues.notify_concurrency.map(|v| v as u64),
            DEFAULT_NOTIFY_CONCURRENCY,
            1..=1024,
        )? as usize;
        let visibility = Duration::from_secs(num(
            "REZ_VISIBILITY_TIMEOUT_SECS",
            fc.queues.visibility_timeout_seconds,
            360,
            5..=43_200,
        )?);
        let retry_backoff =
            Duration::from_millis(num("REZ_RETRY_BACKOFF_MS", fc.queues.retry_backoff_ms, 2000, 10..=600_000)?);
        let drain = Duration::from_secs(num("REZ_SHUTDOWN_GRACE_SECS", fc.shutdown_grace_seconds, 10, 0..=600)?);
        let allow_loopback_for_tests = match env("REZ_OUTBOUND_ALLOW_LOOPBACK").filter(|v| !v.is_empty()) {
            Some(v) => matches!(v.as_str(), "1" | "true" | "yes"),
            None => fc.outbound.allow_loopback_for_tests.unwrap_or(false),
        };
        let noaa_raw = pick("REZ_NOAA_URL", fc.weather.url).map(|(v, _)| v).unwrap_or_else(|| DEFAULT_NOAA_URL.into());
        let noaa_url =
            Url::parse(&noaa_raw).map_err(|e| parse_env("REZ_NOAA_URL", noaa_raw.clone(), &e.to_string()))?;
        let noaa_user_agent = pick("REZ_NOAA_USER_AGENT", fc.weather.user_agent)
            .map(|(v, _)| v)
            .unwrap_or_else(|| DEFAULT_NOAA_USER_AGENT.into());
        let courses_file = pick("REZ_COURSES_FILE", fc.courses_file.map(|p| p.to_string_lossy().into_owned()))
            .map(|(v, _)| PathBuf::from(v));
        let mcp_auth_none = match pick("REZ_MCP_AUTH", fc.mcp.auth) {
            None => false,
            Some((v, _)) if v == "none" => true,
            Some((v, _)) if v == "keys" => false,
            Some((v, _)) => return Err(parse_env("REZ_MCP_AUTH", v, "expected keys (the default) or none")),
        };
        let mcp_allowed_hosts = match env("REZ_MCP_ALLOWED_HOSTS").filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(parse_hosts(&v).map_err(|reason| parse_env("REZ_MCP_ALLOWED_HOSTS", v.clone(), &reason))?),
            None => match fc.mcp.allowed_hosts {
                Some(list) => Some(
                    parse_hosts(&list.join(","))
                        .map_err(|reason| ConfigError::Invalid(format!("mcp.allowed_hosts: {reason}")))?,
                ),
                None => None,
            },
        };
        let inbound = {
            let d = InboundLimits::default();
            let ms = |d: Duration| d.as_millis() as u64;
            InboundLimits {
                max_connections: num(
                    "REZ_HTTP_MAX_CONNECTIONS",
                    fc.http.max_connections,
                    d.max_connections as u64,
                    1..=1_000_000,
                )? as usize,
                header_read_timeout: Duration::from_millis(num(
                    "REZ_HTTP_HEADER_READ_TIMEOUT_MS",
                    fc.http.header_read_timeout_ms,
                    ms(d.header_read_timeout),
                    10..=3_600_000,
                )?),
                request_timeout: Duration::from_millis(num(
                    "REZ_HTTP_REQUEST_TIMEOUT_MS",
                    fc.http.request_timeout_ms,
                    ms(d.request_timeout),
                    10..=3_600_000,
                )?),
                idle_timeout: Duration::from_millis(num(
                    "REZ_HTTP_IDLE_TIMEOUT_MS",
                    fc.http.idle_timeout_ms,
                    ms(d.idle_timeout),
                    10..=3_600_000,
                )?),
            }
        };
        let limits = Limits {
            max_schedules: num(
                "REZ_MAX_SCHEDULES",
                fc.limits.max_schedules,
                Limits::default().max_schedules,
                1..=10_000_000,
            )?,
        };
        let mcp_max_sessions =
            num("REZ_MCP_MAX_SESSIONS", fc.mcp.max_sessions, rez_mcp::http::DEFAULT_MAX_SESSIONS as u64, 1..=100_000)?
                as usize;
        let golf = GolfSettings::load(fc.golf, &env)?;
        let agent = AgentConfig::load(fc.agent, &env)?;
        sources.push("environment".into());
        Ok(Self {
            data_dir,
            bind,
            stage,
            api_key,
            log_json,
            ntfy,
            notify_concurrency,
            visibility,
            retry_backoff,
            drain,
            allow_loopback_for_tests,
            noaa_url,
            noaa_user_agent,
            courses_file,
            mcp_auth_none,
            mcp_allowed_hosts,
            mcp_max_sessions,
            inbound,
            limits,
            golf,
            agent,
            sources,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("rez.db")
    }
}

/// A comma-separated list of host names or `host:port` (no schemes or paths).
fn parse_hosts(raw: &str) -> Result<Vec<String>, String> {
    let hosts: Vec<String> = raw.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
    if hosts.is_empty() {
        return Err("give at least one host name".into());
    }
    if let Some(bad) = hosts.iter().find(|h| h.contains("://") || h.contains('/') || h.contains(char::is_whitespace)) {
        return Err(format!("`{bad}` is not a host name; give names like rez.example.com or 192.168.1.5:8080"));
    }
    Ok(hosts)
}

// ---- golf booking ---------------------------------------------------------------------------

/// `[golf]` in rez.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GolfFile {
    /// When to look for an uncertain reserve among the reservations, in seconds after it.
    verify_after_seconds: Option<Vec<f64>>,
    lease_seconds: Option<f64>,
    verify_max_wait_seconds: Option<f64>,
    request_timeout_seconds: Option<f64>,
}

/// Golf settings: the cps.golf request timeout and the exactly-once booking timing
/// (`rez_actions::golf::BookingPolicy`). Tests scale them down, keeping the ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct GolfSettings {
    /// `REZ_GOLF_REQUEST_TIMEOUT_SECS`: one cps.golf request, whole (default 30 s).
    pub request_timeout: Duration,
    /// `REZ_GOLF_VERIFY_SCHEDULE` (`30,60,120,300,600`), `REZ_GOLF_LEASE_SECS`,
    /// `REZ_GOLF_VERIFY_MAX_WAIT_SECS`.
    pub booking: rez_actions::golf::BookingPolicy,
}

/// A positive number of seconds (fractions allowed) as a duration.
fn seconds(raw: f64) -> Option<Duration> {
    (raw.is_finite() && raw > 0.0 && raw <= 86_400.0).then(|| Duration::from_secs_f64(raw))
}

impl GolfSettings {
    fn load(file: GolfFile, env: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = rez_actions::golf::BookingPolicy::default();
        let bad =
            |name: &'static str, value: String, reason: &str| ConfigError::Env { name, value, reason: reason.into() };
        let secs = |name: &'static str, file: Option<f64>, default: Duration| -> Result<Duration, ConfigError> {
            match env(name).filter(|v| !v.trim().is_empty()) {
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(seconds)
                    .ok_or_else(|| bad(name, v.clone(), "expected a positive number of seconds")),
                None => match file {
                    Some(f) => seconds(f).ok_or_else(|| {
                        ConfigError::Invalid(format!("golf: {f} is not a positive number of seconds ({name})"))
                    }),
                    None => Ok(default),
                },
            }
        };
        let verify_after = match env("REZ_GOLF_VERIFY_SCHEDULE").filter(|v| !v.trim().is_empty()) {
            Some(v) => {
                let parsed: Option<Vec<f64>> = v.split(',').map(|p| p.trim().parse::<f64>().ok()).collect();
                verify_schedule(parsed.unwrap_or_default())
                    .map_err(|reason| bad("REZ_GOLF_VERIFY_SCHEDULE", v.clone(), &reason))?
            }
            None => match file.verify_after_seconds {
                Some(list) => verify_schedule(list)
                    .map_err(|reason| ConfigError::Invalid(format!("golf.verify_after_seconds: {reason}")))?,
                None => defaults.verify_after,
            },
        };
        let booking = rez_actions::golf::BookingPolicy {
            lease: secs("REZ_GOLF_LEASE_SECS", file.lease_seconds, defaults.lease)?,
            verify_after,
            max_wait: secs("REZ_GOLF_VERIFY_MAX_WAIT_SECS", file.verify_max_wait_seconds, defaults.max_wait)?,
        };
        let request_timeout =
            secs("REZ_GOLF_REQUEST_TIMEOUT_SECS", file.request_timeout_seconds, Duration::from_secs(30))?;
        Ok(Self { request_timeout, booking })
    }
}

/// Increasing positive offsets in seconds, at least one.
fn verify_schedule(raw: Vec<f64>) -> Result<Vec<Duration>, String> {
    let durations: Option<Vec<Duration>> = raw.into_iter().map(seconds).collect();
    let durations =
        durations.ok_or("expected positive numbers of seconds separated by commas, e.g. 30,60,120,300,600")?;
    if durations.is_empty() {
        return Err("give at least one lookup".into());
    }
    if durations.windows(2).any(|w| w[1] <= w[0]) {
        return Err("the lookups must be in increasing order".into());
    }
    Ok(durations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load_from(None, move |k| m.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = load(&[]).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert!(c.ntfy.is_none());
        assert!(!c.allow_loopback_for_tests);
    }

    #[test]
    fn env_is_validated() {
        assert!(matches!(load(&[("REZ_BIND", "nope")]), Err(ConfigError::Env { name: "REZ_BIND", .. })));
        assert!(matches!(
            load(&[("REZ_NTFY_URL", "https://ntfy.sh/")]),
            Err(ConfigError::Env { name: "REZ_NTFY_URL", .. })
        ));
        assert!(matches!(load(&[("REZ_STAGE", "qa")]), Err(ConfigError::Env { .. })));
        assert!(load(&[("REZ_API_KEY", "short")]).is_err());
        let c = load(&[
            ("REZ_NTFY_URL", "https://ntfy.sh/topic-s3cret"),
            ("REZ_NTFY_TOKEN", "tk_secret"),
            ("REZ_NTFY_USER", "me"),
            ("REZ_NTFY_PASSWORD", "pw-s3cret"),
            ("REZ_API_KEY", "api-key-s3cret-0123456789"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        for secret in ["tk_secret", "topic-s3cret", "pw-s3cret", "api-key-s3cret"] {
            assert!(!shown.contains(secret), "{secret} in Debug: {shown}");
        }
        // A malformed topic URL is reported without its path.
        let e = load(&[("REZ_NTFY_URL", "https://ntfy.sh:99999/topic-s3cret")]).unwrap_err();
        assert!(!e.to_string().contains("topic-s3cret"), "{e}");
    }

    #[test]
    fn inbound_limits() {
        assert_eq!(load(&[]).unwrap().inbound, InboundLimits::default());
        let c = load(&[
            ("REZ_HTTP_MAX_CONNECTIONS", "5000"),
            ("REZ_HTTP_HEADER_READ_TIMEOUT_MS", "2000"),
            ("REZ_HTTP_REQUEST_TIMEOUT_MS", "3000"),
            ("REZ_HTTP_IDLE_TIMEOUT_MS", "4000"),
        ])
        .unwrap();
        assert_eq!(
            c.inbound,
            InboundLimits {
                max_connections: 5000,
                header_read_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(4),
            }
        );
        assert!(matches!(
            load(&[("REZ_HTTP_MAX_CONNECTIONS", "0")]),
            Err(ConfigError::Env { name: "REZ_HTTP_MAX_CONNECTIONS", .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rez.toml");
        std::fs::write(&file, "[http]\nmax_connections = 64\nidle_timeout_ms = 90000\n").unwrap();
        let c = Config::load_from(Some(&file), |_| None).unwrap();
        assert_eq!(c.inbound.max_connections, 64);
        assert_eq!(c.inbound.idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn golf_settings() {
        let c = load(&[]).unwrap();
        assert_eq!(c.golf.booking, rez_actions::golf::BookingPolicy::default());
        assert_eq!(c.golf.request_timeout, Duration::from_secs(30));
        let c =
            load(&[("REZ_GOLF_VERIFY_SCHEDULE", "0.3, 0.6,1.2"), ("REZ_GOLF_REQUEST_TIMEOUT_SECS", "0.3")]).unwrap();
        assert_eq!(c.golf.booking.verify_after, [300, 600, 1200].map(Duration::from_millis));
        assert_eq!(c.golf.request_timeout, Duration::from_millis(300));
        for bad in ["30,x", "60,30", "0,30", "-1", ","] {
            assert!(
                matches!(
                    load(&[("REZ_GOLF_VERIFY_SCHEDULE", bad)]),
                    Err(ConfigError::Env { name: "REZ_GOLF_VERIFY_SCHEDULE", .. })
                ),
                "{bad}"
            );
        }
        assert!(load(&[("REZ_GOLF_LEASE_SECS", "0")]).is_err());
    }

    #[test]
    fn mcp_settings() {
        let c = load(&[]).unwrap();
        assert!(!c.mcp_auth_none && c.mcp_allowed_hosts.is_none());
        let c = load(&[("REZ_MCP_AUTH", "none"), ("REZ_MCP_ALLOWED_HOSTS", "rez.example.com, 10.0.0.2:8080")]).unwrap();
        assert!(c.mcp_auth_none);
        assert_eq!(c.mcp_allowed_hosts.unwrap(), ["rez.example.com", "10.0.0.2:8080"]);
        assert!(matches!(load(&[("REZ_MCP_AUTH", "off")]), Err(ConfigError::Env { name: "REZ_MCP_AUTH", .. })));
        assert!(matches!(
            load(&[("REZ_MCP_ALLOWED_HOSTS", "https://rez.example.com")]),
            Err(ConfigError::Env { name: "REZ_MCP_ALLOWED_HOSTS", .. })
        ));
    }
}

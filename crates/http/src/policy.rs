//! The outbound policy: which URLs an integration may call, and the limits of each call.
//!
//! One [`OutboundPolicy`] is configured per integration (ntfy, NOAA, cps.golf, LLM…). It
//! is checked on the initial URL, on every redirect hop and, for host names, again on
//! every resolved address. The default policy is strict. Two relaxations exist: the
//! test-only [`OutboundPolicy::allow_loopback_for_tests`] flag, and
//! [`OutboundPolicy::for_operator_url`] for a server the operator configured by URL (a
//! self-hosted ntfy on the LAN): plain http if the URL says so, private addresses, and
//! loopback only when the URL itself names it. URLs from messages and tools never get
//! such a policy.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

use crate::address::is_forbidden;

/// Hard ceiling on redirect hops (SPEC §6.1).
pub const MAX_REDIRECTS: usize = 5;

/// One entry of a host allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host (lower case, no trailing dot).
    Exact(String),
    /// `*.suffix`: any host strictly below `suffix` (`a.cps.golf`, `a.b.cps.golf`), not
    /// `suffix` itself.
    Subdomains(String),
}

impl HostPattern {
    /// Parse `api.weather.gov` or `*.cps.golf`. Hosts are compared case-insensitively.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, body) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let body = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')).unwrap_or(body);
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') || (c == ':' && !wildcard);
        if body.is_empty() || body.starts_with('.') || !body.chars().all(valid_char) {
            return Err(PolicyError::InvalidHostPattern(s.clone()));
        }
        Ok(if wildcard { HostPattern::Subdomains(body.to_owned()) } else { HostPattern::Exact(body.to_owned()) })
    }

    /// Whether `host` (as in a URL, already lower case) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Subdomains(s) => write!(f, "*.{s}"),
        }
    }
}

/// A misconfigured policy.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("invalid host pattern {0:?}: use a host name like api.weather.gov or a wildcard like *.cps.golf")]
    InvalidHostPattern(String),
    #[error("max_redirects {0} exceeds the limit of {MAX_REDIRECTS}")]
    TooManyRedirectsAllowed(usize),
    #[error("invalid proxy URL: {0}")]
    InvalidProxy(String),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Why a URL or address was refused. Messages never contain credentials: URLs are
/// reduced to scheme, host and port before they get here.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyViolation {
    #[error("scheme {scheme:?} refused for {host}: only https is allowed")]
    Scheme { scheme: String, host: String },
    #[error("URL has no host")]
    NoHost,
    #[error("host {host} is not on the allowlist of this integration")]
    HostNotAllowed { host: String },
    #[error("address {addr} of {host} is forbidden ({reason})")]
    ForbiddenAddress { host: String, addr: IpAddr, reason: &'static str },
    #[error("{host} did not resolve to any address")]
    NoAddresses { host: String },
    #[error("too many redirects (more than {max})")]
    TooManyRedirects { max: usize },
}

/// Configuration of outbound calls for one integration.
#[derive(Clone)]
pub struct OutboundPolicy {
    /// Hosts this integration may call. Empty = nothing is allowed (fail closed).
    pub allowed_hosts: Vec<HostPattern>,
    /// Time allowed to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, from sending to the last body byte.
    pub total_timeout: Duration,
    /// Response bodies longer than this are cut off with [`crate::HttpError::BodyTooLarge`].
    pub max_response_bytes: u64,
    /// Redirect hops followed, at most [`MAX_REDIRECTS`].
    pub max_redirects: usize,
    /// An explicit proxy (`https://proxy:3128`). `None` (default) ignores `HTTP(S)_PROXY`
    /// from the environment. Note that with a proxy the *proxy* resolves host names, so
    /// address vetting of resolved names is then up to the proxy; URL checks still apply.
    pub proxy: Option<String>,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
    /// **Test-only.** Allows 127.0.0.0/8 and `::1` as destinations and plain `http://` to
    /// loopback hosts (`127.x.x.x`, `[::1]`, `localhost`), so tests can reach fake servers.
    /// Never set this in production configuration; it defaults to `false`.
    pub allow_loopback_for_tests: bool,
    /// What the operator's own configuration allows beyond the strict default (see
    /// [`OutboundPolicy::for_operator_url`]); nothing by default.
    pub operator: OperatorAllowance,
}

/// Relaxations an operator-configured URL earns. Link-local addresses (the cloud
/// metadata endpoint among them), multicast and reserved ranges stay forbidden.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorAllowance {
    /// `http://` to the allowed hosts (a LAN server without TLS).
    pub plain_http: bool,
    /// Private networks: RFC 1918, carrier-grade NAT, IPv6 unique local (fc00::/7).
    pub private_network: bool,
    /// Loopback (127.0.0.0/8, `::1`), only when the configured URL names it.
    pub loopback: bool,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            max_redirects: MAX_REDIRECTS,
            proxy: None,
            user_agent: concat!("rez_agent/", env!("CARGO_PKG_VERSION")).to_owned(),
            allow_loopback_for_tests: false,
            operator: OperatorAllowance::default(),
        }
    }
}

impl fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.allowed_hosts.iter().map(ToString::to_string).collect();
        f.debug_struct("OutboundPolicy")
            .field("allowed_hosts", &hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_redirects", &self.max_redirects)
            // A proxy URL may carry credentials.
            .field("proxy", &self.proxy.as_ref().map(|_| "<configured>"))
            .field("allow_loopback_for_tests", &self.allow_loopback_for_tests)
            .field("operator", &self.operator)
            .finish()
    }
}

impl OutboundPolicy {
    /// A default policy allowing `hosts` (`api.weather.gov`, `*.cps.golf`, …).
    pub fn allowing<I, S>(hosts: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed_hosts = hosts.into_iter().map(|h| HostPattern::parse(h.as_ref())).collect::<Result<_, _>>()?;
        Ok(Self { allowed_hosts, ..Self::default() })
    }

    /// **Test-only**: a policy that reaches fake servers on loopback (`127.0.0.1`, `[::1]`,
    /// `localhost`) with short timeouts. Never use it outside tests.
    pub fn loopback_for_tests() -> Self {
        Self {
            allowed_hosts: ["127.0.0.1", "::1", "localhost"]
                .iter()
                .map(|h| HostPattern::Exact((*h).to_owned()))
                .collect(),
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(10),
            allow_loopback_for_tests: true,
            ..Self::default()
        }
    }

    /// The policy of a server the operator configured by URL (`REZ_NTFY_URL`, later the
    /// agent's model endpoint): only that URL's host; plain http if the URL is http;
    /// private addresses (a home server on the LAN); loopback only if the URL's host is
    /// a loopback address or `localhost`. Never build this from a URL a message, a tool
    /// argument or a model supplied.
    pub fn for_operator_url(url: &Url) -> Result<Self, PolicyError> {
        let host = url.host().ok_or_else(|| PolicyError::InvalidHostPattern(String::new()))?;
        let mut policy = Self::allowing([host_display(&host)])?;
        policy.operator = OperatorAllowance {
            plain_http: url.scheme() == "http",
            private_network: true,
            loopback: is_loopback_host(&host),
        };
        Ok(policy)
    }

    /// Add one allowlist entry.
    pub fn allow_host(mut self, pattern: &str) -> Result<Self, PolicyError> {
        self.allowed_hosts.push(HostPattern::parse(pattern)?);
        Ok(self)
    }

    /// Check the configuration itself.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_redirects > MAX_REDIRECTS {
            return Err(PolicyError::TooManyRedirectsAllowed(self.max_redirects));
        }
        if self.connect_timeout.is_zero() {
            return Err(PolicyError::Zero("connect_timeout"));
        }
        if self.total_timeout.is_zero() {
            return Err(PolicyError::Zero("total_timeout"));
        }
        if self.max_response_bytes == 0 {
            return Err(PolicyError::Zero("max_response_bytes"));
        }
        Ok(())
    }

    /// Why `ip` may not be connected to under this policy, if it may not.
    pub fn vet_ip(&self, ip: IpAddr) -> Option<&'static str> {
        if (self.allow_loopback_for_tests || self.operator.loopback) && is_test_loopback(ip) {
            return None;
        }
        if self.operator.private_network && is_private_network(ip) {
            return None;
        }
        is_forbidden(ip)
    }

    /// Whether `host` is on the allowlist.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|p| p.matches(host))
    }

    /// Check a URL before it is requested (initial URL and every redirect hop):
    /// an IP literal must be a permitted address, the scheme must be https (or http to
    /// loopback under the test allowance), and the host must be on the allowlist.
    pub fn check_url(&self, url: &Url) -> Result<(), PolicyViolation> {
        let host = url.host().ok_or(PolicyViolation::NoHost)?;
        let host_str = host_display(&host);
        let literal: Option<IpAddr> = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal
            && let Some(reason) = self.vet_ip(ip)
        {
            return Err(PolicyViolation::ForbiddenAddress { host: host_str, addr: ip, reason });
        }
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.operator.plain_http || (self.allow_loopback_for_tests && is_loopback_host(&host)),
            _ => false,
        };
        if !scheme_ok {
            return Err(PolicyViolation::Scheme { scheme: url.scheme().to_owned(), host: host_str });
        }
        if !self.host_allowed(&host_str) {
            return Err(PolicyViolation::HostNotAllowed { host: host_str });
        }
        Ok(())
    }
}

/// Loopback addresses the test allowance admits: 127.0.0.0/8 and `::1` (not mapped forms).
fn is_test_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// The private ranges an operator's server may live in: RFC 1918, carrier-grade NAT and
/// IPv6 unique local addresses (not link-local, where the cloud metadata endpoint is).
fn is_private_network(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 10
                || (a == 172 && (16..=31).contains(&b))
                || (a == 192 && b == 168)
                || (a == 100 && (64..=127).contains(&b))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(v4) => v4.is_loopback(),
        Host::Ipv6(v6) => v6.is_loopback(),
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

/// The host as written in allowlists: domains as-is, IPv6 without brackets.
fn host_display(host: &Host<&str>) -> String {
    match host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::Ipv4(v4) => v4.to_string(),
        Host::Ipv6(v6) => v6.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    #[test]
    fn patterns() {
        let p = HostPattern::parse("*.cps.golf").expect("pattern");
        assert!(p.matches("x.cps.golf"));
        assert!(p.matches("a.b.CPS.golf"));
        assert!(!p.matches("cps.golf"));
        assert!(!p.matches("evilcps.golf"));
        assert!(!p.matches("cps.golf.evil.com"));
        let e = HostPattern::parse("API.weather.gov.").expect("pattern");
        assert!(e.matches("api.weather.gov"));
        assert!(!e.matches("x.api.weather.gov"));
        for bad in ["", "*", "*.", "a*.b", "http://x", "x/y", "*.*.x"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_url_order_and_scheme() {
        let p = OutboundPolicy::allowing(["api.weather.gov", "*.cps.golf"]).expect("policy");
        assert!(p.check_url(&url("https://api.weather.gov/points/1,2")).is_ok());
        assert!(p.check_url(&url("https://x.cps.golf/")).is_ok());
        assert!(matches!(p.check_url(&url("http://api.weather.gov/")), Err(PolicyViolation::Scheme { .. })));
        assert!(matches!(p.check_url(&url("ftp://api.weather.gov/")), Err(PolicyViolation::Scheme { .. })));
        assert!(matches!(p.check_url(&url("https://example.com/")), Err(PolicyViolation::HostNotAllowed { .. })));
        assert!(matches!(p.check_url(&url("https://10.0.0.1/")), Err(PolicyViolation::ForbiddenAddress { .. })));
        assert!(matches!(p.check_url(&url("http://127.0.0.1/")), Err(PolicyViolation::ForbiddenAddress { .. })));
        // Obfuscated literals are normalised by the URL parser before we see them.
        assert!(matches!(p.check_url(&url("https://2130706433/")), Err(PolicyViolation::ForbiddenAddress { .. })));
        assert!(matches!(p.check_url(&url("https://0x7f.1/")), Err(PolicyViolation::ForbiddenAddress { .. })));
        assert!(matches!(
            p.check_url(&url("https://[::ffff:169.254.169.254]/")),
            Err(PolicyViolation::ForbiddenAddress { .. })
        ));
        assert!(matches!(p.check_url(&url("data:text/plain,x")), Err(PolicyViolation::NoHost)));
    }

    #[test]
    fn loopback_allowance_is_narrow() {
        let p = OutboundPolicy::loopback_for_tests();
        assert!(p.check_url(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(p.check_url(&url("http://[::1]:8080/")).is_ok());
        assert!(p.check_url(&url("http://localhost:8080/")).is_ok());
        assert!(matches!(p.check_url(&url("http://10.0.0.1/")), Err(PolicyViolation::ForbiddenAddress { .. })));
        assert!(matches!(
            p.check_url(&url("http://[::ffff:127.0.0.1]/")),
            Err(PolicyViolation::ForbiddenAddress { .. })
        ));
        let with_host = OutboundPolicy::loopback_for_tests().allow_host("example.com").expect("host");
        assert!(matches!(with_host.check_url(&url("http://example.com/")), Err(PolicyViolation::Scheme { .. })));
        assert_eq!(p.vet_ip("127.1.2.3".parse().expect("ip")), None);
        assert!(OutboundPolicy::default().vet_ip("127.0.0.1".parse().expect("ip")).is_some());
    }

    #[test]
    fn an_operator_url_may_be_plain_http_on_a_private_network() {
        let lan = OutboundPolicy::for_operator_url(&url("http://192.168.1.5:8090/alerts")).expect("policy");
        assert!(lan.check_url(&url("http://192.168.1.5:8090/")).is_ok());
        assert_eq!(lan.vet_ip("192.168.1.5".parse().expect("ip")), None);
        assert_eq!(lan.vet_ip("10.1.2.3".parse().expect("ip")), None);
        assert_eq!(lan.vet_ip("fd00::5".parse().expect("ip")), None);
        // Still refused: other hosts, the metadata endpoint, link-local, loopback it did not name.
        assert!(matches!(lan.check_url(&url("http://192.168.1.6/")), Err(PolicyViolation::HostNotAllowed { .. })));
        assert!(lan.vet_ip("169.254.169.254".parse().expect("ip")).is_some());
        assert!(lan.vet_ip("fe80::1".parse().expect("ip")).is_some());
        assert!(lan.vet_ip("127.0.0.1".parse().expect("ip")).is_some());
        assert!(lan.vet_ip("224.0.0.1".parse().expect("ip")).is_some());
        // https stays https-only; a named loopback is the operator's explicit choice.
        let tls = OutboundPolicy::for_operator_url(&url("https://ntfy.example.com/t")).expect("policy");
        assert!(matches!(tls.check_url(&url("http://ntfy.example.com/")), Err(PolicyViolation::Scheme { .. })));
        let local = OutboundPolicy::for_operator_url(&url("http://127.0.0.1:8090/t")).expect("policy");
        assert!(local.check_url(&url("http://127.0.0.1:8090/")).is_ok());
        assert_eq!(local.vet_ip("127.0.0.1".parse().expect("ip")), None);
        // The strict default is untouched.
        assert!(
            OutboundPolicy::allowing(["192.168.1.5"])
                .expect("policy")
                .vet_ip("192.168.1.5".parse().expect("ip"))
                .is_some()
        );
    }

    #[test]
    fn validate_limits() {
        let p = OutboundPolicy { max_redirects: 6, ..OutboundPolicy::default() };
        assert_eq!(p.validate(), Err(PolicyError::TooManyRedirectsAllowed(6)));
        assert!(OutboundPolicy::default().validate().is_ok());
    }
}

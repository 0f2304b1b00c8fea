//! Where a provider client sends its requests, and the outbound policy that guards it.
//!
//! A provider's public endpoint gets the strict policy (https, that one host). A base URL
//! the operator configured (`REZ_ANTHROPIC_BASE_URL`, `REZ_OPENAI_BASE_URL`: a local Ollama,
//! a vLLM on the LAN) gets `OutboundPolicy::for_operator_url`: its host only, plain http if
//! it says so, private addresses, loopback only if it names loopback. The URL is fixed when
//! the client is built: nothing a message or a model says can change it.

use std::time::Duration;

use rez_http::{HttpClient, HttpError, OutboundPolicy, PolicyError, Url};

/// The default limit of one model call, from sending to the last byte of the answer.
pub const DEFAULT_MODEL_TIMEOUT: Duration = Duration::from_secs(120);

/// A model's answer is bounded by `max_tokens`; this only stops a runaway server.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// Why a provider client cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid {setting}: {reason}")]
    InvalidBaseUrl { setting: &'static str, reason: String },
    #[error("the model call timeout must be greater than zero")]
    ZeroTimeout,
    #[error("invalid outbound policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] HttpError),
}

/// The client and the endpoint URL of one provider.
pub(crate) struct Endpoint {
    pub(crate) http: HttpClient,
    pub(crate) url: Url,
}

/// `base` + `path`, keeping any path the base has (`http://host:11434/v1` +
/// `chat/completions`), with a policy for the base's origin. `operator` is false only for
/// the provider's built-in public URL.
pub(crate) fn endpoint(
    base: &Url,
    path: &str,
    operator: bool,
    setting: &'static str,
    timeout: Duration,
) -> Result<Endpoint, ClientError> {
    if timeout.is_zero() {
        return Err(ClientError::ZeroTimeout);
    }
    if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
        return Err(ClientError::InvalidBaseUrl {
            setting,
            reason: "use an http:// or https:// URL with a host".into(),
        });
    }
    if !base.username().is_empty() || base.password().is_some() || base.query().is_some() || base.fragment().is_some() {
        return Err(ClientError::InvalidBaseUrl {
            setting,
            reason: "credentials, a query or a fragment do not belong in the base URL; keys are configured apart"
                .into(),
        });
    }
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    let url = base.join(path).map_err(|e| ClientError::InvalidBaseUrl { setting, reason: e.to_string() })?;
    let mut policy = if operator {
        OutboundPolicy::for_operator_url(&url)?
    } else {
        let host = url.host_str().unwrap_or_default().to_owned();
        OutboundPolicy::allowing([host])?
    };
    policy.total_timeout = timeout;
    policy.max_response_bytes = MAX_RESPONSE_BYTES;
    let http = HttpClient::new(policy)?;
    Ok(Endpoint { http, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn paths_join_under_the_base() {
        let e = endpoint(&url("http://127.0.0.1:11434/v1"), "chat/completions", true, "X", DEFAULT_MODEL_TIMEOUT)
            .expect("endpoint");
        assert_eq!(e.url.as_str(), "http://127.0.0.1:11434/v1/chat/completions");
        let e = endpoint(&url("https://api.anthropic.com"), "v1/messages", false, "X", DEFAULT_MODEL_TIMEOUT)
            .expect("endpoint");
        assert_eq!(e.url.as_str(), "https://api.anthropic.com/v1/messages");
        assert!(!e.http.policy().operator.plain_http && e.http.policy().host_allowed("api.anthropic.com"));
        assert!(!e.http.policy().host_allowed("evil.example"));
    }

    #[test]
    fn operator_urls_may_be_local_and_the_public_default_may_not() {
        let local = endpoint(&url("http://192.168.1.9:8000/v1/"), "chat/completions", true, "X", DEFAULT_MODEL_TIMEOUT)
            .expect("endpoint");
        assert!(local.http.policy().check_url(&local.url).is_ok());
        let strict =
            endpoint(&url("http://192.168.1.9:8000/v1/"), "chat/completions", false, "X", DEFAULT_MODEL_TIMEOUT)
                .expect("endpoint");
        assert!(strict.http.policy().check_url(&strict.url).is_err());
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_setting_named() {
        for bad in ["ftp://x/", "http://u:p@host/", "https://host/?key=1", "file:///etc"] {
            let err = endpoint(&url(bad), "v1/messages", true, "REZ_ANTHROPIC_BASE_URL", DEFAULT_MODEL_TIMEOUT)
                .err()
                .expect(bad);
            assert!(err.to_string().contains("REZ_ANTHROPIC_BASE_URL"), "{err}");
        }
        assert!(matches!(
            endpoint(&url("https://h/"), "v1/messages", true, "X", Duration::ZERO),
            Err(ClientError::ZeroTimeout)
        ));
    }
}

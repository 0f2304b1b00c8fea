//! [`HttpClient`]: reqwest wired to the outbound policy.
//!
//! reqwest does the HTTP; this module makes sure every request goes through the policy:
//! the URL (and any IP literal in it) is checked before sending, host names resolve only
//! through [`VettingResolver`], each redirect hop is re-checked, the peer address is
//! checked once more after connecting, bodies are read incrementally up to a cap, and
//! errors are mapped to [`HttpError`] with secrets redacted.
//!
//! The reqwest client is deliberately not exposed: a raw `reqwest::RequestBuilder::send`
//! would skip the IP-literal check.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::policy::{OutboundPolicy, PolicyError, PolicyViolation};
use crate::redact::Redactor;
use crate::resolve::{Lookup, ResolveError, SystemLookup, VettingResolver};
use crate::retry::{RetryPolicy, is_retryable_status, parse_retry_after};

/// Failure of an outbound request. Display strings contain no secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The policy refused the URL, a redirect hop or a resolved address. Never retried.
    #[error("refused by outbound policy: {0}")]
    Refused(PolicyViolation),
    #[error("invalid outbound configuration: {0}")]
    Config(#[from] PolicyError),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("request to {url} timed out")]
    Timeout { url: String },
    /// The connection failed after it was established (reset, closed early, bad HTTP).
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    BodyTooLarge { url: String, limit: u64 },
    #[error("cannot decode response from {url}: {message}")]
    Decode { url: String, message: String },
}

impl HttpError {
    /// Connection errors, timeouts and broken connections: another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::Connect { .. } | HttpError::Timeout { .. } | HttpError::Transport { .. })
    }

    /// The outbound policy refused the request.
    pub fn is_refused(&self) -> bool {
        matches!(self, HttpError::Refused(_))
    }

    /// The policy violation, if this is a refusal.
    pub fn violation(&self) -> Option<&PolicyViolation> {
        match self {
            HttpError::Refused(v) => Some(v),
            _ => None,
        }
    }
}

/// One outbound request. Cheap to clone (the body is shared), which retries rely on.
#[derive(Clone)]
pub struct OutboundRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: bool,
    timeout: Option<Duration>,
}

impl fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &Redactor.url(&self.url))
            .field("headers", &Redactor.headers(&self.headers))
            .field("body_bytes", &self.body.as_ref().map(Bytes::len))
            .field("idempotent", &self.is_idempotent())
            .finish()
    }
}

impl OutboundRequest {
    /// A request for `url`; fails if the URL does not parse.
    pub fn new(method: Method, url: &str) -> Result<Self, HttpError> {
        let url = Url::parse(url)
            .map_err(|e| HttpError::InvalidRequest(format!("invalid URL {}: {e}", Redactor.text(url))))?;
        Ok(Self::from_url(method, url))
    }

    pub fn from_url(method: Method, url: Url) -> Self {
        Self { method, url, headers: HeaderMap::new(), body: None, idempotent: false, timeout: None }
    }

    pub fn get(url: &str) -> Result<Self, HttpError> {
        Self::new(Method::GET, url)
    }

    pub fn post(url: &str) -> Result<Self, HttpError> {
        Self::new(Method::POST, url)
    }

    pub fn put(url: &str) -> Result<Self, HttpError> {
        Self::new(Method::PUT, url)
    }

    pub fn delete(url: &str) -> Result<Self, HttpError> {
        Self::new(Method::DELETE, url)
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Set a header (replacing earlier values of the same name).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Set a header from strings; fails on invalid names or values (e.g. with newlines).
    pub fn try_header(self, name: &str, value: &str) -> Result<Self, HttpError> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("invalid header name {name:?}")))?;
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidRequest(format!("invalid value for header {name}")))?;
        if Redactor::is_secret_header(&n) {
            v.set_sensitive(true);
        }
        Ok(self.header(n, v))
    }

    /// `Authorization: Bearer <token>` (marked sensitive).
    pub fn bearer_auth(self, token: &str) -> Result<Self, HttpError> {
        self.authorization(format!("Bearer {token}"))
    }

    /// `Authorization: Basic …` (marked sensitive).
    pub fn basic_auth(self, user: &str, password: Option<&str>) -> Result<Self, HttpError> {
        use base64::Engine as _;
        let raw = format!("{user}:{}", password.unwrap_or(""));
        self.authorization(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
    }

    fn authorization(self, value: String) -> Result<Self, HttpError> {
        let mut v = HeaderValue::from_str(&value)
            .map_err(|_| HttpError::InvalidRequest("invalid credentials for the Authorization header".into()))?;
        v.set_sensitive(true);
        Ok(self.header(AUTHORIZATION, v))
    }

    /// A JSON body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, HttpError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| HttpError::InvalidRequest(format!("cannot encode JSON body: {e}")))?;
        self.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Declare that repeating this request is harmless even though its method is not
    /// idempotent (e.g. a POST made idempotent by a key or a higher layer), so
    /// [`HttpClient::send_with_retry`] may retry it.
    pub fn mark_idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// GET, HEAD, PUT, DELETE, OPTIONS and TRACE are idempotent, or the caller said so.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
            || matches!(
                self.method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
            )
    }

    /// A per-request total timeout; it can only shorten the policy's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The final URL after redirects. May contain secrets: redact before logging.
    pub url: Url,
    pub body: Bytes,
}

impl HttpResponse {
    /// Decode the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Decode { url: Redactor.url(&self.url), message: e.to_string() })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `Retry-After` header as a delay from now.
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(&self.headers, SystemTime::now())
    }
}

/// The SSRF-safe HTTP client. Cheap to clone; build one per integration policy.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").field("policy", &self.policy).finish()
    }
}

impl HttpClient {
    /// A client resolving names with the system resolver.
    pub fn new(policy: OutboundPolicy) -> Result<Self, HttpError> {
        Self::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// A client resolving names with `lookup` (tests script answers with
    /// [`crate::ScriptedLookup`]).
    pub fn with_lookup(policy: OutboundPolicy, lookup: Arc<dyn Lookup>) -> Result<Self, HttpError> {
        policy.validate()?;
        if policy.allow_loopback_for_tests {
            tracing::warn!("outbound policy allows loopback destinations: this setting is for tests only");
        }
        let policy = Arc::new(policy);
        let resolver = VettingResolver::new(policy.clone(), lookup);
        let redirect_policy = {
            let policy = policy.clone();
            let max = policy.max_redirects;
            reqwest::redirect::Policy::custom(move |attempt| {
                // `previous` holds the initial URL plus each hop followed so far.
                if attempt.previous().len() > max {
                    return attempt.error(PolicyViolation::TooManyRedirects { max });
                }
                match policy.check_url(attempt.url()) {
                    Ok(()) => {
                        tracing::debug!(to = %Redactor.url(attempt.url()), status = %attempt.status(), "following redirect");
                        attempt.follow()
                    }
                    Err(v) => {
                        tracing::warn!(to = %Redactor.url(attempt.url()), violation = %v, "redirect refused by outbound policy");
                        attempt.error(v)
                    }
                }
            })
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::client_config())
            .dns_resolver(resolver)
            .redirect(redirect_policy)
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.total_timeout)
            .user_agent(policy.user_agent.clone())
            .referer(false);
        builder = match &policy.proxy {
            Some(p) => {
                builder.proxy(reqwest::Proxy::all(p.as_str()).map_err(|_| PolicyError::InvalidProxy(Redactor.text(p)))?)
            }
            None => builder.no_proxy(),
        };
        let inner = builder.build().map_err(|e| {
            HttpError::InvalidRequest(format!("cannot build HTTP client: {}", chain_message(&e.without_url())))
        })?;
        Ok(Self { inner, policy })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Send one request (no retries) and read the whole body, up to the size cap.
    /// Any status is returned as `Ok`; only transport failures and refusals are errors.
    pub async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, HttpError> {
        let shown = Redactor.url(&req.url);
        if let Err(v) = self.policy.check_url(&req.url) {
            tracing::warn!(method = %req.method, url = %shown, violation = %v, "outbound request refused");
            return Err(HttpError::Refused(v));
        }
        let started = Instant::now();
        let mut r = reqwest::Request::new(req.method.clone(), req.url.clone());
        *r.headers_mut() = req.headers;
        if let Some(body) = req.body {
            *r.body_mut() = Some(body.into());
        }
        if let Some(t) = req.timeout {
            *r.timeout_mut() = Some(t.min(self.policy.total_timeout));
        }
        let mut resp = match self.inner.execute(r).await {
            Ok(resp) => resp,
            Err(e) => {
                let err = map_reqwest_error(e, &req.url);
                tracing::debug!(method = %req.method, url = %shown, error = %err, "outbound request failed");
                return Err(err);
            }
        };
        // Defence in depth: the peer we actually talked to (unless a proxy sits between).
        if self.policy.proxy.is_none()
            && let Some(peer) = resp.remote_addr()
            && let Some(reason) = self.policy.vet_ip(peer.ip())
        {
            let host = resp.url().host_str().unwrap_or_default().to_owned();
            tracing::warn!(url = %shown, peer = %peer, reason, "connected peer is forbidden; dropping response");
            return Err(HttpError::Refused(PolicyViolation::ForbiddenAddress { host, addr: peer.ip(), reason }));
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let url = resp.url().clone();
        let limit = self.policy.max_response_bytes;
        let too_large = || HttpError::BodyTooLarge { url: Redactor.url(&url), limit };
        if resp.content_length().is_some_and(|n| n > limit) {
            tracing::warn!(url = %shown, limit, "response body announced over the size limit");
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        tracing::warn!(url = %shown, limit, "response body over the size limit; cut off");
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(map_reqwest_error(e, &url)),
            }
        }
        tracing::debug!(
            method = %req.method,
            url = %shown,
            status = status.as_u16(),
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "outbound request done"
        );
        Ok(HttpResponse { status, headers, url, body: body.freeze() })
    }

    /// [`HttpClient::send`] with retries: only if the request is idempotent (by method or
    /// [`OutboundRequest::mark_idempotent`]), on connection errors, timeouts, 5xx and 429,
    /// with exponential backoff and jitter, waiting for `Retry-After` when the server sends
    /// it. A `Retry-After` longer than `retry.max_retry_after` ends the retries and the
    /// response is returned, so the caller can defer. After the last attempt the last
    /// response (e.g. a 503) or error is returned.
    pub async fn send_with_retry(&self, req: OutboundRequest, retry: &RetryPolicy) -> Result<HttpResponse, HttpError> {
        let max_attempts = if req.is_idempotent() { retry.max_attempts.max(1) } else { 1 };
        let mut attempt = 1u32;
        loop {
            let result = self.send(req.clone()).await;
            let wait = match &result {
                Ok(resp) if is_retryable_status(resp.status) => match resp.retry_after() {
                    Some(d) if d > retry.max_retry_after => {
                        tracing::info!(
                            url = %Redactor.url(&req.url),
                            retry_after_s = d.as_secs(),
                            "server asks to retry later than this call may wait; giving up for now"
                        );
                        return result;
                    }
                    Some(d) => d,
                    None => retry.backoff_with_jitter(attempt + 1),
                },
                Ok(_) => return result,
                Err(e) if e.is_retryable() => retry.backoff_with_jitter(attempt + 1),
                Err(_) => return result,
            };
            if attempt >= max_attempts {
                return result;
            }
            let outcome = match &result {
                Ok(resp) => format!("status {}", resp.status.as_u16()),
                Err(e) => e.to_string(),
            };
            tracing::info!(
                url = %Redactor.url(&req.url),
                attempt,
                max_attempts,
                wait_ms = wait.as_millis() as u64,
                outcome = %outcome,
                "retrying outbound request"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Map a reqwest error, recovering policy refusals from the resolver or redirect policy.
fn map_reqwest_error(e: reqwest::Error, request_url: &Url) -> HttpError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(v) = s.downcast_ref::<PolicyViolation>() {
            return HttpError::Refused(v.clone());
        }
        if let Some(ResolveError::Refused(v)) = s.downcast_ref::<ResolveError>() {
            return HttpError::Refused(v.clone());
        }
        source = s.source();
    }
    let url = Redactor.url(e.url().unwrap_or(request_url));
    let is_timeout = e.is_timeout();
    let is_connect = e.is_connect();
    let is_decode = e.is_decode();
    let message = Redactor.text(&chain_message(&e.without_url()));
    if is_timeout {
        HttpError::Timeout { url }
    } else if is_connect {
        HttpError::Connect { url, message }
    } else if is_decode {
        HttpError::Decode { url, message }
    } else {
        HttpError::Transport { url, message }
    }
}

/// `outer: inner: innermost`, skipping repeats.
fn chain_message(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

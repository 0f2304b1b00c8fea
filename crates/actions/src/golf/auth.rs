//! cps.golf sign-in: OAuth password grant, a per-account token cache, and verification
//! of the access token's JWT against the course's JWKS.
//!
//! Who the golfer is (golfer id, account, e-mail) decides whose name a tee time is booked
//! under, so it is taken **only** from a token whose signature checked out (SPEC §6.4,
//! §8): RS256 only (HS256, `none` and everything else are refused before any key is
//! looked at), a `kid` is required, the JWKS is cached for an hour and refetched once
//! when a token names an unknown `kid` (key rotation), then the token is refused. `exp`
//! is enforced.
//!
//! Tokens are cached per (course, user name) and refreshed a margin before they expire.
//! Refreshing is single-flight: each cache entry is a `tokio` mutex held across the
//! refresh, so concurrent callers wait for the one refresh in flight and share its token.
//! A token the API refuses (401) is replaced at most once per rejection: the first caller
//! to report it refreshes, the others find the new token already there.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rez_http::header::HeaderValue;
use rez_http::{HttpClient, HttpError, OutboundRequest, Redactor, RetryPolicy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::courses::{Course, CourseError};
use super::model::{TokenErrorBody, TokenResponse};

/// Refresh a token this long before it expires.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// How long a JWKS is trusted before it is fetched again.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp`/`nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Smallest RSA modulus accepted from a JWKS.
pub const MIN_RSA_BITS: usize = 2048;
/// `expires_in` assumed when the token endpoint does not say.
const DEFAULT_EXPIRES_IN: u64 = 3600;

/// The golfer's cps.golf account, from the secret store; never from a request.
#[derive(Clone, Deserialize)]
pub struct GolfCredentials {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl GolfCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into(), client_id: None, client_secret: None }
    }
}

impl fmt::Debug for GolfCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GolfCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A bearer token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The token itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Who the golfer is, from the verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GolferIdentity {
    pub golfer_id: i64,
    pub acct: String,
    pub email: String,
}

/// A signed-in golfer at one course.
#[derive(Debug, Clone)]
pub struct GolfSession {
    pub token: AccessToken,
    pub identity: GolferIdentity,
    /// When the token stops being usable (the earlier of `expires_in` and `exp`).
    pub expires_at: Instant,
}

impl GolfSession {
    fn usable_for(&self, margin: Duration) -> bool {
        Instant::now() + margin < self.expires_at
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not accepted (RS256 only)")]
    Algorithm(String),
    #[error("the token header has no kid")]
    MissingKid,
    #[error("no key {0:?} in the course JWKS, even after refetching it")]
    UnknownKid(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("claim {0} is missing or invalid")]
    Claim(&'static str),
    #[error("{0}")]
    Other(String),
}

/// A sign-in failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("cps.golf refused the credentials: {0}")]
    InvalidCredentials(String),
    #[error("token endpoint answered {status}: {detail}")]
    TokenEndpoint { status: u16, detail: String },
    #[error("token request failed: {0}")]
    Http(HttpError),
    #[error("token endpoint answer unusable: {0}")]
    BadTokenResponse(String),
    #[error("access token rejected: {0}")]
    Rejected(JwtRejection),
    #[error("cannot load the course JWKS: {message}")]
    Jwks { message: String, transient: bool },
    #[error(transparent)]
    Course(#[from] CourseError),
}

impl AuthError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Http(e) => e.is_retryable(),
            AuthError::TokenEndpoint { status, .. } => *status >= 500 || *status == 429,
            AuthError::Jwks { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Token and JWKS settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub refresh_margin: Duration,
    pub jwks_ttl: Duration,
    pub leeway: Duration,
    /// `User-Agent` of the sign-in requests.
    pub user_agent: String,
    /// Retries of the JWKS GET.
    pub retry: RetryPolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            jwks_ttl: DEFAULT_JWKS_TTL,
            leeway: DEFAULT_LEEWAY,
            user_agent: super::client::DEFAULT_USER_AGENT.to_owned(),
            retry: RetryPolicy::default(),
        }
    }
}

fn short(detail: &str) -> String {
    let mut d = Redactor.text(detail.trim());
    if d.len() > 200 {
        let cut = (0..=200).rev().find(|&i| d.is_char_boundary(i)).unwrap_or(0);
        d.truncate(cut);
    }
    d
}

// ---- JWKS and JWT verification -------------------------------------------------------------

/// The verified content of an access token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub identity: GolferIdentity,
    /// `exp`, seconds since the epoch.
    pub expires_at_unix: u64,
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Instant,
}

type KeySlot = Arc<tokio::sync::Mutex<Option<KeySet>>>;

/// Verifies access tokens against course JWKS documents, caching each for `ttl`.
pub struct JwksCache {
    http: HttpClient,
    ttl: Duration,
    leeway: Duration,
    user_agent: String,
    retry: RetryPolicy,
    slots: Mutex<HashMap<String, KeySlot>>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache").field("ttl", &self.ttl).finish()
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
    #[serde(rename = "golferId")]
    golfer_id: Option<Value>,
    acct: Option<Value>,
    email: Option<String>,
}

fn b64url(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("bad base64url: {e}"))
}

/// Read the header of a compact JWS and insist on RS256 with a `kid`.
fn checked_kid(token: &str) -> Result<String, JwtRejection> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtRejection::Malformed("expected three dot-separated parts".into()));
    };
    let header: JwtHeader = serde_json::from_slice(&b64url(h).map_err(JwtRejection::Malformed)?)
        .map_err(|e| JwtRejection::Malformed(format!("bad header: {e}")))?;
    match header.alg.as_deref() {
        Some("RS256") => {}
        other => return Err(JwtRejection::Algorithm(other.unwrap_or("").to_owned())),
    }
    match header.kid {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(JwtRejection::MissingKid),
    }
}

/// RSA signing keys of a JWKS by kid; other keys (EC, encryption keys, other algorithms,
/// short moduli) are skipped.
fn parse_jwks(doc: Jwks) -> HashMap<String, DecodingKey> {
    let mut keys = HashMap::new();
    for k in doc.keys {
        let field = |name: &str| k.get(name).and_then(Value::as_str);
        if field("kty") != Some("RSA") || field("use").is_some_and(|u| u != "sig") {
            continue;
        }
        if field("alg").is_some_and(|a| a != "RS256") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else { continue };
        let Ok(modulus) = b64url(n) else { continue };
        let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
        if bits < MIN_RSA_BITS {
            tracing::warn!(kid, bits, "ignoring a JWKS key shorter than {MIN_RSA_BITS} bits");
            continue;
        }
        match DecodingKey::from_rsa_components(n, e) {
            Ok(key) => {
                keys.insert(kid.to_owned(), key);
            }
            Err(err) => tracing::warn!(kid, error = %err, "ignoring an unusable JWKS key"),
        }
    }
    keys
}

impl JwksCache {
    pub fn new(http: HttpClient, config: &AuthConfig) -> Self {
        Self {
            http,
            ttl: config.jwks_ttl,
            leeway: config.leeway,
            user_agent: config.user_agent.clone(),
            retry: config.retry.clone(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, url: &str) -> KeySlot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(url.to_owned()).or_default().clone()
    }

    async fn fetch(&self, course: &Course) -> Result<KeySet, AuthError> {
        let url = course.url(&course.paths.jwks)?;
        let req = OutboundRequest::from_url(rez_http::Method::GET, url)
            .try_header("accept", "application/json")
            .and_then(|r| r.try_header("user-agent", &self.user_agent))
            .map_err(|e| AuthError::Jwks { message: e.to_string(), transient: false })?;
        let resp = self
            .http
            .send_with_retry(req, &self.retry)
            .await
            .map_err(|e| AuthError::Jwks { transient: e.is_retryable(), message: e.to_string() })?;
        if !resp.status.is_success() {
            let status = resp.status.as_u16();
            return Err(AuthError::Jwks {
                message: format!("JWKS endpoint answered {status}"),
                transient: rez_http::is_retryable_status(resp.status),
            });
        }
        let doc: Jwks = resp.json().map_err(|e| AuthError::Jwks { message: e.to_string(), transient: false })?;
        let keys = parse_jwks(doc);
        tracing::info!(course = %course.id, keys = keys.len(), "fetched course JWKS");
        Ok(KeySet { keys, fetched: Instant::now() })
    }

    /// Verify `token` against `course`'s JWKS and return its identity claims.
    pub async fn verify(&self, course: &Course, token: &str) -> Result<VerifiedToken, AuthError> {
        let kid = checked_kid(token).map_err(AuthError::Rejected)?;
        let url = course.url(&course.paths.jwks)?;
        let slot = self.slot(url.as_str());
        let key = {
            let mut guard = slot.lock().await;
            let mut fetched_now = false;
            let stale = guard.as_ref().is_none_or(|s| s.fetched.elapsed() >= self.ttl);
            if stale {
                *guard = Some(self.fetch(course).await?);
                fetched_now = true;
            }
            let mut key = guard.as_ref().and_then(|s| s.keys.get(&kid)).cloned();
            if key.is_none() && !fetched_now {
                tracing::info!(course = %course.id, kid = %kid, "unknown kid; refetching the JWKS once");
                *guard = Some(self.fetch(course).await?);
                key = guard.as_ref().and_then(|s| s.keys.get(&kid)).cloned();
            }
            key.ok_or_else(|| AuthError::Rejected(JwtRejection::UnknownKid(kid.clone())))?
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // The audience of cps.golf tokens is not documented; the signature and issuer key
        // set already tie the token to this course.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            AuthError::Rejected(match e.kind() {
                ErrorKind::InvalidSignature => JwtRejection::BadSignature,
                ErrorKind::ExpiredSignature => JwtRejection::Expired,
                ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
                ErrorKind::InvalidAlgorithm => JwtRejection::Algorithm("?".into()),
                ErrorKind::MissingRequiredClaim(_) => JwtRejection::Claim("exp"),
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    JwtRejection::Malformed(e.to_string())
                }
                _ => JwtRejection::Other(e.to_string()),
            })
        })?;
        let claims = data.claims;
        let golfer_id = match &claims.golfer_id {
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or(AuthError::Rejected(JwtRejection::Claim("golferId")))?;
        let acct = match &claims.acct {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(AuthError::Rejected(JwtRejection::Claim("acct"))),
        };
        let email =
            claims.email.filter(|e| e.contains('@')).ok_or(AuthError::Rejected(JwtRejection::Claim("email")))?;
        Ok(VerifiedToken { identity: GolferIdentity { golfer_id, acct, email }, expires_at_unix: claims.exp })
    }
}

// ---- tokens ------------------------------------------------------------------------------------

type SessionSlot = Arc<tokio::sync::Mutex<Option<Arc<GolfSession>>>>;

/// Signs golfers in and keeps their tokens fresh.
pub struct TokenManager {
    http: HttpClient,
    config: AuthConfig,
    jwks: JwksCache,
    slots: Mutex<HashMap<(String, String), SessionSlot>>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager").field("config", &self.config).finish()
    }
}

impl TokenManager {
    pub fn new(http: HttpClient, config: AuthConfig) -> Self {
        let jwks = JwksCache::new(http.clone(), &config);
        Self { http, config, jwks, slots: Mutex::new(HashMap::new()) }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    fn slot(&self, course: &Course, creds: &GolfCredentials) -> SessionSlot {
        let key = (format!("{}|{}", course.id, course.origin), creds.username.clone());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// A usable session: the cached one while it has more than the refresh margin left,
    /// else a new sign-in (one at a time per course and account).
    pub async fn session(&self, course: &Course, creds: &GolfCredentials) -> Result<Arc<GolfSession>, AuthError> {
        let slot = self.slot(course, creds);
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref()
            && s.usable_for(self.config.refresh_margin)
        {
            return Ok(s.clone());
        }
        let fresh = Arc::new(self.sign_in(course, creds).await?);
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// The API refused `rejected` (401): replace it, unless another caller already has.
    pub async fn refresh_after_rejection(
        &self,
        course: &Course,
        creds: &GolfCredentials,
        rejected: &AccessToken,
    ) -> Result<Arc<GolfSession>, AuthError> {
        let slot = self.slot(course, creds);
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref()
            && s.token != *rejected
            && s.usable_for(self.config.refresh_margin)
        {
            return Ok(s.clone());
        }
        tracing::info!(course = %course.id, "access token refused by cps.golf; signing in again");
        let fresh = Arc::new(self.sign_in(course, creds).await?);
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drop `rejected` from the cache so the next call signs in again.
    pub async fn forget(&self, course: &Course, creds: &GolfCredentials, rejected: &AccessToken) {
        let slot = self.slot(course, creds);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|s| s.token == *rejected) {
            *guard = None;
        }
    }

    fn token_request(&self, course: &Course, creds: &GolfCredentials) -> Result<OutboundRequest, AuthError> {
        let url = course.url(&course.paths.token)?;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "password")
            .append_pair("username", &creds.username)
            .append_pair("password", &creds.password);
        // A public client names itself in the form (standard password grant): the
        // credentials' own client id if they have one, else the course web app's.
        let client_id = creds.client_id.as_deref().filter(|s| !s.is_empty()).unwrap_or(&course.client_id);
        form.append_pair("client_id", client_id);
        if let Some(secret) = creds.client_secret.as_deref().filter(|s| !s.is_empty()) {
            form.append_pair("client_secret", secret);
        }
        form.append_pair("scope", &course.scope);
        let bad = |e: HttpError| AuthError::BadTokenResponse(e.to_string());
        let req = OutboundRequest::from_url(rez_http::Method::POST, url)
            .header(rez_http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .body(form.finish())
            .try_header("accept", "application/json, text/plain, */*")
            .and_then(|r| r.try_header("accept-language", "en-US,en;q=0.9"))
            .and_then(|r| r.try_header("cache-control", "no-cache, no-store, must-revalidate"))
            .and_then(|r| r.try_header("client-id", &course.client_id))
            .and_then(|r| r.try_header("origin", course.origin.trim_end_matches('/')))
            .and_then(|r| r.try_header("user-agent", &self.config.user_agent))
            .map_err(bad)?;
        Ok(req)
    }

    async fn sign_in(&self, course: &Course, creds: &GolfCredentials) -> Result<GolfSession, AuthError> {
        let req = self.token_request(course, creds)?;
        // The password grant is sent once: no blind retries of a credential POST.
        let resp = self.http.send(req).await.map_err(AuthError::Http)?;
        let status = resp.status.as_u16();
        if !resp.status.is_success() {
            let body = resp.json::<TokenErrorBody>().ok();
            let detail = body
                .as_ref()
                .map(|b| {
                    [b.error.as_deref(), b.error_description.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| resp.text());
            let detail = short(&detail);
            tracing::warn!(course = %course.id, status, "cps.golf sign-in failed");
            let invalid_grant = body.as_ref().and_then(|b| b.error.as_deref()) == Some("invalid_grant");
            return Err(if invalid_grant || status == 401 {
                AuthError::InvalidCredentials(detail)
            } else {
                AuthError::TokenEndpoint { status, detail }
            });
        }
        let answer: TokenResponse = resp.json().map_err(|e| AuthError::BadTokenResponse(e.to_string()))?;
        let token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::BadTokenResponse("no access_token".into()))?;
        let verified = self.jwks.verify(course, &token).await?;
        let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let by_exp = verified.expires_at_unix.saturating_sub(now_unix);
        let lifetime = answer.expires_in.unwrap_or(DEFAULT_EXPIRES_IN).min(by_exp);
        tracing::info!(
            course = %course.id,
            golfer_id = verified.identity.golfer_id,
            lifetime_s = lifetime,
            "signed in to cps.golf"
        );
        Ok(GolfSession {
            token: AccessToken(token),
            identity: verified.identity,
            expires_at: Instant::now() + Duration::from_secs(lifetime),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn header_checks_come_first() {
        let tok = |h: Value| format!("{}.{}.sig", b64(&h), b64(&serde_json::json!({"exp": 1})));
        assert_eq!(checked_kid(&tok(serde_json::json!({"alg": "RS256", "kid": "k1"}))), Ok("k1".into()));
        for (h, want) in [
            (serde_json::json!({"alg": "HS256", "kid": "k1"}), JwtRejection::Algorithm("HS256".into())),
            (serde_json::json!({"alg": "none", "kid": "k1"}), JwtRejection::Algorithm("none".into())),
            (serde_json::json!({"alg": "RS512", "kid": "k1"}), JwtRejection::Algorithm("RS512".into())),
            (serde_json::json!({"kid": "k1"}), JwtRejection::Algorithm(String::new())),
            (serde_json::json!({"alg": "RS256"}), JwtRejection::MissingKid),
            (serde_json::json!({"alg": "RS256", "kid": ""}), JwtRejection::MissingKid),
        ] {
            assert_eq!(checked_kid(&tok(h.clone())), Err(want), "{h}");
        }
        assert!(matches!(checked_kid("a.b"), Err(JwtRejection::Malformed(_))));
        assert!(matches!(checked_kid("a.b.c.d"), Err(JwtRejection::Malformed(_))));
        assert!(matches!(checked_kid("!!.b.c"), Err(JwtRejection::Malformed(_))));
    }

    #[test]
    fn jwks_keeps_only_strong_rsa_signing_keys() {
        let n_2048 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let n_1024 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let doc = Jwks {
            keys: vec![
                serde_json::json!({"kty": "RSA", "use": "sig", "kid": "good", "alg": "RS256", "n": n_2048, "e": "AQAB"}),
                serde_json::json!({"kty": "RSA", "kid": "no-use", "n": n_2048, "e": "AQAB"}),
                serde_json::json!({"kty": "RSA", "use": "enc", "kid": "enc", "n": n_2048, "e": "AQAB"}),
                serde_json::json!({"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n_2048, "e": "AQAB"}),
                serde_json::json!({"kty": "RSA", "kid": "short", "n": n_1024, "e": "AQAB"}),
                serde_json::json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}),
                serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            ],
        };
        let mut kids: Vec<String> = parse_jwks(doc).into_keys().collect();
        kids.sort();
        assert_eq!(kids, ["good", "no-use"]);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = GolfCredentials {
            client_secret: Some("s3cr3t".into()),
            ..GolfCredentials::new("golfer@example.com", "hunter2")
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cr3t") && shown.contains("golfer@"), "{shown}");
        assert_eq!(format!("{:?}", AccessToken("eyJ.secret".into())), "AccessToken([REDACTED])");
    }
}

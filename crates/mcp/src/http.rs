//! MCP over Streamable HTTP at `/mcp`, mounted on the `rez serve` port, plus the RFC 9728
//! protected-resource metadata that tells a client how to authenticate.
//!
//! In front of rmcp's `StreamableHttpService` a guard does, in this order:
//! 1. DNS-rebinding protection: the `Host` (and any `Origin`) must name an allowed host,
//!    else `403`.
//! 2. Authentication: a bearer API key with scope `mcp` or broader; a missing or wrong
//!    key gets `401` with `WWW-Authenticate: Bearer resource_metadata="…"`, a key with
//!    too small a scope `403` with `error="insufficient_scope"`. The key goes no further
//!    than this check. `Auth::None` (loopback only, enforced by the binary) skips it.
//! 3. For POSTs, the JSON-RPC envelope: `415` for another content type, `413` for a body
//!    over the limit, `400` with a JSON-RPC `-32700`/`-32600` error for malformed JSON, a
//!    batch (removed from MCP in 2025-06-18) or a non-JSON-RPC object, and a `-32602`
//!    error for a known method with unusable params — so bad input never reaches rmcp
//!    as a `500` or a plain-text answer.
//!
//! Sessions: MCP 2025 clients expect an `Mcp-Session-Id`, and rmcp issues one, but no
//! correctness may depend on process memory. rez keeps nothing per session (every
//! request is authenticated on its own and the handler is stateless), so a session id
//! this process does not know — after a restart, or on another instance — is restored
//! on the spot by [`RestoreAnySession`] instead of answering `404`. The id a client
//! sees is bound to the key that opened it ([`crate::session`]): another key gets `404`
//! for it, with nothing stored. At most [`HttpConfig::max_sessions`] are held at once
//! (a new or restored one past it gets `503` with the reason; idle ones expire after
//! rmcp's 5 minutes). 2026-07-28 requests (per-request metadata, no session) take
//! rmcp's stateless path.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rez_core::auth::Scope;
use rez_runtime::keys::{AuthError, KeyVerifier};
use rez_runtime::tools::ToolRegistry;
use rmcp::model::{ClientCapabilities, ClientJsonRpcMessage, Implementation, InitializeRequestParams, ProtocolVersion};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::server::RezMcp;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 metadata for the resource `<origin>/mcp` (the path-inserted form).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// The root form some clients try first.
pub const METADATA_ROOT_PATH: &str = "/.well-known/oauth-protected-resource";
/// Largest accepted POST body (the API's limit, SQS's message size).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// How `/mcp` authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Bearer API keys with scope `mcp` or broader.
    Keys,
    /// No authentication (conformance runs on loopback only).
    None,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub auth: Auth,
    /// Host names (optionally `host:port`) the `Host` and `Origin` headers may name.
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    /// Cancelled on shutdown: closes open SSE streams so the server can stop.
    pub shutdown: CancellationToken,
    /// No sessions and plain JSON responses (a serverless function cannot hold an SSE
    /// stream open between invocations).
    pub stateless: bool,
    /// The most sessions held at once; past it, a new or restored session is refused
    /// with `503` and the reason.
    pub max_sessions: usize,
}

/// The default [`HttpConfig::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 100;

impl HttpConfig {
    pub fn new(auth: Auth, allowed_hosts: Vec<String>, shutdown: CancellationToken) -> Self {
        Self {
            auth,
            allowed_hosts,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown,
            stateless: false,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

/// The default allowed hosts: the loopback names, plus the bind address when it names one
/// interface (an unspecified address like `0.0.0.0` names none; set the hosts explicitly).
pub fn default_allowed_hosts(bind: SocketAddr) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let ip = bind.ip();
    if !ip.is_unspecified() && !hosts.contains(&ip.to_string()) {
        hosts.push(ip.to_string());
    }
    hosts
}

/// An answer that ends the request before rmcp (boxed: a `Response` is large).
type Refused = Box<Response>;

struct Guard {
    auth: Auth,
    keys: KeyVerifier,
    allowed: Vec<(String, Option<u16>)>,
    max_body_bytes: usize,
    /// `None` in stateless mode (no sessions).
    sessions: Option<Arc<LocalSessionManager>>,
    max_sessions: usize,
}

/// The session header of Streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";

/// `host` or `host:port` (IPv6 with or without brackets), lower-cased.
fn parse_authority(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some((ip.to_string(), None));
    }
    let a: axum::http::uri::Authority = raw.parse().ok()?;
    let host = a.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    Some((host, a.port_u16()))
}

impl Guard {
    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        self.allowed.iter().any(|(h, p)| h == host && p.is_none_or(|p| Some(p) == port))
    }

    /// DNS-rebinding protection: `Host` must be allowed; so must `Origin`, if sent.
    fn check_host_and_origin(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).and_then(parse_authority);
        match host {
            Some((h, p)) if self.host_allowed(&h, p) => {}
            Some((h, _)) => {
                tracing::warn!(host = %h, "MCP request refused: Host is not allowed (possible DNS rebinding)");
                return Err(Box::new(plain_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden: the Host header names a host this server does not serve (set REZ_MCP_ALLOWED_HOSTS)",
                )));
            }
            None => {
                return Err(Box::new(plain_error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: missing or malformed Host header",
                )));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let parsed = origin
                .to_str()
                .ok()
                .and_then(|o| o.parse::<axum::http::Uri>().ok())
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
                .and_then(|u| u.authority().and_then(|a| parse_authority(a.as_str())));
            match parsed {
                Some((h, p)) if self.host_allowed(&h, p) => {}
                _ => {
                    tracing::warn!("MCP request refused: Origin is not allowed");
                    return Err(Box::new(plain_error(
                        StatusCode::FORBIDDEN,
                        "Forbidden: this Origin may not use the MCP endpoint",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Check the key; returns what sessions are bound to (the key itself; nothing
    /// without authentication).
    async fn check_key(&self, req: &mut Request) -> Result<Vec<u8>, Refused> {
        if self.auth == Auth::None {
            return Ok(Vec::new());
        }
        let metadata = metadata_url(req.headers());
        let token = rez_runtime::keys::bearer_token(req.headers());
        let Some(token) = token else {
            return Err(Box::new(challenge(
                StatusCode::UNAUTHORIZED,
                format!("Bearer resource_metadata=\"{metadata}\""),
                "an API key is required: Authorization: Bearer <key> (create one with `rez keys create --scope mcp`)",
            )));
        };
        let principal = match self.keys.verify(token).await {
            Ok(p) => p,
            Err(AuthError::Store(e)) => {
                tracing::error!(error = %e, "MCP key check failed");
                return Err(Box::new(plain_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the key store is unavailable; retry",
                )));
            }
            Err(e) => {
                return Err(Box::new(challenge(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "Bearer error=\"invalid_token\", error_description=\"{e}\", resource_metadata=\"{metadata}\""
                    ),
                    &format!("{e}"),
                )));
            }
        };
        if !principal.scope.allows(Scope::Mcp) {
            return Err(Box::new(challenge(
                StatusCode::FORBIDDEN,
                format!("Bearer error=\"insufficient_scope\", scope=\"mcp\", resource_metadata=\"{metadata}\""),
                &format!("this key has scope `{}`; the MCP endpoint needs `mcp`, `write` or `admin`", principal.scope),
            )));
        }
        let binding = token.as_bytes().to_vec();
        // The key stops here: nothing behind the guard (rmcp keeps request parts) holds it.
        req.headers_mut().remove(header::AUTHORIZATION);
        req.extensions_mut().insert(principal);
        Ok(binding)
    }

    /// Replace the client's bound session id with rmcp's, if it was bound to `binding`;
    /// returns whether the request names a session this process does not hold (it will
    /// be restored). A session id bound to another key is answered like an unknown one.
    async fn unbind_session(&self, req: &mut Request, binding: &[u8]) -> Result<bool, Refused> {
        let Some(sessions) = &self.sessions else { return Ok(false) };
        let Some(outer) = req.headers().get(SESSION_HEADER) else { return Ok(false) };
        let inner = outer.to_str().ok().and_then(|o| crate::session::unbind(o, binding));
        let Some(inner) = inner.and_then(|i| HeaderValue::from_str(&i).ok().map(|v| (i, v))) else {
            return Err(Box::new(jsonrpc_error(
                StatusCode::NOT_FOUND,
                -32600,
                "Not Found: no such session for this key; send initialize to start a new one",
            )));
        };
        let known = sessions.sessions.read().await.contains_key(inner.0.as_str());
        req.headers_mut().insert(SESSION_HEADER, inner.1);
        Ok(!known)
    }

    /// Refuse a new (or restored) session past the cap.
    async fn check_session_room(&self) -> Result<(), Refused> {
        let Some(sessions) = &self.sessions else { return Ok(()) };
        let open = sessions.sessions.read().await.len();
        if open >= self.max_sessions {
            tracing::warn!(open, max = self.max_sessions, "MCP session refused: too many sessions");
            return Err(Box::new(jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                -32600,
                &format!(
                    "Service Unavailable: {open} MCP sessions are open, the most allowed (REZ_MCP_MAX_SESSIONS); close one (DELETE /mcp) or retry after idle sessions expire"
                ),
            )));
        }
        Ok(())
    }

    /// Give the client rmcp's new session id bound to its key.
    fn bind_session(&self, response: &mut Response, binding: &[u8]) {
        if self.sessions.is_none() {
            return;
        }
        let bound = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|inner| crate::session::bind(inner, binding))
            .and_then(|b| HeaderValue::from_str(&b).ok());
        if let Some(v) = bound {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
    }
}

/// The origin a client used to reach us, from `Host` (already checked against the allowed
/// hosts) and `X-Forwarded-Proto` (set by a TLS-terminating proxy).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

fn metadata_url(headers: &HeaderMap) -> String {
    format!("{}{METADATA_PATH}", base_url(headers))
}

/// A JSON-RPC error answer with no id (the request could not be read).
fn jsonrpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn plain_error(status: StatusCode, message: &str) -> Response {
    jsonrpc_error(status, -32600, message)
}

fn challenge(status: StatusCode, www_authenticate: String, message: &str) -> Response {
    let mut r = jsonrpc_error(status, -32600, message);
    if let Ok(v) = HeaderValue::from_str(&www_authenticate) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Check a POSTed JSON-RPC message before rmcp sees it; returns its method, if it has one.
fn check_envelope(bytes: &[u8]) -> Result<Option<String>, Refused> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Box::new(jsonrpc_error(StatusCode::BAD_REQUEST, -32700, &format!("Parse error: {e}"))))?;
    let obj = match &value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(Box::new(jsonrpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: JSON-RPC batches are not supported (removed from MCP in 2025-06-18); send one message per request",
            )));
        }
        _ => {
            return Err(Box::new(jsonrpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: expected a JSON-RPC object",
            )));
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid Request: `jsonrpc` must be \"2.0\"",
        )));
    }
    let id = obj.get("id");
    if let Some(id) = id
        && !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "Invalid Request: `id` must be a string or an integer",
        )));
    }
    match obj.get("method") {
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(Box::new(jsonrpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: `method` must be a string",
            )));
        }
        None => {
            // A response to a server request: an id and exactly one of result/error.
            if id.is_none() || obj.contains_key("result") == obj.contains_key("error") {
                return Err(Box::new(jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    -32600,
                    "Invalid Request: a message needs a `method` (request or notification) or an `id` with `result` or `error` (response)",
                )));
            }
        }
    }
    if let Err(e) = serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        let message = format!("Invalid params: {e}");
        return Err(Box::new(match id {
            // A request with unusable params gets its answer, with its id.
            Some(id) if obj.contains_key("method") => {
                let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": message}});
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
            }
            _ => jsonrpc_error(StatusCode::BAD_REQUEST, -32602, &message),
        }));
    }
    Ok(obj.get("method").and_then(Value::as_str).map(str::to_owned))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/json"))
}

async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    if let Err(r) = g.check_host_and_origin(req.headers()) {
        return *r;
    }
    let binding = match g.check_key(&mut req).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let restores = match g.unbind_session(&mut req, &binding).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if req.method() != Method::POST {
        if restores && let Err(r) = g.check_session_room().await {
            return *r;
        }
        let mut response = next.run(req).await;
        g.bind_session(&mut response, &binding);
        return response;
    }
    if !is_json(req.headers()) {
        return jsonrpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            -32600,
            "Unsupported Media Type: POST a JSON-RPC message with Content-Type: application/json",
        );
    }
    let too_large = || {
        jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            &format!("Payload Too Large: the body may be at most {} bytes", g.max_body_bytes),
        )
    };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > g.max_body_bytes as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match Limited::new(body, g.max_body_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(_) => return plain_error(StatusCode::BAD_REQUEST, "Bad Request: the body could not be read"),
    };
    let initialize = match check_envelope(&bytes) {
        Ok(method) => method.as_deref() == Some("initialize"),
        Err(r) => return *r,
    };
    let opens = restores || (initialize && !parts.headers.contains_key(SESSION_HEADER));
    if opens && let Err(r) = g.check_session_room().await {
        return *r;
    }
    let mut response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    g.bind_session(&mut response, &binding);
    response
}

/// RFC 9728 protected-resource metadata. Keys are issued out of band (`rez keys create`),
/// so no authorization server is named.
async fn resource_metadata(headers: HeaderMap) -> Response {
    let body = json!({
        "resource": format!("{}{MCP_PATH}", base_url(&headers)),
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp"],
        "resource_name": "rez_agent",
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "max-age=3600")],
        body.to_string(),
    )
        .into_response()
}

/// Restores any well-formed session id this process does not hold (see the module
/// docs): the replayed `initialize` carries the current handshake version and no client
/// capabilities, which is all a stateless handler needs.
struct RestoreAnySession;

#[async_trait::async_trait]
impl SessionStore for RestoreAnySession {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let well_formed = (1..=128).contains(&session_id.len())
            && session_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Ok(None);
        }
        let params = InitializeRequestParams::new(ClientCapabilities::default(), Implementation::new("restored", "0"))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
        Ok(Some(SessionState::new(params)))
    }

    async fn store(&self, _session_id: &str, _state: &SessionState) -> Result<(), SessionStoreError> {
        Ok(())
    }

    async fn delete(&self, _session_id: &str) -> Result<(), SessionStoreError> {
        Ok(())
    }
}

/// The MCP routes: `/mcp` behind the guard, and the metadata documents.
pub fn router(registry: ToolRegistry, config: HttpConfig) -> Router {
    let keys = registry.services().keys.clone();
    let allowed: Vec<(String, Option<u16>)> = config.allowed_hosts.iter().filter_map(|h| parse_authority(h)).collect();
    let server = RezMcp::new(registry);
    let mut rmcp_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(config.shutdown.clone());
    rmcp_config.session_store = Some(Arc::new(RestoreAnySession));
    if config.stateless {
        rmcp_config.legacy_session_mode = false;
        rmcp_config.json_response = true;
    }
    let sessions = Arc::new(LocalSessionManager::default());
    let service = StreamableHttpService::new(move || Ok(server.clone()), sessions.clone(), rmcp_config);
    let guard_state = Arc::new(Guard {
        auth: config.auth,
        keys,
        allowed,
        max_body_bytes: config.max_body_bytes,
        sessions: (!config.stateless).then_some(sessions),
        max_sessions: config.max_sessions,
    });
    let mcp = Router::new()
        .route_service(MCP_PATH, service)
        .layer(middleware::from_fn_with_state(guard_state, guard))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("an MCP request panicked");
            jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, -32603, "internal error")
        }));
    let metadata =
        Router::new().route(METADATA_PATH, get(resource_metadata)).route(METADATA_ROOT_PATH, get(resource_metadata));
    mcp.merge(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_parse_like_host_headers() {
        assert_eq!(parse_authority("LocalHost:8080"), Some(("localhost".into(), Some(8080))));
        assert_eq!(parse_authority("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(parse_authority("::1"), Some(("::1".into(), None)));
        assert_eq!(parse_authority("127.0.0.1"), Some(("127.0.0.1".into(), None)));
        assert_eq!(parse_authority(""), None);
        assert_eq!(parse_authority("a b"), None);
    }

    #[test]
    fn default_hosts_add_a_specific_bind_address() {
        let hosts = |a: &str| default_allowed_hosts(a.parse().unwrap());
        assert_eq!(hosts("127.0.0.1:8080"), ["localhost", "127.0.0.1", "::1"]);
        assert!(hosts("192.168.1.5:8080").contains(&"192.168.1.5".to_owned()));
        assert_eq!(hosts("0.0.0.0:8080").len(), 3);
    }

    #[test]
    fn envelopes_are_checked() {
        let code = |s: &str| match check_envelope(s.as_bytes()) {
            Ok(_) => 0,
            Err(r) => r.status().as_u16(),
        };
        assert_eq!(code("{"), 400);
        assert_eq!(code("[]"), 400);
        assert_eq!(code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), 400);
        assert_eq!(code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), 400);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#), 400);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), 400);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), 0);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"no/such/method"}"#), 0);
        assert_eq!(code(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), 0);
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), 0);
        // Known methods with unusable params parse as custom requests; the handler answers -32602.
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#), 0);
    }
}

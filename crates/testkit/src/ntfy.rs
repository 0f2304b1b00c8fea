//! A fake ntfy server on 127.0.0.1 for tests and demos.
//!
//! No real ntfy server can be installed where rez_agent is built and tested, so this fake
//! speaks ntfy's publish API closely enough for the ntfy client to be tested end to end:
//!
//! - `POST`/`PUT /<topic>` (or `/<topic>/<sequence id>`) with the message as the body and
//!   the options as headers (`Title`/`X-Title`/`t`, `Priority`/`X-Priority`/`p`,
//!   `Tags`/`X-Tags`/`ta`, `Click`/`X-Click`, `Markdown`/`X-Markdown`/`md`,
//!   `X-Sequence-ID`/`Sequence-ID`/`sid`) or query parameters;
//! - JSON publishing, `POST`/`PUT /` with `{"topic", "message", "title", "priority",
//!   "tags", "click", "markdown", "sequence_id"}`;
//! - answers `200` with ntfy's JSON message object (`id`, `time`, `expires`, `event`, …),
//!   and errors in ntfy's JSON error form (`{"code", "http", "error"}`).
//!
//! Sequence ids follow ntfy 2.16: 1–64 characters of `A–Z a–z 0–9 - _` (anything else is a
//! `400`, code 40049), and publishes to one topic with the same sequence id are one
//! notification on a phone, the latest replacing the earlier ones in place.
//! [`FakeNtfy::shown_on_phone`] counts what a subscribed phone would show.
//!
//! Faults are injectable (failures, throttling with `Retry-After`, delays, required
//! token). Only successful publishes are recorded as received; every request counts as
//! an attempt.

use crate::server::LoopbackServer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// How long ntfy.sh keeps a message; used for the `expires` field.
const CACHE_DURATION_SECS: u64 = 12 * 3600;

/// Which publish form a push used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishForm {
    /// `POST /<topic>` with the message as the body and options as headers/query.
    Plain,
    /// `POST /` with a JSON object.
    Json,
}

/// One successfully published notification, as the fake received it.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// The id the fake answered with.
    pub id: String,
    pub topic: String,
    pub message: String,
    pub title: Option<String>,
    /// 1–5 if the publisher set one.
    pub priority: Option<u8>,
    pub tags: Vec<String>,
    pub click: Option<String>,
    pub markdown: bool,
    /// Action buttons (JSON publishes), as sent: `{action, label, url, method?, clear?}`.
    pub actions: Vec<Value>,
    /// The sequence id the publisher set, if any.
    pub sequence_id: Option<String>,
    pub form: PublishForm,
    pub method: Method,
    /// All request headers, including `Authorization`.
    pub headers: HeaderMap,
    pub at: Instant,
}

impl ReceivedPush {
    /// The `Authorization` header, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
enum Auth {
    Token(String),
    Basic { user: String, password: String },
}

#[derive(Default)]
struct Inner {
    received: Vec<ReceivedPush>,
    attempts: usize,
    /// Queued one-shot faults, served in order.
    faults: VecDeque<Fault>,
    fail_always: Option<StatusCode>,
    /// Requests whose body contains the text are answered with the status.
    fail_matching: Option<(String, StatusCode)>,
    delay: Duration,
    auth: Option<Auth>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Status(StatusCode),
    Throttle { retry_after_secs: u64 },
}

struct Shared {
    inner: Mutex<Inner>,
    pushed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge the fake for the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle of a running fake ntfy server; the server stops when the handle is dropped.
pub struct FakeNtfy {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeNtfy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNtfy").field("addr", &self.server.addr()).finish()
    }
}

impl FakeNtfy {
    /// Start on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound (a broken test environment); see [`FakeNtfy::try_start`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("fake ntfy: cannot listen on 127.0.0.1: {e}"),
        }
    }

    pub async fn try_start() -> std::io::Result<Self> {
        let (listener, _) = LoopbackServer::bind().await?;
        let shared = Arc::new(Shared { inner: Mutex::new(Inner::default()), pushed: Notify::new() });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = LoopbackServer::serve(listener, app, "ntfy");
        Ok(Self { server, shared })
    }

    /// Base URL, without a trailing slash: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// `http://127.0.0.1:PORT/<topic>`, the form the ntfy client is configured with.
    pub fn topic_url(&self, topic: &str) -> String {
        format!("{}/{topic}", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Successful publishes, oldest first.
    pub fn received(&self) -> Vec<ReceivedPush> {
        self.shared.lock().received.clone()
    }

    /// Number of successful publishes.
    pub fn count(&self) -> usize {
        self.shared.lock().received.len()
    }

    /// The notifications a phone subscribed to every topic would show, in the order they
    /// first appeared: one per topic and sequence id (its latest publish, which replaced
    /// the earlier ones in place), and one per publish without a sequence id.
    pub fn on_phone(&self) -> Vec<ReceivedPush> {
        let received = self.received();
        let mut shown: Vec<ReceivedPush> = Vec::new();
        let mut slot_of: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        for push in received {
            match &push.sequence_id {
                None => shown.push(push),
                Some(sequence) => match slot_of.get(&(push.topic.clone(), sequence.clone())) {
                    Some(&slot) => shown[slot] = push,
                    None => {
                        slot_of.insert((push.topic.clone(), sequence.clone()), shown.len());
                        shown.push(push);
                    }
                },
            }
        }
        shown
    }

    /// How many notifications a phone would show: distinct sequence ids per topic, plus
    /// the publishes without one (see [`FakeNtfy::on_phone`]).
    pub fn shown_on_phone(&self) -> usize {
        self.on_phone().len()
    }

    /// Number of requests of any kind, failed, throttled and refused ones included.
    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Wait until at least `n` publishes were received; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.pushed.notified();
            tokio::pin!(notified);
            // Register before checking, so a push in between is not missed.
            notified.as_mut().enable();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() >= n;
            }
        }
    }

    /// Answer the next `n` requests with `status` (and ntfy's JSON error body).
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.shared.lock().faults.extend(std::iter::repeat_n(Fault::Status(status), n));
    }

    /// Answer the next `n` requests with `429 Too Many Requests` and `Retry-After`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        self.shared.lock().faults.extend(std::iter::repeat_n(Fault::Throttle { retry_after_secs }, n));
    }

    /// Answer every request with `status` until [`FakeNtfy::reset`].
    pub fn fail_always(&self, status: u16) {
        self.shared.lock().fail_always =
            Some(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    }

    /// Answer every request whose body contains `text` with `status` until
    /// [`FakeNtfy::reset`]; others are published. Lets one message of a batch fail
    /// deterministically while its neighbours succeed.
    pub fn fail_when_body_contains(&self, text: &str, status: u16) {
        self.shared.lock().fail_matching =
            Some((text.to_owned(), StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)));
    }

    /// Delay every answer by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Require `Authorization: Bearer <token>` (or basic auth with `token` as the password,
    /// as ntfy accepts). Like ntfy: no credentials → 403, wrong credentials → 401.
    pub fn require_token(&self, token: &str) {
        self.shared.lock().auth = Some(Auth::Token(token.to_owned()));
    }

    /// Require basic auth with `user` and `password`.
    pub fn require_basic(&self, user: &str, password: &str) {
        self.shared.lock().auth = Some(Auth::Basic { user: user.to_owned(), password: password.to_owned() });
    }

    /// Forget everything: received pushes, attempts, faults, delay and auth requirement.
    pub fn reset(&self) {
        *self.shared.lock() = Inner::default();
    }
}

/// What to do with one request, decided under the lock.
enum Decision {
    Refuse(Response),
    Publish,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (decision, delay) = {
        let mut inner = shared.lock();
        inner.attempts += 1;
        let decision = match check_auth(inner.auth.as_ref(), &headers) {
            Err((status, message)) => Decision::Refuse(ntfy_error(status, message)),
            Ok(()) => match inner.fail_always.or_else(|| {
                inner
                    .fail_matching
                    .as_ref()
                    .filter(|(text, _)| body.windows(text.len().max(1)).any(|w| w == text.as_bytes()))
                    .map(|(_, status)| *status)
            }) {
                Some(status) => Decision::Refuse(ntfy_error(status, "injected failure")),
                None => match inner.faults.pop_front() {
                    Some(Fault::Status(status)) => Decision::Refuse(ntfy_error(status, "injected failure")),
                    Some(Fault::Throttle { retry_after_secs }) => {
                        let mut resp = ntfy_error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "limit reached: too many requests, please be nice",
                        );
                        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                        Decision::Refuse(resp)
                    }
                    None => Decision::Publish,
                },
            },
        };
        (decision, inner.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Decision::Refuse(resp) = decision {
        return resp;
    }
    if method != Method::POST && method != Method::PUT {
        return ntfy_error(StatusCode::NOT_FOUND, "page not found");
    }
    let parsed = if uri.path() == "/" { parse_json(&body) } else { parse_plain(&uri, &headers, &body) };
    let mut push = match parsed {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    push.id = random_id();
    push.method = method;
    push.headers = headers;
    let response = message_json(&push);
    shared.lock().received.push(push);
    shared.pushed.notify_waiters();
    (StatusCode::OK, axum::Json(response)).into_response()
}

fn check_auth(required: Option<&Auth>, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let Some(required) = required else {
        return Ok(());
    };
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err((StatusCode::FORBIDDEN, "forbidden"));
    };
    let basic = given
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let ok = match required {
        Auth::Token(token) => {
            given.strip_prefix("Bearer ").is_some_and(|t| t.trim() == token)
                || basic.as_deref().and_then(|b| b.split_once(':')).is_some_and(|(_, p)| p == token)
        }
        Auth::Basic { user, password } => {
            basic.as_deref().and_then(|b| b.split_once(':')).is_some_and(|(u, p)| u == user && p == password)
        }
    };
    if ok { Ok(()) } else { Err((StatusCode::UNAUTHORIZED, "unauthorized")) }
}

/// ntfy's error body: `{"code": 42901, "http": 429, "error": "..."}`.
fn ntfy_error(status: StatusCode, message: &str) -> Response {
    let code = u32::from(status.as_u16()) * 100 + 1;
    ntfy_error_code(status, code, message)
}

fn ntfy_error_code(status: StatusCode, code: u32, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "http": status.as_u16(), "error": message}))).into_response()
}

/// Why a publish is refused: its status, ntfy's error code and text.
struct Refusal {
    status: StatusCode,
    code: u32,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, code: u32::from(status.as_u16()) * 100 + 1, message: message.into() }
    }

    fn into_response(self) -> Response {
        ntfy_error_code(self.status, self.code, &self.message)
    }
}

type ParseResult = Result<ReceivedPush, Refusal>;

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, message)
}

fn valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// ntfy's sequence id rule: `^[-_A-Za-z0-9]{1,64}$` (the same as a topic's).
fn valid_sequence_id(s: &str) -> bool {
    valid_topic(s)
}

/// An empty sequence id is none (ntfy then uses the message's own id); a value outside
/// ntfy's rule refuses the publish.
fn checked_sequence_id(raw: Option<String>) -> Result<Option<String>, Refusal> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if valid_sequence_id(&s) => Ok(Some(s)),
        Some(_) => Err(Refusal { code: 40049, ..bad_request("invalid request: sequence ID invalid") }),
    }
}

fn blank(topic: String, message: String, form: PublishForm) -> ReceivedPush {
    ReceivedPush {
        id: String::new(),
        topic,
        message,
        title: None,
        priority: None,
        tags: Vec::new(),
        click: None,
        markdown: false,
        actions: Vec::new(),
        sequence_id: None,
        form,
        method: Method::POST,
        headers: HeaderMap::new(),
        at: Instant::now(),
    }
}

#[derive(Deserialize)]
struct JsonPublish {
    topic: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    priority: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    click: Option<String>,
    #[serde(default)]
    markdown: Option<bool>,
    #[serde(default)]
    actions: Option<Vec<Value>>,
    #[serde(default)]
    sequence_id: Option<String>,
}

fn parse_json(body: &[u8]) -> ParseResult {
    let p: JsonPublish =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request: body must be JSON: {e}")))?;
    let topic = p.topic.filter(|t| valid_topic(t)).ok_or_else(|| bad_request("invalid request: topic invalid"))?;
    let mut push =
        blank(topic, p.message.filter(|m| !m.is_empty()).unwrap_or_else(|| "triggered".into()), PublishForm::Json);
    push.title = p.title.filter(|t| !t.is_empty());
    push.priority = match p.priority {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(v @ 1..=5) => Some(v as u8),
            _ => return Err(bad_request("invalid priority")),
        },
        Some(Value::String(s)) => Some(priority_from_str(&s)?),
        Some(_) => return Err(bad_request("invalid priority")),
    };
    push.tags = p.tags.unwrap_or_default();
    push.click = p.click.filter(|c| !c.is_empty());
    push.markdown = p.markdown.unwrap_or(false);
    let actions = p.actions.unwrap_or_default();
    // ntfy's own rule: at most 3 actions, each with an action type, a label and a URL.
    if actions.len() > 3
        || actions.iter().any(|a| {
            !matches!(a["action"].as_str(), Some("view" | "http" | "broadcast"))
                || a["label"].as_str().is_none_or(str::is_empty)
                || (a["action"] != "broadcast" && a["url"].as_str().is_none_or(str::is_empty))
        })
    {
        return Err(bad_request("invalid request: actions invalid"));
    }
    push.actions = actions;
    push.sequence_id = checked_sequence_id(p.sequence_id)?;
    Ok(push)
}

fn parse_plain(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> ParseResult {
    let path = uri.path().trim_start_matches('/');
    // `/<topic>/<sequence id>` publishes with that sequence id.
    let (topic, path_sequence) = match path.split_once('/') {
        Some((topic, sequence)) => (topic, Some(sequence.to_owned())),
        None => (path, None),
    };
    if !valid_topic(topic) {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "page not found"));
    }
    let query: Vec<(String, String)> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    // ntfy reads each option from the first of these headers, then query parameters.
    let param = |names: &[&str]| -> Option<String> {
        names
            .iter()
            .find_map(|n| headers.get(*n).map(|v| decode_header(v.as_bytes())))
            .or_else(|| {
                names.iter().find_map(|n| query.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone()))
            })
            .filter(|v| !v.is_empty())
    };
    let message = String::from_utf8_lossy(body).into_owned();
    let message = if message.is_empty() {
        param(&["x-message", "message", "m"]).unwrap_or_else(|| "triggered".into())
    } else {
        message
    };
    let mut push = blank(topic.to_owned(), message, PublishForm::Plain);
    push.title = param(&["x-title", "title", "ti", "t"]);
    push.priority = match param(&["x-priority", "priority", "prio", "p"]) {
        None => None,
        Some(p) => Some(priority_from_str(&p)?),
    };
    push.tags = param(&["x-tags", "tags", "tag", "ta"])
        .map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    push.click = param(&["x-click", "click"]);
    let content_type_md =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("text/markdown"));
    push.markdown = content_type_md
        || param(&["x-markdown", "markdown", "md"])
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true"));
    push.sequence_id = checked_sequence_id(path_sequence.or_else(|| param(&["x-sequence-id", "sequence-id", "sid"])))?;
    Ok(push)
}

fn priority_from_str(s: &str) -> Result<u8, Refusal> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "min" => Ok(1),
        "2" | "low" => Ok(2),
        "3" | "default" => Ok(3),
        "4" | "high" => Ok(4),
        "5" | "max" | "urgent" => Ok(5),
        _ => Err(bad_request("invalid priority")),
    }
}

/// Header values are raw bytes; ntfy also accepts RFC 2047 `=?UTF-8?B?…?=` for non-ASCII.
fn decode_header(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw).trim().to_owned();
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("=?utf-8?b?") && s.ends_with("?=") {
        let inner = &s[10..s.len() - 2];
        if let Some(decoded) =
            base64::engine::general_purpose::STANDARD.decode(inner).ok().and_then(|b| String::from_utf8(b).ok())
        {
            return decoded;
        }
    }
    s
}

fn random_id() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(12).map(char::from).collect()
}

/// ntfy's message object, as returned by a publish.
fn message_json(p: &ReceivedPush) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut m = json!({
        "id": p.id,
        "time": now,
        "expires": now + CACHE_DURATION_SECS,
        "event": "message",
        "topic": p.topic,
        "message": p.message,
    });
    if let Some(obj) = m.as_object_mut() {
        if let Some(t) = &p.title {
            obj.insert("title".into(), json!(t));
        }
        if let Some(pr) = p.priority {
            obj.insert("priority".into(), json!(pr));
        }
        if !p.tags.is_empty() {
            obj.insert("tags".into(), json!(p.tags));
        }
        if let Some(c) = &p.click {
            obj.insert("click".into(), json!(c));
        }
        if p.markdown {
            obj.insert("content_type".into(), json!("text/markdown"));
        }
        if let Some(sequence) = &p.sequence_id {
            obj.insert("sequence_id".into(), json!(sequence));
        }
    }
    m
}

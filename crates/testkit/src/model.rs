//! A fake model provider on 127.0.0.1 speaking three wire formats: Anthropic Messages
//! (`POST /v1/messages`), OpenAI-compatible Chat Completions (`POST /v1/chat/completions`,
//! also without the `/v1`) and Bedrock Converse (`POST /model/{modelId}/converse`; the AWS
//! SDK is pointed at it as a custom endpoint and any SigV4 signature is accepted).
//!
//! It is driven by a script of [`FakeTurn`]s, one per request: an answer (text, tool
//! calls, malformed tool arguments, an unknown tool name, a chosen stop reason and usage)
//! or a fault (429 with `retry-after`, overloaded, 500, a hang, 401, 404, a 200 that is
//! an HTML page). When the script
//! is empty a responder closure decides ([`FakeModel::respond_with`], for many concurrent
//! conversations), else a default answer (`done`).
//!
//! Every request is recorded in the provider-neutral shape of `rez-core`
//! ([`SeenRequest`]), and every conversation is checked as the real providers check it:
//! each tool_result must answer a tool_use of the assistant message just before it, and
//! no tool_use may be left unanswered. Breaches are recorded as [`Violation`]s (the real
//! API would refuse such a request with a 400; the fake does too).

mod anthropic;
mod bedrock;
mod openai;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rez_core::agent::model::{ChatMessage, ContentBlock, Role, StopReason, ToolDefinition, Usage};
use serde_json::Value;
use tokio::sync::Notify;

use crate::server::LoopbackServer;

/// Which wire format a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    Anthropic,
    OpenAi,
    Bedrock,
}

/// One request as the fake understood it, in the provider-neutral shape.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// 0 for the first request the fake received, counting every request it could parse.
    pub index: usize,
    pub format: WireFormat,
    pub path: String,
    pub model: String,
    /// The system prompt (text blocks or system messages joined by blank lines).
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    /// `max_tokens` (Anthropic, OpenAI), `max_completion_tokens` (OpenAI) or
    /// `inferenceConfig.maxTokens` (Bedrock).
    pub max_tokens: Option<u32>,
    /// The credential sent: `x-api-key` (Anthropic), the Bearer token (OpenAI), the whole
    /// SigV4 `Authorization` header (Bedrock).
    pub credential: Option<String>,
    pub headers: HeaderMap,
    /// The request body as received.
    pub body: Value,
}

impl SeenRequest {
    /// Names of the tools offered.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }

    /// The text of the last user message.
    pub fn last_user_text(&self) -> String {
        self.messages.iter().rev().find(|m| m.role == Role::User).map(ChatMessage::text).unwrap_or_default()
    }

    /// The tool results of the last message: `(tool_use_id, content, is_error)`.
    pub fn last_tool_results(&self) -> Vec<(&str, &str, bool)> {
        self.messages
            .last()
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                            Some((tool_use_id.as_str(), content.as_str(), *is_error))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A rough input token count: the neutral request's bytes / 4 (never more than
    /// `ModelRequest::size_bytes`, which budgets reserve against).
    fn estimated_input_tokens(&self) -> u64 {
        let messages = serde_json::to_vec(&self.messages).map_or(0, |v| v.len());
        let tools = serde_json::to_vec(&self.tools).map_or(0, |v| v.len());
        ((self.system.len() + messages + tools) / 4).max(1) as u64
    }
}

/// A breach of the tool-use protocol (or an unreadable request) the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// [`SeenRequest::index`] of the offending request (`None`: it could not be parsed).
    pub request: Option<usize>,
    pub message: String,
}

/// The id of a scripted tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCallId {
    /// The fake mints one in the provider's style (`toolu_…`, `call_…`, `tooluse_…`).
    Generated,
    Given(String),
    /// Sent without an id (some OpenAI-compatible servers do this).
    Omitted,
}

/// The arguments of a scripted tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeArguments {
    Json(Value),
    /// Sent verbatim as the arguments string (OpenAI) or as a JSON string input
    /// (Anthropic, Bedrock): a malformed call.
    Raw(String),
}

/// One tool call the fake model asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    pub id: FakeCallId,
    pub name: String,
    pub arguments: FakeArguments,
}

/// An answer of the fake model.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeReply {
    pub text: Option<String>,
    pub tool_calls: Vec<FakeToolCall>,
    /// Default: `tool_use` when there are tool calls, else `end_turn`.
    pub stop_reason: Option<StopReason>,
    /// Default: the request's bytes / 4 in, the answer's bytes / 4 out.
    pub usage: Option<Usage>,
}

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeTurn {
    Reply(FakeReply),
    /// 429 with `retry-after: <secs>` (Anthropic also gets `retry-after-ms`).
    RateLimited {
        retry_after_secs: u64,
    },
    /// Anthropic 529 `overloaded_error`; OpenAI 503; Bedrock 503 `ServiceUnavailableException`.
    Overloaded,
    /// 500 in the provider's error shape.
    ServerError,
    /// Never answers (until the fake is dropped).
    Hang,
    /// `200 OK` with an HTML page instead of the answer, as a captive proxy or a
    /// misrouted load balancer sends.
    Garbled,
    /// 401 in the provider's error shape, whatever key was sent.
    Unauthorized,
    /// 404, the model does not exist.
    ModelNotFound,
}

impl FakeTurn {
    /// A final text answer (`end_turn`).
    pub fn text(text: impl Into<String>) -> Self {
        FakeTurn::Reply(FakeReply { text: Some(text.into()), tool_calls: Vec::new(), stop_reason: None, usage: None })
    }

    /// One tool call with a generated id.
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Self::tool_calls(vec![FakeToolCall {
            id: FakeCallId::Generated,
            name: name.into(),
            arguments: FakeArguments::Json(input),
        }])
    }

    /// Several tool calls in one turn (`tool_use`).
    pub fn tool_calls(calls: Vec<FakeToolCall>) -> Self {
        FakeTurn::Reply(FakeReply { text: None, tool_calls: calls, stop_reason: None, usage: None })
    }

    /// A tool call whose arguments are the raw string `raw` (e.g. not JSON).
    pub fn malformed_tool_call(name: impl Into<String>, raw: impl Into<String>) -> Self {
        Self::tool_calls(vec![FakeToolCall {
            id: FakeCallId::Generated,
            name: name.into(),
            arguments: FakeArguments::Raw(raw.into()),
        }])
    }

    /// A 429 asking to retry after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        FakeTurn::RateLimited { retry_after_secs: secs }
    }

    /// This answer with a text part too (before the tool calls).
    pub fn with_text(self, text: impl Into<String>) -> Self {
        self.map_reply(|r| r.text = Some(text.into()))
    }

    /// This answer with the given stop reason.
    pub fn with_stop(self, stop: StopReason) -> Self {
        self.map_reply(|r| r.stop_reason = Some(stop))
    }

    /// This answer reporting `usage`.
    pub fn with_usage(self, usage: Usage) -> Self {
        self.map_reply(|r| r.usage = Some(usage))
    }

    /// This answer's first tool call with the id `id` (or none at all with [`FakeCallId::Omitted`]).
    pub fn with_call_id(self, id: FakeCallId) -> Self {
        self.map_reply(|r| {
            if let Some(c) = r.tool_calls.first_mut() {
                c.id = id;
            }
        })
    }

    fn map_reply(mut self, f: impl FnOnce(&mut FakeReply)) -> Self {
        if let FakeTurn::Reply(r) = &mut self {
            f(r);
        }
        self
    }
}

/// Decides a turn from the request when the script is empty.
type Responder = Arc<dyn Fn(&SeenRequest) -> FakeTurn + Send + Sync>;

/// A reply with everything decided, ready to be written in a wire format.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedReply {
    pub(crate) text: Option<String>,
    pub(crate) calls: Vec<ResolvedCall>,
    pub(crate) stop: StopReason,
    pub(crate) usage: Usage,
    pub(crate) model: String,
    pub(crate) serial: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct ResolvedCall {
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) arguments: FakeArguments,
}

/// What a format-specific parser hands back.
pub(crate) struct ParsedRequest {
    pub(crate) model: String,
    pub(crate) system: String,
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) tools: Vec<ToolDefinition>,
    pub(crate) max_tokens: Option<u32>,
}

/// A fault the format renders in its own error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    RateLimited {
        retry_after_secs: u64,
    },
    Overloaded,
    ServerError,
    Unauthorized,
    ModelNotFound,
    BadRequest,
    /// OpenAI's reasoning models: `max_tokens` is not supported, use `max_completion_tokens`.
    MaxTokensUnsupported,
}

struct Inner {
    script: VecDeque<FakeTurn>,
    responder: Option<Responder>,
    default_turn: FakeTurn,
    expected_key: Option<String>,
    requests: Vec<SeenRequest>,
    /// Per request index: whether it was answered with a reply (not a fault).
    answered: Vec<bool>,
    violations: Vec<Violation>,
    attempts: usize,
    serial: u64,
    latency: Duration,
    /// OpenAI format: refuse `max_tokens` as OpenAI's reasoning models do.
    refuse_max_tokens: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Set when the handle is dropped; releases hanging requests.
    closed: AtomicBool,
    closing: Notify,
    /// Woken on every recorded request.
    recorded: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge the fake for the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle of a running fake model server; it stops when the handle is dropped.
pub struct FakeModel {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModel").field("addr", &self.server.addr()).finish()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.closing.notify_waiters();
    }
}

impl FakeModel {
    /// Start on an ephemeral port of 127.0.0.1.
    ///
    /// # Panics
    /// If 127.0.0.1 cannot be bound (a broken test environment); see [`FakeModel::try_start`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("fake model: cannot listen on 127.0.0.1: {e}"),
        }
    }

    pub async fn try_start() -> std::io::Result<Self> {
        let (listener, _) = LoopbackServer::bind().await?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                script: VecDeque::new(),
                responder: None,
                default_turn: FakeTurn::text("done"),
                expected_key: None,
                requests: Vec::new(),
                answered: Vec::new(),
                violations: Vec::new(),
                attempts: 0,
                serial: 0,
                latency: Duration::ZERO,
                refuse_max_tokens: false,
            }),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
            recorded: Notify::new(),
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic_route))
            .route("/v1/chat/completions", post(openai_route))
            .route("/chat/completions", post(openai_route))
            .route("/model/{model_id}/converse", post(bedrock_route))
            .fallback(not_found)
            .with_state(shared.clone());
        let server = LoopbackServer::serve(listener, app, "model");
        Ok(Self { server, shared })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The base URL an Anthropic client is configured with (it appends `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        self.url()
    }

    /// The base URL an OpenAI-compatible client is configured with (it appends
    /// `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// The endpoint URL the Bedrock Runtime SDK is pointed at.
    pub fn bedrock_endpoint(&self) -> String {
        self.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Queue one turn after those already scripted.
    pub fn push(&self, turn: FakeTurn) {
        self.shared.lock().script.push_back(turn);
    }

    /// Queue these turns after those already scripted.
    pub fn script(&self, turns: impl IntoIterator<Item = FakeTurn>) {
        self.shared.lock().script.extend(turns);
    }

    /// Turns scripted and not yet served.
    pub fn pending_turns(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// When the script is empty, let `responder` decide each turn from the request (many
    /// concurrent conversations each get their own answers).
    pub fn respond_with(&self, responder: impl Fn(&SeenRequest) -> FakeTurn + Send + Sync + 'static) {
        self.shared.lock().responder = Some(Arc::new(responder));
    }

    /// The turn served when the script is empty and there is no responder (`done`).
    pub fn set_default_turn(&self, turn: FakeTurn) {
        self.shared.lock().default_turn = turn;
    }

    /// Require this API key (`x-api-key` for Anthropic, `Authorization: Bearer` for
    /// OpenAI); any other key, or none, gets the provider's 401. Bedrock requests are
    /// SigV4-signed and accepted with any signature.
    pub fn expect_key(&self, key: &str) {
        self.shared.lock().expected_key = Some(key.to_owned());
    }

    /// Answer OpenAI-format requests that carry `max_tokens` with OpenAI's 400
    /// "Unsupported parameter: 'max_tokens' … Use 'max_completion_tokens' instead", as its
    /// reasoning models do.
    pub fn refuse_max_tokens(&self) {
        self.shared.lock().refuse_max_tokens = true;
    }

    /// Delay every answer (faults included) by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Every request the fake could parse, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().requests.clone()
    }

    /// Wait until at least `n` requests were recorded; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let recorded = self.shared.recorded.notified();
            tokio::pin!(recorded);
            // Register before checking, so a request in between is not missed.
            recorded.as_mut().enable();
            if self.shared.lock().requests.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                return self.shared.lock().requests.len() >= n;
            }
        }
    }

    /// Number of requests of any kind, unreadable and refused ones included.
    pub fn attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Protocol breaches seen so far (tool_result ids that answer nothing, unanswered
    /// tool_use ids, unreadable requests).
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// Pairs of requests (earlier, later index) that carried the very same conversation
    /// (format, model, messages): a step asked twice. The system prompt is left out of
    /// the comparison, since it may carry the current time and a resumed step must not
    /// escape notice by it. Requests answered with a fault are expected to be repeated,
    /// so only a request answered with a reply counts as the earlier one. Conversations of
    /// different runs that happen to be identical count too: give them distinct prompts.
    pub fn repeated_requests(&self) -> Vec<(usize, usize)> {
        let inner = self.shared.lock();
        let mut first_answered: HashMap<String, usize> = HashMap::new();
        let mut repeats = Vec::new();
        for r in &inner.requests {
            let key = conversation_key(r);
            if let Some(&earlier) = first_answered.get(&key) {
                repeats.push((earlier, r.index));
            } else if inner.answered.get(r.index).copied().unwrap_or(false) {
                first_answered.insert(key, r.index);
            }
        }
        repeats
    }
}

fn conversation_key(r: &SeenRequest) -> String {
    format!("{:?}\u{0}{}\u{0}{}", r.format, r.model, serde_json::to_string(&r.messages).unwrap_or_default())
}

/// The tool-use protocol every provider enforces, checked on the neutral conversation:
/// the conversation starts with a user message; each tool_result answers a tool_use of
/// the assistant message right before it, once; every tool_use of an assistant message is
/// answered in the next message.
pub(crate) fn check_conversation(messages: &[ChatMessage]) -> Vec<String> {
    let mut problems = Vec::new();
    match messages.first() {
        None => problems.push("the conversation has no messages".to_owned()),
        Some(m) if m.role != Role::User => problems.push("the conversation does not start with a user message".into()),
        Some(_) => {}
    }
    let mut asked: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let results: Vec<&str> = m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id.as_str()),
                _ => None,
            })
            .collect();
        if m.role == Role::Assistant && !results.is_empty() {
            problems.push(format!("message {i}: an assistant message carries tool results"));
        }
        for id in &results {
            if !asked.iter().any(|a| a == id) {
                problems.push(format!("message {i}: tool_result {id:?} answers no tool_use of the message before it"));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for id in &results {
            if seen.contains(id) {
                problems.push(format!("message {i}: tool_use {id:?} answered twice"));
            }
            seen.push(id);
        }
        for id in &asked {
            if !results.contains(&id.as_str()) {
                problems.push(format!("message {i}: tool_use {id:?} of the message before it is not answered"));
            }
        }
        asked = if m.role == Role::Assistant {
            m.content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
    }
    // A last assistant message is a prefill the providers accept, but not with tool calls.
    if !asked.is_empty() {
        problems.push(format!("tool_use {asked:?} of the last message is not answered"));
    }
    problems
}

/// What the handler decided under the lock.
enum Plan {
    Reply(ResolvedReply),
    Fault(Fault),
    Hang,
    Garbled,
}

/// The format-independent part of serving one request.
async fn serve(
    shared: &Shared,
    format: WireFormat,
    path: String,
    headers: HeaderMap,
    body: &Bytes,
    model_in_path: Option<String>,
) -> Response {
    let (plan, latency) = plan(shared, format, path, headers, body, model_in_path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match plan {
        Plan::Reply(reply) => match format {
            WireFormat::Anthropic => anthropic::reply(&reply),
            WireFormat::OpenAi => openai::reply(&reply),
            WireFormat::Bedrock => bedrock::reply(&reply),
        },
        Plan::Fault(fault) => match format {
            WireFormat::Anthropic => anthropic::fault(fault),
            WireFormat::OpenAi => openai::fault(fault),
            WireFormat::Bedrock => bedrock::fault(fault),
        },
        Plan::Garbled => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body>Service temporarily unavailable</body></html>",
        )
            .into_response(),
        Plan::Hang => {
            loop {
                let closing = shared.closing.notified();
                tokio::pin!(closing);
                closing.as_mut().enable();
                if shared.closed.load(Ordering::SeqCst) {
                    break;
                }
                closing.await;
            }
            match format {
                WireFormat::Anthropic => anthropic::fault(Fault::ServerError),
                WireFormat::OpenAi => openai::fault(Fault::ServerError),
                WireFormat::Bedrock => bedrock::fault(Fault::ServerError),
            }
        }
    }
}

fn plan(
    shared: &Shared,
    format: WireFormat,
    path: String,
    headers: HeaderMap,
    body: &Bytes,
    model_in_path: Option<String>,
) -> (Plan, Duration) {
    let mut inner = shared.lock();
    inner.attempts += 1;
    let latency = inner.latency;
    let credential = match format {
        WireFormat::Anthropic => header_text(&headers, "x-api-key"),
        WireFormat::OpenAi => {
            header_text(&headers, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
        }
        WireFormat::Bedrock => header_text(&headers, "authorization"),
    };
    let key_refused = format != WireFormat::Bedrock
        && inner.expected_key.as_ref().is_some_and(|expected| credential.as_ref() != Some(expected));
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            inner.violations.push(Violation { request: None, message: format!("{format:?}: body is not JSON: {e}") });
            let fault = if key_refused { Fault::Unauthorized } else { Fault::BadRequest };
            return (Plan::Fault(fault), latency);
        }
    };
    if format == WireFormat::OpenAi && inner.refuse_max_tokens && value.get("max_tokens").is_some() && !key_refused {
        return (Plan::Fault(Fault::MaxTokensUnsupported), latency);
    }
    let parsed = match format {
        WireFormat::Anthropic => anthropic::parse(&value, &headers),
        WireFormat::OpenAi => openai::parse(&value),
        WireFormat::Bedrock => bedrock::parse(&value, model_in_path.unwrap_or_default()),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(message) => {
            inner.violations.push(Violation { request: None, message: format!("{format:?}: {message}") });
            let fault = if key_refused { Fault::Unauthorized } else { Fault::BadRequest };
            return (Plan::Fault(fault), latency);
        }
    };
    let index = inner.requests.len();
    let seen = SeenRequest {
        index,
        format,
        path,
        model: parsed.model,
        system: parsed.system,
        messages: parsed.messages,
        tools: parsed.tools,
        max_tokens: parsed.max_tokens,
        credential,
        headers,
        body: value,
    };
    let problems = check_conversation(&seen.messages);
    let broken = !problems.is_empty();
    for message in problems {
        inner.violations.push(Violation { request: Some(index), message });
    }
    inner.requests.push(seen.clone());
    shared.recorded.notify_waiters();
    inner.answered.push(false);
    if key_refused {
        return (Plan::Fault(Fault::Unauthorized), latency);
    }
    if broken {
        return (Plan::Fault(Fault::BadRequest), latency);
    }
    let scripted = inner.script.pop_front();
    let responder = if scripted.is_none() { inner.responder.clone() } else { None };
    let default_turn = inner.default_turn.clone();
    // The responder runs without the lock, so it may look at the fake (e.g. `requests()`).
    drop(inner);
    let turn = scripted.or_else(|| responder.map(|r| r(&seen))).unwrap_or(default_turn);
    let mut inner = shared.lock();
    let plan = match turn {
        FakeTurn::Reply(reply) => {
            inner.answered[index] = true;
            inner.serial += 1;
            let serial = inner.serial;
            Plan::Reply(resolve(reply, &seen, serial))
        }
        FakeTurn::RateLimited { retry_after_secs } => Plan::Fault(Fault::RateLimited { retry_after_secs }),
        FakeTurn::Overloaded => Plan::Fault(Fault::Overloaded),
        FakeTurn::ServerError => Plan::Fault(Fault::ServerError),
        FakeTurn::Unauthorized => Plan::Fault(Fault::Unauthorized),
        FakeTurn::ModelNotFound => Plan::Fault(Fault::ModelNotFound),
        FakeTurn::Hang => Plan::Hang,
        FakeTurn::Garbled => Plan::Garbled,
    };
    (plan, latency)
}

fn resolve(reply: FakeReply, seen: &SeenRequest, serial: u64) -> ResolvedReply {
    let prefix = match seen.format {
        WireFormat::Anthropic => "toolu_fake",
        WireFormat::OpenAi => "call_fake",
        WireFormat::Bedrock => "tooluse_fake",
    };
    let calls: Vec<ResolvedCall> = reply
        .tool_calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| ResolvedCall {
            id: match c.id {
                FakeCallId::Generated => Some(format!("{prefix}{serial:04}_{i}")),
                FakeCallId::Given(id) => Some(id),
                FakeCallId::Omitted => None,
            },
            name: c.name,
            arguments: c.arguments,
        })
        .collect();
    let stop = reply.stop_reason.unwrap_or(if calls.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse });
    let usage = reply.usage.unwrap_or_else(|| {
        let out_bytes = reply.text.as_ref().map_or(0, String::len)
            + calls
                .iter()
                .map(|c| {
                    c.name.len()
                        + match &c.arguments {
                            FakeArguments::Json(v) => v.to_string().len(),
                            FakeArguments::Raw(s) => s.len(),
                        }
                })
                .sum::<usize>();
        let output = ((out_bytes / 4).max(1) as u64).min(u64::from(seen.max_tokens.unwrap_or(u32::MAX)));
        Usage { input_tokens: seen.estimated_input_tokens(), output_tokens: output, ..Usage::default() }
    });
    ResolvedReply { text: reply.text, calls, stop, usage, model: seen.model.clone(), serial }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn anthropic_route(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&shared, WireFormat::Anthropic, "/v1/messages".into(), headers, &body, None).await
}

async fn openai_route(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&shared, WireFormat::OpenAi, uri.path().to_owned(), headers, &body, None).await
}

async fn bedrock_route(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&shared, WireFormat::Bedrock, uri.path().to_owned(), headers, &body, Some(model_id)).await
}

async fn not_found(uri: axum::http::Uri) -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": {"type": "not_found_error", "message": format!("no route {}", uri.path())}}),
        ),
    )
}

/// The text of a tool result given as a string or as a list of text parts.
pub(crate) fn text_of_parts(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text").and_then(Value::as_str).map(str::to_owned).or_else(|| p.get("json").map(Value::to_string))
            })
            .collect::<Vec<_>>()
            .join("\n\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The default JSON Schema object when a tool's schema is missing.
pub(crate) fn schema_object(v: Option<&Value>) -> serde_json::Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

//! OpenAI-compatible Chat Completions (`POST {base}/chat/completions`) as a
//! [`ModelClient`]: OpenAI itself, and the servers that copy its API — Ollama
//! (`http://127.0.0.1:11434/v1`), vLLM, llama.cpp's server, OpenRouter.
//!
//! Mapping from the neutral conversation: the system prompt is the first message; an
//! assistant message's tool_use blocks become `tool_calls` (`arguments` is the input as a
//! JSON string, or the raw string the model sent if it was not JSON); a user message's
//! tool_result blocks become `tool` messages (placed first, right after the assistant's
//! call, as the API requires), with `error: ` before the content of a failed call (the
//! format has no error flag).
//!
//! The output limit goes as `max_tokens`, which every compatible server reads; OpenAI's
//! reasoning models refuse it and want `max_completion_tokens`. With
//! [`TokenLimitField::MaxTokens`] (the default) a 400 that names `max_completion_tokens`
//! is answered by sending the same request once more with that field, and the client
//! keeps using it.
//!
//! From answers: `tool_calls` (and the legacy `function_call`) become tool_use blocks.
//! Arguments that are not JSON do not fail the call: they are kept as a JSON string, so the
//! run loop can answer the model with a tool error. A call without an id gets a stable one
//! derived from its position, name and arguments. `finish_reason` `stop` with tool calls
//! present (Ollama does this) is a tool_use stop. Usage: `prompt_tokens` includes the
//! cached ones, so input = prompt − cached and cache reads = cached; a server that reports
//! no usage reports zeros.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rez_core::agent::model::{
    ChatMessage, ContentBlock, ModelClient, ModelError, ModelRequest, ModelResponse, Role, StopReason, Usage, text_of,
};
use rez_http::{HttpClient, HttpResponse, OutboundRequest, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::endpoint::{ClientError, DEFAULT_MODEL_TIMEOUT, endpoint};
use crate::error::{self, Provider};
use crate::key::ApiKey;

/// OpenAI's public API.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

const PROVIDER: Provider = Provider {
    id: "openai",
    label: "the OpenAI-compatible server",
    key_fix: "set REZ_OPENAI_API_KEY or `rez secrets set openai_api_key`",
};

/// Which field carries the output token limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenLimitField {
    /// `max_tokens`: every compatible server; switches to `max_completion_tokens` by
    /// itself when the server asks for it.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's current field, required by its reasoning models.
    MaxCompletionTokens,
}

/// How to reach an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Sent as `Authorization: Bearer`; local servers need none.
    pub api_key: Option<ApiKey>,
    /// `None`: OpenAI's public API, under the strict policy. `Some`: an operator-configured
    /// server, which may be plain http on loopback or the LAN.
    pub base_url: Option<Url>,
    /// Limit of one call (default [`DEFAULT_MODEL_TIMEOUT`]).
    pub timeout: Duration,
    pub token_limit_field: TokenLimitField,
}

impl OpenAiConfig {
    pub fn new(api_key: Option<ApiKey>, base_url: Option<Url>) -> Self {
        Self { api_key, base_url, timeout: DEFAULT_MODEL_TIMEOUT, token_limit_field: TokenLimitField::default() }
    }
}

/// The OpenAI-compatible Chat Completions client.
pub struct OpenAiClient {
    http: HttpClient,
    url: Url,
    key: Option<ApiKey>,
    timeout: Duration,
    /// Send `max_completion_tokens` instead of `max_tokens`.
    completion_tokens_field: AtomicBool,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("url", &self.url.as_str())
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OpenAiClient {
    pub fn new(config: OpenAiConfig) -> Result<Self, ClientError> {
        let (base, operator) = match &config.base_url {
            Some(url) => (url.clone(), true),
            None => (
                Url::parse(OPENAI_DEFAULT_BASE_URL)
                    .map_err(|e| ClientError::InvalidBaseUrl { setting: "the OpenAI URL", reason: e.to_string() })?,
                false,
            ),
        };
        let e = endpoint(&base, "chat/completions", operator, "REZ_OPENAI_BASE_URL", config.timeout)?;
        Ok(Self {
            http: e.http,
            url: e.url,
            key: config.api_key,
            timeout: config.timeout,
            completion_tokens_field: AtomicBool::new(config.token_limit_field == TokenLimitField::MaxCompletionTokens),
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    async fn send(&self, body: &Value) -> Result<HttpResponse, ModelError> {
        let mut req = OutboundRequest::from_url(rez_http::Method::POST, self.url.clone())
            .json(body)
            .map_err(|e| error::from_http_error(PROVIDER, &e, self.timeout))?
            .timeout(self.timeout);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose()).map_err(|e| error::from_http_error(PROVIDER, &e, self.timeout))?;
        }
        self.http.send(req).await.map_err(|e| error::from_http_error(PROVIDER, &e, self.timeout))
    }
}

#[async_trait]
impl ModelClient for OpenAiClient {
    fn provider(&self) -> &'static str {
        PROVIDER.id
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let started = Instant::now();
        let use_completion = self.completion_tokens_field.load(Ordering::Relaxed);
        let mut resp = self.send(&request_body(request, use_completion)).await?;
        if !use_completion && wants_completion_tokens_field(&resp) {
            tracing::info!(provider = PROVIDER.id, model = %request.model, "server wants max_completion_tokens; sending that from now on");
            self.completion_tokens_field.store(true, Ordering::Relaxed);
            resp = self.send(&request_body(request, true)).await?;
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if !resp.status.is_success() {
            let err = error::from_status(PROVIDER, &resp, self.key.as_ref(), &request.model);
            tracing::info!(provider = PROVIDER.id, model = %request.model, status = resp.status.as_u16(), transient = err.is_transient(), elapsed_ms, "model call failed");
            return Err(err);
        }
        let parsed: ChatResponse =
            serde_json::from_slice(&resp.body).map_err(|e| error::unreadable(PROVIDER, resp.status, &e.to_string()))?;
        let response = parsed
            .into_neutral(&request.model)
            .ok_or_else(|| error::unreadable(PROVIDER, resp.status, "no choices"))?;
        tracing::debug!(provider = PROVIDER.id, model = %response.model, stop_reason = %response.stop_reason, input_tokens = response.usage.input_tokens, output_tokens = response.usage.output_tokens, elapsed_ms, "model call done");
        Ok(response)
    }
}

/// A 400 saying `max_tokens` is not supported and naming `max_completion_tokens`.
fn wants_completion_tokens_field(resp: &HttpResponse) -> bool {
    resp.status == StatusCode::BAD_REQUEST
        && error::provider_text(&resp.body).is_some_and(|t| t.contains("max_completion_tokens"))
}

fn request_body(r: &ModelRequest, completion_tokens_field: bool) -> Value {
    let mut messages = Vec::with_capacity(r.messages.len() + 1);
    if !r.system.is_empty() {
        messages.push(json!({"role": "system", "content": r.system}));
    }
    for m in &r.messages {
        push_message(&mut messages, m);
    }
    let mut body = json!({"model": r.model, "messages": messages});
    let field = if completion_tokens_field { "max_completion_tokens" } else { "max_tokens" };
    body[field] = json!(r.max_tokens);
    if !r.tools.is_empty() {
        body["tools"] = r
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
    }
    body
}

fn push_message(out: &mut Vec<Value>, m: &ChatMessage) {
    let text = text_of(&m.content);
    match m.role {
        Role::Assistant => {
            let calls: Vec<Value> = m
                .content
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => {
                        let arguments = match input {
                            Value::String(raw) => raw.clone(),
                            other => other.to_string(),
                        };
                        Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
                    }
                    _ => None,
                })
                .collect();
            let mut msg = json!({"role": "assistant"});
            msg["content"] = if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) };
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
        Role::User => {
            for b in &m.content {
                if let ContentBlock::ToolResult { tool_use_id, content, is_error } = b {
                    let content = if *is_error { format!("error: {content}") } else { content.clone() };
                    out.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                }
            }
            let has_results = m.content.iter().any(|b| matches!(b, ContentBlock::ToolResult { .. }));
            if !text.is_empty() || !has_results {
                out.push(json!({"role": "user", "content": text}));
            }
        }
    }
}

/// A stable id for a tool call that came without one: the same answer always yields the
/// same id (FNV-1a over the position, name and arguments).
pub(crate) fn generated_call_id(prefix: &str, index: usize, name: &str, arguments: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in index
        .to_le_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(name.as_bytes())
        .chain([0u8].iter())
        .chain(arguments.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}_{index}_{hash:016x}")
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<AssistantMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    function_call: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// The arguments as the tool_use input: JSON if they parse, else the raw string.
fn arguments_input(arguments: Option<Value>) -> (Value, String) {
    match arguments {
        None | Some(Value::Null) => (Value::Object(Map::new()), String::new()),
        Some(Value::String(raw)) if raw.trim().is_empty() => (Value::Object(Map::new()), raw),
        Some(Value::String(raw)) => match serde_json::from_str::<Value>(&raw) {
            Ok(v) => (v, raw),
            Err(_) => (Value::String(raw.clone()), raw),
        },
        Some(other) => {
            let raw = other.to_string();
            (other, raw)
        }
    }
}

impl ChatResponse {
    fn into_neutral(self, requested_model: &str) -> Option<ModelResponse> {
        let choice = self.choices.into_iter().next()?;
        let message = choice.message.unwrap_or_default();
        let mut content = Vec::new();
        let text = match &message.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        };
        let refusal = message.refusal.filter(|r| !r.is_empty());
        if !text.is_empty() {
            content.push(ContentBlock::Text { text });
        } else if let Some(r) = &refusal {
            content.push(ContentBlock::Text { text: r.clone() });
        }
        let mut calls: Vec<(Option<String>, WireFunction)> =
            message.tool_calls.unwrap_or_default().into_iter().map(|c| (c.id, c.function)).collect();
        if calls.is_empty()
            && let Some(f) = message.function_call
        {
            calls.push((None, f));
        }
        for (i, (id, f)) in calls.into_iter().enumerate() {
            let (input, raw) = arguments_input(f.arguments);
            let id = id.filter(|s| !s.is_empty()).unwrap_or_else(|| generated_call_id("call_rez", i, &f.name, &raw));
            content.push(ContentBlock::ToolUse { id, name: f.name, input });
        }
        let has_tool_use = content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
        let stop_reason = match choice.finish_reason.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("stop") | None if has_tool_use => StopReason::ToolUse,
            Some("stop") | None if refusal.is_some() => StopReason::Refusal,
            Some("stop") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::ContentFilter,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        let usage = self.usage.map_or(Usage::default(), |u| {
            let prompt = u.prompt_tokens.unwrap_or(0);
            let cached = u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0).min(prompt);
            Usage {
                input_tokens: prompt - cached,
                output_tokens: u.completion_tokens.unwrap_or(0),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
            }
        });
        Some(ModelResponse {
            content,
            stop_reason,
            usage,
            model: self.model.filter(|m| !m.is_empty()).unwrap_or_else(|| requested_model.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rez_core::agent::model::ToolDefinition;

    fn request() -> ModelRequest {
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        ModelRequest {
            model: "gpt-4.1".into(),
            system: "Be brief.".into(),
            messages: vec![
                ChatMessage::user_text("Is Saturday dry?"),
                ChatMessage {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::ToolUse {
                            id: "call_1".into(),
                            name: "get_weather".into(),
                            input: json!({"day": "sat"}),
                        },
                        ContentBlock::ToolUse { id: "call_2".into(), name: "get_weather".into(), input: json!("{bad") },
                    ],
                },
                ChatMessage {
                    role: Role::User,
                    content: vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "call_1".into(),
                            content: "sunny".into(),
                            is_error: false,
                        },
                        ContentBlock::ToolResult {
                            tool_use_id: "call_2".into(),
                            content: "bad arguments".into(),
                            is_error: true,
                        },
                        ContentBlock::Text { text: "And Sunday?".into() },
                    ],
                },
                ChatMessage::assistant_text("Also dry."),
            ],
            tools: vec![ToolDefinition {
                name: "get_weather".into(),
                description: "Forecast".into(),
                input_schema: schema,
            }],
            max_tokens: 1024,
        }
    }

    #[test]
    fn the_request_has_the_chat_completions_shape() {
        let v = request_body(&request(), false);
        assert_eq!(v["model"], "gpt-4.1");
        assert_eq!(v["max_tokens"], 1024);
        assert!(v.get("max_completion_tokens").is_none());
        assert_eq!(
            v["tools"],
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Forecast", "parameters": {"type": "object"}}}])
        );
        assert_eq!(
            v["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Is Saturday dry?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"day\":\"sat\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{bad"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": "error: bad arguments"},
                {"role": "user", "content": "And Sunday?"},
                {"role": "assistant", "content": "Also dry."}
            ])
        );
        let v = request_body(&ModelRequest { system: String::new(), tools: vec![], ..request() }, true);
        assert_eq!(v["max_completion_tokens"], 1024);
        assert!(v.get("max_tokens").is_none() && v.get("tools").is_none());
        assert_eq!(v["messages"][0]["role"], "user");
    }

    fn parse(v: Value) -> ModelResponse {
        serde_json::from_value::<ChatResponse>(v).expect("parse").into_neutral("asked").expect("choice")
    }

    fn answer(message: Value, finish: Value) -> Value {
        json!({"id": "c", "object": "chat.completion", "model": "gpt-4.1-2025",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107, "prompt_tokens_details": {"cached_tokens": 60}}})
    }

    #[test]
    fn tool_calls_map_to_tool_use_blocks() {
        let r = parse(answer(
            json!({"role": "assistant", "content": "Looking.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"day\":\"sat\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"day\": sat"}},
                {"type": "function", "function": {"name": "no_such_tool", "arguments": ""}},
                {"id": "call_d", "type": "function", "function": {"name": "ollama_style", "arguments": {"x": 1}}}
            ]}),
            json!("tool_calls"),
        ));
        assert_eq!(r.model, "gpt-4.1-2025");
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(r.usage, Usage { input_tokens: 40, output_tokens: 7, cache_read_tokens: 60, cache_write_tokens: 0 });
        assert_eq!(r.content[0], ContentBlock::Text { text: "Looking.".into() });
        let calls: Vec<_> = r.tool_uses().collect();
        assert_eq!(calls[0], ("call_a", "get_weather", &json!({"day": "sat"})));
        assert_eq!(calls[1], ("call_b", "get_weather", &json!("{\"day\": sat")), "malformed arguments kept raw");
        assert_eq!((calls[2].1, calls[2].2), ("no_such_tool", &json!({})));
        assert!(calls[2].0.starts_with("call_rez_2_"));
        assert_eq!(calls[3], ("call_d", "ollama_style", &json!({"x": 1})));
    }

    #[test]
    fn finish_reasons_are_mapped() {
        let text = json!({"role": "assistant", "content": "hi"});
        let cases = [
            (json!("stop"), StopReason::EndTurn),
            (json!(null), StopReason::EndTurn),
            (json!("length"), StopReason::MaxTokens),
            (json!("content_filter"), StopReason::ContentFilter),
            (json!("tool_calls"), StopReason::ToolUse),
            (json!("function_call"), StopReason::ToolUse),
            (json!("eos"), StopReason::Other("eos".into())),
        ];
        for (wire, stop) in cases {
            assert_eq!(parse(answer(text.clone(), wire.clone())).stop_reason, stop, "{wire}");
        }
        // Ollama says `stop` while asking for tools.
        let r = parse(answer(
            json!({"tool_calls": [{"id": "1", "function": {"name": "t", "arguments": "{}"}}]}),
            json!("stop"),
        ));
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        // The legacy function_call form.
        let r = parse(answer(
            json!({"content": null, "function_call": {"name": "t", "arguments": "{\"a\":1}"}}),
            json!("function_call"),
        ));
        assert_eq!(
            r.tool_uses().map(|(_, n, i)| (n.to_owned(), i.clone())).collect::<Vec<_>>(),
            vec![("t".to_owned(), json!({"a": 1}))]
        );
        // A refusal.
        let r = parse(answer(json!({"content": null, "refusal": "I can't help with that."}), json!("stop")));
        assert_eq!(r.stop_reason, StopReason::Refusal);
        assert_eq!(r.content, vec![ContentBlock::Text { text: "I can't help with that.".into() }]);
    }

    #[test]
    fn usage_may_be_missing_and_answers_need_a_choice() {
        let r = parse(
            json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, "finish_reason": "stop"}]}),
        );
        assert_eq!((r.usage, r.model.as_str()), (Usage::default(), "asked"));
        assert_eq!(r.content, vec![ContentBlock::Text { text: "ab".into() }]);
        let none = serde_json::from_value::<ChatResponse>(json!({"choices": []})).expect("parse").into_neutral("m");
        assert!(none.is_none());
    }

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let a = generated_call_id("call_rez", 0, "t", "{}");
        assert_eq!(a, generated_call_id("call_rez", 0, "t", "{}"));
        assert_ne!(a, generated_call_id("call_rez", 1, "t", "{}"));
        assert_ne!(a, generated_call_id("call_rez", 0, "t", "{\"a\":1}"));
    }
}

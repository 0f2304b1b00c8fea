//! The Anthropic Messages API (`POST {base}/v1/messages`) as a [`ModelClient`].
//!
//! The neutral conversation is Anthropic's own shape, so the mapping is nearly one to one:
//! text, tool_use and tool_result blocks (with `is_error`), the system prompt, the tools'
//! JSON Schemas. Two adjustments: empty text blocks are left out (the API refuses them),
//! and a tool_use whose input is not an object (a malformed call from another turn) is sent
//! as `{"raw_input": …}`, since the API accepts only objects there. In answers, blocks
//! other than text and tool_use (thinking, server tools) are not part of the neutral
//! conversation and are dropped; a tool_use without an id gets a stable generated one.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rez_core::agent::model::{
    ChatMessage, ContentBlock, ModelClient, ModelError, ModelRequest, ModelResponse, Role, StopReason, Usage,
};
use rez_http::{HttpClient, OutboundRequest, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::endpoint::{ClientError, DEFAULT_MODEL_TIMEOUT, endpoint};
use crate::error::{self, Provider};
use crate::key::ApiKey;

/// The public API.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

const PROVIDER: Provider = Provider {
    id: "anthropic",
    label: "the Anthropic API",
    key_fix: "set REZ_ANTHROPIC_API_KEY or `rez secrets set anthropic_api_key`",
};

/// How to reach Anthropic.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    pub api_key: ApiKey,
    /// `None`: the public API, under the strict policy. `Some`: an operator-configured
    /// endpoint (a gateway or proxy), which may be plain http on loopback or the LAN.
    pub base_url: Option<Url>,
    /// Limit of one call (default [`DEFAULT_MODEL_TIMEOUT`]).
    pub timeout: Duration,
}

impl AnthropicConfig {
    pub fn new(api_key: ApiKey) -> Self {
        Self { api_key, base_url: None, timeout: DEFAULT_MODEL_TIMEOUT }
    }
}

/// The Anthropic Messages API client.
pub struct AnthropicClient {
    http: HttpClient,
    url: Url,
    key: ApiKey,
    timeout: Duration,
}

impl std::fmt::Debug for AnthropicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicClient").field("url", &self.url.as_str()).field("timeout", &self.timeout).finish()
    }
}

impl AnthropicClient {
    pub fn new(config: AnthropicConfig) -> Result<Self, ClientError> {
        let (base, operator) = match &config.base_url {
            Some(url) => (url.clone(), true),
            None => (
                Url::parse(ANTHROPIC_DEFAULT_BASE_URL)
                    .map_err(|e| ClientError::InvalidBaseUrl { setting: "the Anthropic URL", reason: e.to_string() })?,
                false,
            ),
        };
        let e = endpoint(&base, "v1/messages", operator, "REZ_ANTHROPIC_BASE_URL", config.timeout)?;
        Ok(Self { http: e.http, url: e.url, key: config.api_key, timeout: config.timeout })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

#[async_trait]
impl ModelClient for AnthropicClient {
    fn provider(&self) -> &'static str {
        PROVIDER.id
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let started = Instant::now();
        let body = request_body(request);
        let req = OutboundRequest::from_url(rez_http::Method::POST, self.url.clone())
            .try_header("x-api-key", self.key.expose())
            .and_then(|r| r.try_header("anthropic-version", ANTHROPIC_VERSION))
            .and_then(|r| r.json(&body))
            .map_err(|e| error::from_http_error(PROVIDER, &e, self.timeout))?
            .timeout(self.timeout);
        let resp = self.http.send(req).await.map_err(|e| error::from_http_error(PROVIDER, &e, self.timeout))?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if !resp.status.is_success() {
            let err = error::from_status(PROVIDER, &resp, Some(&self.key), &request.model);
            tracing::info!(provider = PROVIDER.id, model = %request.model, status = resp.status.as_u16(), transient = err.is_transient(), elapsed_ms, "model call failed");
            return Err(err);
        }
        let parsed: MessagesResponse =
            serde_json::from_slice(&resp.body).map_err(|e| error::unreadable(PROVIDER, resp.status, &e.to_string()))?;
        let response = parsed.into_neutral(&request.model);
        tracing::debug!(provider = PROVIDER.id, model = %response.model, stop_reason = %response.stop_reason, input_tokens = response.usage.input_tokens, output_tokens = response.usage.output_tokens, elapsed_ms, "model call done");
        Ok(response)
    }
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    messages: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
}

fn request_body(r: &ModelRequest) -> MessagesRequest<'_> {
    MessagesRequest {
        model: &r.model,
        max_tokens: r.max_tokens,
        system: &r.system,
        messages: r.messages.iter().map(message).collect(),
        tools: r
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect(),
    }
}

fn message(m: &ChatMessage) -> Value {
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let content: Vec<Value> = m
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } if text.is_empty() => None,
            ContentBlock::Text { text } => Some(json!({"type": "text", "text": text})),
            ContentBlock::ToolUse { id, name, input } => {
                let input = if input.is_object() { input.clone() } else { json!({"raw_input": input}) };
                Some(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
            }
            ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                let mut block = json!({"type": "tool_result", "tool_use_id": tool_use_id});
                if !content.is_empty() {
                    block["content"] = json!(content);
                }
                if *is_error {
                    block["is_error"] = json!(true);
                }
                Some(block)
            }
        })
        .collect();
    json!({"role": role, "content": content})
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    model: Option<String>,
    content: Vec<ResponseBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: ResponseUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        #[serde(default)]
        id: Option<String>,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct ResponseUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl MessagesResponse {
    fn into_neutral(self, requested_model: &str) -> ModelResponse {
        let content: Vec<ContentBlock> = self
            .content
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| match b {
                ResponseBlock::Text { text } => Some(ContentBlock::Text { text }),
                ResponseBlock::ToolUse { id, name, input } => {
                    let input = if input.is_null() { Value::Object(Map::new()) } else { input };
                    let id = id
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| crate::openai::generated_call_id("toolu_rez", i, &name, &input.to_string()));
                    Some(ContentBlock::ToolUse { id, name, input })
                }
                ResponseBlock::Other => None,
            })
            .collect();
        let has_tool_use = content.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::Refusal,
            Some("pause_turn") => StopReason::PauseTurn,
            Some(other) => StopReason::Other(other.to_owned()),
            None if has_tool_use => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        let u = self.usage;
        ModelResponse {
            content,
            stop_reason,
            usage: Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_tokens: u.cache_read_input_tokens.unwrap_or(0),
                cache_write_tokens: u.cache_creation_input_tokens.unwrap_or(0),
            },
            model: self.model.filter(|m| !m.is_empty()).unwrap_or_else(|| requested_model.to_owned()),
        }
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
            model: "claude-sonnet-4-5".into(),
            system: "Be brief.".into(),
            messages: vec![
                ChatMessage::user_text("Is Saturday dry?"),
                ChatMessage {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Text { text: "Checking.".into() },
                        ContentBlock::Text { text: String::new() },
                        ContentBlock::ToolUse {
                            id: "toolu_1".into(),
                            name: "get_weather".into(),
                            input: json!({"day": "sat"}),
                        },
                        ContentBlock::ToolUse {
                            id: "toolu_2".into(),
                            name: "get_weather".into(),
                            input: json!("{bad"),
                        },
                    ],
                },
                ChatMessage {
                    role: Role::User,
                    content: vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "toolu_1".into(),
                            content: "sunny".into(),
                            is_error: false,
                        },
                        ContentBlock::ToolResult {
                            tool_use_id: "toolu_2".into(),
                            content: "bad arguments".into(),
                            is_error: true,
                        },
                    ],
                },
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
    fn the_request_has_the_messages_api_shape() {
        let v = serde_json::to_value(request_body(&request())).expect("json");
        assert_eq!(v["model"], "claude-sonnet-4-5");
        assert_eq!(v["max_tokens"], 1024);
        assert_eq!(v["system"], "Be brief.");
        assert_eq!(
            v["tools"],
            json!([{"name": "get_weather", "description": "Forecast", "input_schema": {"type": "object"}}])
        );
        assert_eq!(
            v["messages"][0],
            json!({"role": "user", "content": [{"type": "text", "text": "Is Saturday dry?"}]})
        );
        let assistant = &v["messages"][1]["content"];
        assert_eq!(assistant.as_array().expect("blocks").len(), 3, "the empty text block is left out");
        assert_eq!(
            assistant[1],
            json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"day": "sat"}})
        );
        assert_eq!(assistant[2]["input"], json!({"raw_input": "{bad"}));
        assert_eq!(
            v["messages"][2]["content"],
            json!([
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "bad arguments", "is_error": true}
            ])
        );
        let empty = ModelRequest { system: String::new(), tools: vec![], ..request() };
        let v = serde_json::to_value(request_body(&empty)).expect("json");
        assert!(v.get("system").is_none() && v.get("tools").is_none());
    }

    fn parse(v: Value) -> ModelResponse {
        serde_json::from_value::<MessagesResponse>(v).expect("parse").into_neutral("asked-model")
    }

    #[test]
    fn answers_map_to_the_neutral_shape() {
        let r = parse(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"day": "sat"}},
                {"type": "tool_use", "name": "no_id_tool", "input": {}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 40}
        }));
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        assert_eq!(
            r.usage,
            Usage { input_tokens: 100, output_tokens: 20, cache_read_tokens: 40, cache_write_tokens: 30 }
        );
        assert_eq!(r.content.len(), 3);
        assert_eq!(r.content[0], ContentBlock::Text { text: "Let me look.".into() });
        let calls: Vec<_> = r.tool_uses().collect();
        assert_eq!(calls[0], ("toolu_9", "get_weather", &json!({"day": "sat"})));
        assert!(calls[1].0.starts_with("toolu_rez"));
        let a = parse(json!({"content": [{"type": "tool_use", "name": "no_id_tool", "input": {"x": 1}}]}));
        let b = parse(json!({"content": [{"type": "tool_use", "name": "no_id_tool", "input": {"x": 1}}]}));
        assert_eq!(a.content, b.content, "a generated id is stable");
    }

    #[test]
    fn every_stop_reason_is_mapped() {
        let cases = [
            ("end_turn", StopReason::EndTurn),
            ("tool_use", StopReason::ToolUse),
            ("max_tokens", StopReason::MaxTokens),
            ("stop_sequence", StopReason::StopSequence),
            ("refusal", StopReason::Refusal),
            ("pause_turn", StopReason::PauseTurn),
            ("model_context_window_exceeded", StopReason::Other("model_context_window_exceeded".into())),
        ];
        for (wire, stop) in cases {
            let r =
                parse(json!({"content": [], "stop_reason": wire, "usage": {"input_tokens": 1, "output_tokens": 1}}));
            assert_eq!(r.stop_reason, stop, "{wire}");
            assert_eq!(r.model, "asked-model");
        }
        let r = parse(json!({"content": [{"type": "text", "text": "hi"}]}));
        assert_eq!((r.stop_reason, r.usage), (StopReason::EndTurn, Usage::default()));
    }
}

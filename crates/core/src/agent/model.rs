//! The model port: one provider-neutral shape of a tool-using conversation, and the
//! trait each provider's wire format implements (Anthropic Messages and OpenAI-compatible
//! Chat Completions in `rez-models`, Bedrock Converse in `rez-aws`).
//!
//! The neutral shape is Anthropic's (content blocks, tool_use / tool_result with ids),
//! because it is the richest of the three: the others map onto it without loss. What the
//! run loop stores and replays after a crash is this shape, never a provider's.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    /// The model asks for a tool call. `input` is what the model sent; it may be any JSON
    /// (a malformed call is answered with a tool error, not refused here).
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// The answer to the `ToolUse` with the same id, in the next user message.
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

impl ChatMessage {
    pub fn user_text(text: impl Into<String>) -> Self {
        Self { role: Role::User, content: vec![ContentBlock::Text { text: text.into() }] }
    }

    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: vec![ContentBlock::Text { text: text.into() }] }
    }

    /// The text blocks joined by blank lines.
    pub fn text(&self) -> String {
        text_of(&self.content)
    }
}

/// The text blocks of `content` joined by blank lines.
pub fn text_of(content: &[ContentBlock]) -> String {
    let parts: Vec<&str> = content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    parts.join("\n\n")
}

/// A tool as the model is told about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: Map<String, Value>,
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    /// The most output tokens the model may produce in this turn.
    pub max_tokens: u32,
}

impl ModelRequest {
    /// Bytes of the request's variable parts (system prompt, messages, tool definitions)
    /// as JSON. A token is at least one byte of text in every tokenizer we price, so this
    /// bounds the input tokens from above: the budget reserves against it.
    pub fn size_bytes(&self) -> u64 {
        let messages = serde_json::to_vec(&self.messages).map_or(0, |v| v.len());
        let tools = serde_json::to_vec(&self.tools).map_or(0, |v| v.len());
        (self.system.len() + messages + tools) as u64
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants the tool calls in its content run.
    ToolUse,
    /// It ran out of `max_tokens`.
    MaxTokens,
    /// It hit a stop sequence.
    StopSequence,
    /// It declined for safety reasons.
    Refusal,
    /// A long turn was paused (Anthropic server tools); sending the content back continues it.
    PauseTurn,
    /// The provider filtered the content.
    ContentFilter,
    /// A reason this version does not know, kept as the provider said it.
    Other(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::EndTurn => f.write_str("end_turn"),
            StopReason::ToolUse => f.write_str("tool_use"),
            StopReason::MaxTokens => f.write_str("max_tokens"),
            StopReason::StopSequence => f.write_str("stop_sequence"),
            StopReason::Refusal => f.write_str("refusal"),
            StopReason::PauseTurn => f.write_str("pause_turn"),
            StopReason::ContentFilter => f.write_str("content_filter"),
            StopReason::Other(s) => f.write_str(s),
        }
    }
}

/// Tokens one call consumed, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the prompt cache.
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    pub content: Vec<ContentBlock>,
    pub stop_reason: StopReason,
    pub usage: Usage,
    /// The model that answered, as the provider named it.
    pub model: String,
}

impl ModelResponse {
    /// The tool calls the model asked for, in order.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// Whether trying the same call again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelErrorKind {
    /// Rate limited, overloaded, a server error, a timeout, a broken connection.
    Transient,
    /// Bad key, no access to the model, a request the provider refuses: retrying cannot help.
    Permanent,
}

/// A failed model call, with what a person needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ModelError {
    pub kind: ModelErrorKind,
    /// `anthropic`, `openai`, `bedrock`.
    pub provider: &'static str,
    /// The HTTP status, when the provider answered.
    pub status: Option<u16>,
    /// How long the provider asked us to wait (`retry-after`).
    pub retry_after: Option<Duration>,
    /// What went wrong and what to do; never contains a key.
    pub message: String,
}

impl ModelError {
    pub fn transient(provider: &'static str, message: impl Into<String>) -> Self {
        Self { kind: ModelErrorKind::Transient, provider, status: None, retry_after: None, message: message.into() }
    }

    pub fn permanent(provider: &'static str, message: impl Into<String>) -> Self {
        Self { kind: ModelErrorKind::Permanent, provider, status: None, retry_after: None, message: message.into() }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ModelErrorKind::Transient
    }
}

/// A model provider. One call is one HTTP exchange (or one SDK call); retries are the
/// caller's (`rez-models::retry`), so each attempt is visible and bounded in one place.
#[async_trait]
pub trait ModelClient: Send + Sync + 'static {
    /// `anthropic`, `openai` or `bedrock`.
    fn provider(&self) -> &'static str;
    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_round_trip_in_the_stored_shape() {
        let m = ChatMessage {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Text { text: "looking".into() },
                ContentBlock::ToolUse { id: "tu_1".into(), name: "list_courses".into(), input: json!({}) },
            ],
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["content"][1]["type"], "tool_use");
        assert_eq!(serde_json::from_value::<ChatMessage>(v).unwrap(), m);
        assert_eq!(m.text(), "looking");
    }

    #[test]
    fn unknown_stop_reasons_are_kept() {
        let r: StopReason = serde_json::from_value(json!({"other": "model_context_window_exceeded"})).unwrap();
        assert_eq!(r.to_string(), "model_context_window_exceeded");
        assert_eq!(serde_json::to_value(StopReason::EndTurn).unwrap(), json!("end_turn"));
    }
}

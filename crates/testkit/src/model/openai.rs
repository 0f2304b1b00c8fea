//! The OpenAI-compatible Chat Completions side of the fake model: reading
//! `POST /v1/chat/completions` requests into the neutral shape (system messages → the
//! system prompt, `tool_calls` → tool_use blocks, `tool` messages → tool_result blocks of
//! one user message) and writing answers and errors as OpenAI does.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::agent::model::{ChatMessage, ContentBlock, Role, StopReason, ToolDefinition};
use serde_json::{Value, json};

use super::{FakeArguments, Fault, ParsedRequest, ResolvedReply, schema_object, text_of_parts};

pub(crate) fn parse(v: &Value) -> Result<ParsedRequest, String> {
    let model = v.get("model").and_then(Value::as_str).ok_or("you must provide a model parameter")?.to_owned();
    let max_tokens = v.get("max_tokens").or_else(|| v.get("max_completion_tokens")).and_then(Value::as_u64);
    let raw_messages = v.get("messages").and_then(Value::as_array).ok_or("messages: a list is required")?;
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<ChatMessage> = Vec::new();
    for (i, m) in raw_messages.iter().enumerate() {
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                system.push(text_of_parts(content));
                continue;
            }
            Some("user") => (Role::User, text_blocks(content)),
            Some("assistant") => {
                let mut blocks = text_blocks(content);
                for (j, call) in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let id = call
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or(format!("messages[{i}].tool_calls[{j}].id: missing"))?;
                    let function =
                        call.get("function").ok_or(format!("messages[{i}].tool_calls[{j}].function: missing"))?;
                    let name = function
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or(format!("messages[{i}].tool_calls[{j}].function.name: missing"))?;
                    let raw = function
                        .get("arguments")
                        .and_then(Value::as_str)
                        .ok_or(format!("messages[{i}].tool_calls[{j}].function.arguments: must be a string"))?;
                    let input = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
                    blocks.push(ContentBlock::ToolUse { id: id.to_owned(), name: name.to_owned(), input });
                }
                (Role::Assistant, blocks)
            }
            Some("tool") => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or(format!("messages[{i}].tool_call_id: missing"))?;
                (
                    Role::User,
                    vec![ContentBlock::ToolResult {
                        tool_use_id: id.to_owned(),
                        content: text_of_parts(content),
                        is_error: false,
                    }],
                )
            }
            other => return Err(format!("messages[{i}].role: unexpected role {other:?}")),
        };
        // Consecutive tool and user messages are one user turn in the neutral shape.
        match messages.last_mut() {
            Some(last) if last.role == Role::User && role == Role::User => last.content.extend(blocks),
            _ => messages.push(ChatMessage { role, content: blocks }),
        }
    }
    let mut tools = Vec::new();
    for (i, t) in v.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(format!("tools[{i}].type: must be \"function\""));
        }
        let f = t.get("function").ok_or(format!("tools[{i}].function: missing"))?;
        tools.push(ToolDefinition {
            name: f.get("name").and_then(Value::as_str).ok_or(format!("tools[{i}].function.name: missing"))?.to_owned(),
            description: f.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
            input_schema: schema_object(f.get("parameters")),
        });
    }
    Ok(ParsedRequest {
        model,
        system: system.join("\n\n"),
        messages,
        tools,
        max_tokens: max_tokens.and_then(|n| u32::try_from(n).ok()),
    })
}

fn text_blocks(content: &Value) -> Vec<ContentBlock> {
    match content {
        Value::Null => Vec::new(),
        other => {
            let text = text_of_parts(other);
            if text.is_empty() { Vec::new() } else { vec![ContentBlock::Text { text }] }
        }
    }
}

fn finish_reason(stop: &StopReason) -> String {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence => "stop".into(),
        StopReason::ToolUse => "tool_calls".into(),
        StopReason::MaxTokens => "length".into(),
        StopReason::ContentFilter | StopReason::Refusal => "content_filter".into(),
        other => other.to_string(),
    }
}

pub(crate) fn reply(r: &ResolvedReply) -> Response {
    let mut message = json!({"role": "assistant", "content": r.text, "refusal": null});
    if !r.calls.is_empty() {
        let calls: Vec<Value> = r
            .calls
            .iter()
            .map(|c| {
                let arguments = match &c.arguments {
                    FakeArguments::Json(v) => v.to_string(),
                    FakeArguments::Raw(s) => s.clone(),
                };
                let mut call = json!({"type": "function", "function": {"name": c.name, "arguments": arguments}});
                if let Some(id) = &c.id {
                    call["id"] = json!(id);
                }
                call
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let prompt = r.usage.input_tokens + r.usage.cache_read_tokens + r.usage.cache_write_tokens;
    let body = json!({
        "id": format!("chatcmpl-fake{:06}", r.serial),
        "object": "chat.completion",
        "created": 1_760_000_000u64 + r.serial,
        "model": r.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(&r.stop)}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": r.usage.output_tokens,
            "total_tokens": prompt + r.usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": r.usage.cache_read_tokens},
        },
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(crate) fn fault(f: Fault) -> Response {
    let (status, kind, code, message) = match f {
        Fault::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again later.",
        ),
        Fault::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "overloaded",
            "The engine is currently overloaded, please try again later",
        ),
        Fault::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            "The server had an error while processing your request.",
        ),
        Fault::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        Fault::ModelNotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you do not have access to it.",
        ),
        Fault::BadRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            "The request does not follow the Chat Completions API.",
        ),
        Fault::MaxTokensUnsupported => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unsupported_parameter",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        ),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut resp = (status, axum::Json(body)).into_response();
    if let Fault::RateLimited { retry_after_secs } = f {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    resp
}

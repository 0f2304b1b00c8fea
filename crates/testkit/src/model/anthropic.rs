//! The Anthropic Messages API side of the fake model: reading `POST /v1/messages`
//! requests into the neutral shape and writing answers and errors as Anthropic does.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::agent::model::{ChatMessage, ContentBlock, Role, ToolDefinition};
use serde_json::{Value, json};

use super::{FakeArguments, Fault, ParsedRequest, ResolvedReply, schema_object, text_of_parts};

pub(crate) fn parse(v: &Value, headers: &HeaderMap) -> Result<ParsedRequest, String> {
    if headers.get("anthropic-version").is_none() {
        return Err("anthropic-version: header is required".into());
    }
    let model = v.get("model").and_then(Value::as_str).ok_or("model: field required")?.to_owned();
    let max_tokens = v.get("max_tokens").and_then(Value::as_u64).ok_or("max_tokens: field required")?;
    let system = match v.get("system") {
        None | Some(Value::Null) => String::new(),
        Some(s) => text_of_parts(s),
    };
    let raw_messages = v.get("messages").and_then(Value::as_array).ok_or("messages: field required")?;
    let mut messages = Vec::with_capacity(raw_messages.len());
    for (i, m) in raw_messages.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => return Err(format!("messages.{i}.role: unexpected role {other:?}")),
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => vec![ContentBlock::Text { text: s.clone() }],
            Some(Value::Array(blocks)) => blocks
                .iter()
                .enumerate()
                .map(|(j, b)| block(b, i, j))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect(),
            _ => return Err(format!("messages.{i}.content: field required")),
        };
        messages.push(ChatMessage { role, content });
    }
    let mut tools = Vec::new();
    if let Some(list) = v.get("tools").and_then(Value::as_array) {
        for (i, t) in list.iter().enumerate() {
            let name = t.get("name").and_then(Value::as_str).ok_or(format!("tools.{i}.name: field required"))?;
            if t.get("type").is_none() && t.get("input_schema").is_none() {
                return Err(format!("tools.{i}.input_schema: field required"));
            }
            tools.push(ToolDefinition {
                name: name.to_owned(),
                description: t.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
                input_schema: schema_object(t.get("input_schema")),
            });
        }
    }
    Ok(ParsedRequest { model, system, messages, tools, max_tokens: u32::try_from(max_tokens).ok() })
}

fn block(b: &Value, i: usize, j: usize) -> Result<Option<ContentBlock>, String> {
    let at = |field: &str| format!("messages.{i}.content.{j}.{field}: field required");
    Ok(match b.get("type").and_then(Value::as_str) {
        Some("text") => {
            Some(ContentBlock::Text { text: b.get("text").and_then(Value::as_str).ok_or(at("text"))?.to_owned() })
        }
        Some("tool_use") => Some(ContentBlock::ToolUse {
            id: b.get("id").and_then(Value::as_str).ok_or(at("id"))?.to_owned(),
            name: b.get("name").and_then(Value::as_str).ok_or(at("name"))?.to_owned(),
            input: b.get("input").cloned().ok_or(at("input"))?,
        }),
        Some("tool_result") => Some(ContentBlock::ToolResult {
            tool_use_id: b.get("tool_use_id").and_then(Value::as_str).ok_or(at("tool_use_id"))?.to_owned(),
            content: text_of_parts(b.get("content").unwrap_or(&Value::Null)),
            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        }),
        // Thinking, images, documents: not part of the neutral conversation.
        Some(_) => None,
        None => return Err(at("type")),
    })
}

pub(crate) fn reply(r: &ResolvedReply) -> Response {
    let mut content = Vec::new();
    if let Some(text) = &r.text {
        content.push(json!({"type": "text", "text": text}));
    }
    for c in &r.calls {
        let mut block = json!({"type": "tool_use", "name": c.name});
        block["input"] = match &c.arguments {
            FakeArguments::Json(v) => v.clone(),
            FakeArguments::Raw(s) => Value::String(s.clone()),
        };
        if let Some(id) = &c.id {
            block["id"] = json!(id);
        }
        content.push(block);
    }
    let body = json!({
        "id": format!("msg_fake{:06}", r.serial),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": r.stop.to_string(),
        "stop_sequence": null,
        "usage": {
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "cache_creation_input_tokens": r.usage.cache_write_tokens,
            "cache_read_input_tokens": r.usage.cache_read_tokens,
        },
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(crate) fn fault(f: Fault) -> Response {
    let (status, kind, message) = match f {
        Fault::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
        ),
        Fault::Overloaded => {
            (StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE), "overloaded_error", "Overloaded")
        }
        Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "api_error", "Internal server error"),
        Fault::Unauthorized => (StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key"),
        Fault::ModelNotFound => (StatusCode::NOT_FOUND, "not_found_error", "model: not found"),
        Fault::BadRequest | Fault::MaxTokensUnsupported => {
            (StatusCode::BAD_REQUEST, "invalid_request_error", "the request does not follow the Messages API")
        }
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"});
    let mut resp = (status, axum::Json(body)).into_response();
    if let Fault::RateLimited { retry_after_secs } = f {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        resp.headers_mut().insert("retry-after-ms", HeaderValue::from(retry_after_secs.saturating_mul(1000)));
    }
    resp
}

//! The Bedrock Converse side of the fake model: reading `POST /model/{modelId}/converse`
//! (the Bedrock Runtime API's JSON) into the neutral shape and writing answers and errors
//! as Bedrock does (the error's type in `x-amzn-ErrorType`, as the AWS SDK reads it).
//! Requests are SigV4-signed; any signature is accepted.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rez_core::agent::model::{ChatMessage, ContentBlock, Role, StopReason, ToolDefinition};
use serde_json::{Value, json};

use super::{FakeArguments, Fault, ParsedRequest, ResolvedReply, schema_object, text_of_parts};

pub(crate) fn parse(v: &Value, model: String) -> Result<ParsedRequest, String> {
    let raw_messages = v.get("messages").and_then(Value::as_array).ok_or("messages: must not be null")?;
    let mut messages = Vec::with_capacity(raw_messages.len());
    for (i, m) in raw_messages.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => return Err(format!("messages.{i}.role: unexpected role {other:?}")),
        };
        let mut content = Vec::new();
        for (j, b) in m
            .get("content")
            .and_then(Value::as_array)
            .ok_or(format!("messages.{i}.content: must not be null"))?
            .iter()
            .enumerate()
        {
            if let Some(text) = b.get("text").and_then(Value::as_str) {
                content.push(ContentBlock::Text { text: text.to_owned() });
            } else if let Some(tu) = b.get("toolUse") {
                let missing = |f: &str| format!("messages.{i}.content.{j}.toolUse.{f}: must not be null");
                content.push(ContentBlock::ToolUse {
                    id: tu.get("toolUseId").and_then(Value::as_str).ok_or(missing("toolUseId"))?.to_owned(),
                    name: tu.get("name").and_then(Value::as_str).ok_or(missing("name"))?.to_owned(),
                    input: tu.get("input").cloned().ok_or(missing("input"))?,
                });
            } else if let Some(tr) = b.get("toolResult") {
                content.push(ContentBlock::ToolResult {
                    tool_use_id: tr
                        .get("toolUseId")
                        .and_then(Value::as_str)
                        .ok_or(format!("messages.{i}.content.{j}.toolResult.toolUseId: must not be null"))?
                        .to_owned(),
                    content: text_of_parts(tr.get("content").unwrap_or(&Value::Null)),
                    is_error: tr.get("status").and_then(Value::as_str) == Some("error"),
                });
            }
        }
        messages.push(ChatMessage { role, content });
    }
    let system = v.get("system").map(text_of_parts).unwrap_or_default();
    let mut tools = Vec::new();
    for (i, t) in v.pointer("/toolConfig/tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let spec = t.get("toolSpec").ok_or(format!("toolConfig.tools.{i}.toolSpec: must not be null"))?;
        tools.push(ToolDefinition {
            name: spec
                .get("name")
                .and_then(Value::as_str)
                .ok_or(format!("toolConfig.tools.{i}.toolSpec.name: must not be null"))?
                .to_owned(),
            description: spec.get("description").and_then(Value::as_str).unwrap_or_default().to_owned(),
            input_schema: schema_object(spec.pointer("/inputSchema/json")),
        });
    }
    let max_tokens =
        v.pointer("/inferenceConfig/maxTokens").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    Ok(ParsedRequest { model, system, messages, tools, max_tokens })
}

fn stop_reason(stop: &StopReason) -> String {
    match stop {
        StopReason::ContentFilter => "guardrail_intervened".into(),
        StopReason::Refusal => "content_filtered".into(),
        other => other.to_string(),
    }
}

pub(crate) fn reply(r: &ResolvedReply) -> Response {
    let mut content = Vec::new();
    if let Some(text) = &r.text {
        content.push(json!({"text": text}));
    }
    for c in &r.calls {
        let input = match &c.arguments {
            FakeArguments::Json(v) => v.clone(),
            FakeArguments::Raw(s) => Value::String(s.clone()),
        };
        let mut tool_use = json!({"name": c.name, "input": input});
        if let Some(id) = &c.id {
            tool_use["toolUseId"] = json!(id);
        }
        content.push(json!({"toolUse": tool_use}));
    }
    let u = &r.usage;
    let body = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(&r.stop),
        "usage": {
            "inputTokens": u.input_tokens,
            "outputTokens": u.output_tokens,
            "totalTokens": u.total(),
            "cacheReadInputTokens": u.cache_read_tokens,
            "cacheWriteInputTokens": u.cache_write_tokens,
        },
        "metrics": {"latencyMs": 1},
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(crate) fn fault(f: Fault) -> Response {
    let (status, kind, message) = match f {
        Fault::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        Fault::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "The service is temporarily unable to handle the request.",
        ),
        Fault::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "The server encountered an internal error.")
        }
        Fault::Unauthorized => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        Fault::ModelNotFound => {
            (StatusCode::NOT_FOUND, "ResourceNotFoundException", "The model with the specified model ID was not found.")
        }
        Fault::BadRequest | Fault::MaxTokensUnsupported => {
            (StatusCode::BAD_REQUEST, "ValidationException", "The request does not follow the Converse API.")
        }
    };
    let mut resp = (status, axum::Json(json!({"message": message}))).into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    if let Fault::RateLimited { retry_after_secs } = f {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    resp
}

//! [`BedrockModel`]: the agent's [`ModelClient`] on Amazon Bedrock's Converse API, through
//! the official SDK (`aws-sdk-bedrockruntime`), for the AWS deployment: the function's role
//! signs the calls, so no API key exists, and IAM limits the function to the one
//! configured model (see `deploy/template.yaml`, `AgentModelId`).
//!
//! The provider-neutral conversation maps onto Converse without loss: the system prompt is
//! a system block; text, `toolUse` and `toolResult` (status `error` for a failed call) are
//! content blocks with the same ids; tools are `toolSpec`s with their JSON Schema;
//! `maxTokens` is the inference configuration. One `complete` is one HTTP exchange: the
//! SDK's own retries are off, because retries belong to the caller (`rez-models`), which
//! counts and bounds them; errors are classified transient or permanent here, with a
//! message that says what to fix.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types as bedrock;
use aws_smithy_types::{Document, Number};
use rez_core::agent::model::{
    ChatMessage, ContentBlock, ModelClient, ModelError, ModelErrorKind, ModelRequest, ModelResponse, Role, StopReason,
    Usage,
};
use serde_json::Value;

const PROVIDER: &str = "bedrock";

/// A Bedrock model reached through Converse.
#[derive(Clone, Debug)]
pub struct BedrockModel {
    client: aws_sdk_bedrockruntime::Client,
}

impl BedrockModel {
    /// A client from the SDK configuration (region, credentials, and
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` or `AWS_ENDPOINT_URL` if set), with the SDK's
    /// retries off and each call bounded by `timeout`.
    pub fn new(config: &aws_config::SdkConfig, timeout: Duration) -> Self {
        let conf = aws_sdk_bedrockruntime::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build())
            .build();
        Self { client: aws_sdk_bedrockruntime::Client::from_conf(conf) }
    }

    /// A client for a Converse endpoint at `endpoint` (an emulator or a fake) with fixed
    /// test credentials.
    pub async fn for_endpoint(endpoint: &str, region: &str, timeout: Duration) -> Self {
        Self::new(&crate::clients::endpoint_config(endpoint, region, "testing", "testing").await, timeout)
    }
}

#[async_trait]
impl ModelClient for BedrockModel {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let messages = request.messages.iter().map(message).collect::<Result<Vec<_>, _>>()?;
        let mut call = self.client.converse().model_id(&request.model).set_messages(Some(messages)).inference_config(
            bedrock::InferenceConfiguration::builder()
                .max_tokens(i32::try_from(request.max_tokens).unwrap_or(i32::MAX))
                .build(),
        );
        if !request.system.is_empty() {
            call = call.system(bedrock::SystemContentBlock::Text(request.system.clone()));
        }
        if !request.tools.is_empty() {
            let mut config = bedrock::ToolConfiguration::builder();
            for tool in &request.tools {
                let spec = bedrock::ToolSpecification::builder()
                    .name(&tool.name)
                    .description(&tool.description)
                    .input_schema(bedrock::ToolInputSchema::Json(document(&Value::Object(tool.input_schema.clone()))))
                    .build()
                    .map_err(|e| invalid(format!("tool `{}`: {e}", tool.name)))?;
                config = config.tools(bedrock::Tool::ToolSpec(spec));
            }
            call = call.tool_config(config.build().map_err(|e| invalid(format!("tools: {e}")))?);
        }
        let out = call.send().await.map_err(|e| classify(&request.model, e))?;
        let content = match out.output() {
            Some(bedrock::ConverseOutput::Message(m)) => m.content().iter().filter_map(block_of).collect(),
            _ => Vec::new(),
        };
        let usage = out.usage().map(usage_of).unwrap_or_default();
        tracing::debug!(model = %request.model, stop_reason = out.stop_reason().as_str(), input_tokens = usage.input_tokens, output_tokens = usage.output_tokens, "bedrock converse answered");
        Ok(ModelResponse { content, stop_reason: stop_reason(out.stop_reason()), usage, model: request.model.clone() })
    }
}

fn invalid(message: String) -> ModelError {
    ModelError::permanent(PROVIDER, format!("the request cannot be expressed in Converse: {message}"))
}

/// A neutral message as a Converse message.
fn message(m: &ChatMessage) -> Result<bedrock::Message, ModelError> {
    let role = match m.role {
        Role::User => bedrock::ConversationRole::User,
        Role::Assistant => bedrock::ConversationRole::Assistant,
    };
    let mut b = bedrock::Message::builder().role(role);
    for block in &m.content {
        b = b.content(match block {
            ContentBlock::Text { text } => bedrock::ContentBlock::Text(text.clone()),
            ContentBlock::ToolUse { id, name, input } => bedrock::ContentBlock::ToolUse(
                bedrock::ToolUseBlock::builder()
                    .tool_use_id(id)
                    .name(name)
                    .input(document(input))
                    .build()
                    .map_err(|e| invalid(format!("tool use {id}: {e}")))?,
            ),
            ContentBlock::ToolResult { tool_use_id, content, is_error } => bedrock::ContentBlock::ToolResult(
                bedrock::ToolResultBlock::builder()
                    .tool_use_id(tool_use_id)
                    .content(bedrock::ToolResultContentBlock::Text(content.clone()))
                    .set_status(is_error.then_some(bedrock::ToolResultStatus::Error))
                    .build()
                    .map_err(|e| invalid(format!("tool result {tool_use_id}: {e}")))?,
            ),
        });
    }
    b.build().map_err(|e| invalid(format!("message: {e}")))
}

/// A Converse answer block in the neutral shape; blocks the run loop has no use for
/// (reasoning, citations, media) are left out.
fn block_of(b: &bedrock::ContentBlock) -> Option<ContentBlock> {
    match b {
        bedrock::ContentBlock::Text(text) => Some(ContentBlock::Text { text: text.clone() }),
        bedrock::ContentBlock::ToolUse(t) => Some(ContentBlock::ToolUse {
            id: t.tool_use_id().to_owned(),
            name: t.name().to_owned(),
            input: json(t.input()),
        }),
        _ => None,
    }
}

fn stop_reason(r: &bedrock::StopReason) -> StopReason {
    match r.as_str() {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage_of(u: &bedrock::TokenUsage) -> Usage {
    let count = |n: i32| u64::try_from(n).unwrap_or(0);
    Usage {
        input_tokens: count(u.input_tokens()),
        output_tokens: count(u.output_tokens()),
        cache_read_tokens: u.cache_read_input_tokens().map_or(0, count),
        cache_write_tokens: u.cache_write_input_tokens().map_or(0, count),
    }
}

/// JSON as a Smithy document.
pub(crate) fn document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Document::Number(Number::PosInt(u)),
            (None, Some(i), _) => Document::Number(Number::NegInt(i)),
            (None, None, Some(f)) => Document::Number(Number::Float(f)),
            (None, None, None) => Document::Null,
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(document).collect()),
        Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), document(v))).collect::<HashMap<_, _>>())
        }
    }
}

/// A Smithy document as JSON (a non-finite float, which JSON cannot hold, becomes null).
pub(crate) fn json(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(json).collect()),
        Document::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
    }
}

/// A failed call as a [`ModelError`], transient or permanent.
fn classify(model: &str, e: SdkError<ConverseError, HttpResponse>) -> ModelError {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let retry_after = e
        .raw_response()
        .and_then(|r| r.headers().get("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let (kind, message) = match &e {
        SdkError::TimeoutError(_) => (ModelErrorKind::Transient, "no answer within the call's timeout".to_owned()),
        SdkError::DispatchFailure(_) => (ModelErrorKind::Transient, format!("cannot reach Bedrock: {}", chain(&e))),
        SdkError::ResponseError(_) => {
            (ModelErrorKind::Transient, format!("unreadable answer from Bedrock: {}", chain(&e)))
        }
        SdkError::ServiceError(s) => service_error(model, s.err(), status),
        other => (ModelErrorKind::Permanent, format!("the call could not be made: {}", chain(other))),
    };
    tracing::warn!(model, ?status, transient = kind == ModelErrorKind::Transient, "bedrock converse failed");
    ModelError { kind, provider: PROVIDER, status, retry_after, message }
}

fn service_error(model: &str, e: &ConverseError, status: Option<u16>) -> (ModelErrorKind, String) {
    use ModelErrorKind::{Permanent, Transient};
    let detail = e.message().unwrap_or("no detail").to_owned();
    match e {
        ConverseError::ThrottlingException(_) => (Transient, format!("throttled (ThrottlingException): {detail}")),
        ConverseError::ServiceUnavailableException(_) => (Transient, format!("service unavailable: {detail}")),
        ConverseError::ModelNotReadyException(_) => (Transient, format!("model {model} is not ready yet: {detail}")),
        ConverseError::ModelTimeoutException(_) => (Transient, format!("model {model} timed out: {detail}")),
        ConverseError::InternalServerException(_) => (Transient, format!("internal server error: {detail}")),
        ConverseError::AccessDeniedException(_) => (
            Permanent,
            format!(
                "access to model {model} denied: enable the model under Bedrock's model access in this region \
                 and check that the template's AgentModelId is {model} (the role may invoke only that model): {detail}"
            ),
        ),
        ConverseError::ValidationException(_) => (
            Permanent,
            format!(
                "Bedrock refused the request for {model}: {detail}; check REZ_AGENT_MODEL names a model or \
                 inference profile that supports Converse with tools in this region"
            ),
        ),
        ConverseError::ResourceNotFoundException(_) => (
            Permanent,
            format!("model {model} not found in this region: {detail}; check REZ_AGENT_MODEL and AgentModelId"),
        ),
        ConverseError::ModelErrorException(_) => {
            (Permanent, format!("model {model} failed to process the request: {detail}"))
        }
        other => {
            // A success status with an error means the body was not Converse's (a proxy's
            // page, a cut-off answer): as transient as a 5xx.
            let kind = match status {
                Some(429) | Some(500..=599) | Some(200..=299) => Transient,
                _ => Permanent,
            };
            match other.code() {
                Some(code) => (kind, format!("{code}: {detail}")),
                None => (kind, format!("an answer that is not Converse's (HTTP {}): {detail}", status.unwrap_or(0))),
            }
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_document_round_trip() {
        let v = json!({"a": [1, -2, 2.5, null, true, "x"], "b": {"c": {}}, "big": u64::MAX, "min": i64::MIN});
        assert_eq!(json(&document(&v)), v);
    }

    #[test]
    fn unknown_stop_reasons_are_kept_by_name() {
        let r = bedrock::StopReason::from("malformed_tool_use");
        assert_eq!(stop_reason(&r), StopReason::Other("malformed_tool_use".into()));
        assert_eq!(stop_reason(&bedrock::StopReason::from("guardrail_intervened")), StopReason::ContentFilter);
    }
}

//! The message: every unit of work in rez_agent. Field names are the JSON contract kept
//! from the seed (`created_date`, `message_type`, ...).
//!
//! A [`Message`] is only ever built by the server, from a [`NewMessage`] that passed
//! [`NewMessage::from_json`]: the client chooses the type, payload, arguments, stage and
//! idempotency key; the server chooses the id, dates, status and `created_by`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

use crate::error::ValidationError;
use crate::id::MessageId;
use crate::notify::NotifyPayload;
use crate::status::Status;
use crate::time::{Timestamp, serde_rfc3339};

/// The message schema version written by this code.
pub const SCHEMA_VERSION: &str = "1.0";
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What kind of work a message asks for. Unknown values are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Notify,
    WebAction,
    ScheduleCreation,
    Scheduled,
    AgentResponse,
    HelloWorld,
}

impl MessageType {
    pub const ALL: [MessageType; 6] = [
        MessageType::Notify,
        MessageType::WebAction,
        MessageType::ScheduleCreation,
        MessageType::Scheduled,
        MessageType::AgentResponse,
        MessageType::HelloWorld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Notify => "notify",
            MessageType::WebAction => "web_action",
            MessageType::ScheduleCreation => "schedule_creation",
            MessageType::Scheduled => "scheduled",
            MessageType::AgentResponse => "agent_response",
            MessageType::HelloWorld => "hello_world",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deployment stage a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Dev,
    Stage,
    Prod,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Dev, Stage::Stage, Stage::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dev => "dev",
            Stage::Stage => "stage",
            Stage::Prod => "prod",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who created a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreatedBy {
    Api,
    Cli,
    Scheduler,
    Mcp,
    Agent,
    System,
}

impl CreatedBy {
    pub const ALL: [CreatedBy; 6] =
        [CreatedBy::Api, CreatedBy::Cli, CreatedBy::Scheduler, CreatedBy::Mcp, CreatedBy::Agent, CreatedBy::System];

    pub fn as_str(self) -> &'static str {
        match self {
            CreatedBy::Api => "api",
            CreatedBy::Cli => "cli",
            CreatedBy::Scheduler => "scheduler",
            CreatedBy::Mcp => "mcp",
            CreatedBy::Agent => "agent",
            CreatedBy::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

impl fmt::Display for CreatedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most a message may weigh as published: SNS and SQS carry at most 256 KiB per
/// message, attributes included (locally the same limit holds, so both deployments accept
/// the same messages).
pub const MAX_PUBLISHED_BYTES: usize = 256 * 1024;

/// What the intake keeps free below [`MAX_PUBLISHED_BYTES`]: the transport's message
/// attributes and what a message gains after it is accepted (the error text of a failed
/// attempt, at most 2,000 characters, JSON-escaped; its status and retry count), so every
/// later send of it (a retry, a redrive, a DLQ copy) still fits.
pub const PUBLISH_HEADROOM_BYTES: usize = 12 * 1024;

/// The largest message, as published, that the intake accepts.
pub const MAX_ACCEPTED_PUBLISHED_BYTES: usize = MAX_PUBLISHED_BYTES - PUBLISH_HEADROOM_BYTES;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub version: String,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_date: Timestamp,
    pub created_by: CreatedBy,
    pub stage: Stage,
    pub message_type: MessageType,
    pub status: Status,
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    pub retry_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl Message {
    /// Bytes of the message as it is published (its JSON document, the body of the SNS
    /// and SQS messages).
    pub fn published_bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// A new message in status `created`, minted at `now`.
    pub fn create(new: NewMessage, created_by: CreatedBy, now: Timestamp) -> Self {
        Self {
            id: MessageId::new(now),
            version: SCHEMA_VERSION.to_owned(),
            created_date: now,
            updated_date: now,
            created_by,
            stage: new.stage,
            message_type: new.message_type,
            status: Status::Created,
            payload: new.payload,
            arguments: new.arguments,
            idempotency_key: new.idempotency_key,
            retry_count: 0,
            error_message: None,
        }
    }
}

/// A client-chosen key that makes a submission idempotent for 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// 1–255 printable ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(ValidationError::invalid(
                "idempotency_key",
                format!("must be 1–{MAX_IDEMPOTENCY_KEY_LEN} characters"),
            ));
        }
        if !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ValidationError::invalid("idempotency_key", "must be printable ASCII without spaces"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> Self {
        k.0
    }
}

/// What a client may submit: the validated request body of `POST /api/messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub message_type: MessageType,
    pub stage: Stage,
    pub payload: Map<String, Value>,
    pub arguments: Map<String, Value>,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Fields a client may send.
/// `version` may be sent (the seed's clients do) but must be the schema version.
const CLIENT_FIELDS: [&str; 6] = ["message_type", "stage", "payload", "arguments", "idempotency_key", "version"];
/// Fields the server owns; sending them is an error rather than being silently ignored.
const SERVER_FIELDS: [&str; 7] =
    ["id", "created_date", "updated_date", "created_by", "status", "retry_count", "error_message"];

impl NewMessage {
    /// Parse and validate a request body. `default_stage` applies when `stage` is absent.
    pub fn from_json(body: &Value, default_stage: Stage) -> Result<Self, ValidationError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("invalid_body", "", "the request body must be a JSON object"))?;
        for key in obj.keys() {
            if SERVER_FIELDS.contains(&key.as_str()) {
                return Err(ValidationError::new(
                    "read_only_field",
                    key.clone(),
                    format!("`{key}` is set by the server and must not be sent"),
                ));
            }
            if !CLIENT_FIELDS.contains(&key.as_str()) {
                return Err(ValidationError::new(
                    "unknown_field",
                    key.clone(),
                    format!("unknown field `{key}`; expected one of {}", CLIENT_FIELDS.join(", ")),
                ));
            }
        }

        match obj.get("version") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == SCHEMA_VERSION => {}
            Some(_) => {
                return Err(ValidationError::invalid(
                    "version",
                    format!("the only schema version is \"{SCHEMA_VERSION}\""),
                ));
            }
        }
        let message_type = match obj.get("message_type") {
            None | Some(Value::Null) => return Err(ValidationError::missing("message_type")),
            Some(Value::String(s)) => MessageType::parse(s).ok_or_else(|| {
                ValidationError::new(
                    "unknown_message_type",
                    "message_type",
                    format!(
                        "unknown message_type `{}`; expected one of {}",
                        s.chars().take(64).collect::<String>(),
                        MessageType::ALL.map(|t| t.as_str()).join(", ")
                    ),
                )
            })?,
            Some(_) => return Err(ValidationError::invalid("message_type", "must be a string")),
        };

        let stage = match obj.get("stage") {
            None | Some(Value::Null) => default_stage,
            Some(Value::String(s)) => Stage::parse(s).ok_or_else(|| {
                ValidationError::invalid(
                    "stage",
                    format!("unknown stage; expected one of {}", Stage::ALL.map(|s| s.as_str()).join(", ")),
                )
            })?,
            Some(_) => return Err(ValidationError::invalid("stage", "must be a string")),
        };

        let payload = object_field(obj, "payload")?;
        let arguments = object_field(obj, "arguments")?;

        let idempotency_key = match obj.get("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(IdempotencyKey::parse(s)?),
            Some(_) => return Err(ValidationError::invalid("idempotency_key", "must be a string")),
        };

        let new = NewMessage { message_type, stage, payload, arguments, idempotency_key };
        new.validate_payload()?;
        Ok(new)
    }

    /// Per-type payload validation. `notify` is validated fully; types whose issues have
    /// not landed yet are accepted as JSON objects.
    pub fn validate_payload(&self) -> Result<(), ValidationError> {
        match self.message_type {
            MessageType::Notify => NotifyPayload::from_payload(&self.payload).map(|_| ()),
            MessageType::HelloWorld => match self.payload.get("message") {
                None | Some(Value::String(_)) => Ok(()),
                Some(_) => Err(ValidationError::invalid("payload.message", "must be a string")),
            },
            MessageType::ScheduleCreation => {
                const ACTIONS: [&str; 6] = ["create", "update", "delete", "pause", "resume", "execute"];
                match self.arguments.get("action") {
                    Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => Ok(()),
                    Some(Value::String(_)) => Err(ValidationError::invalid(
                        "arguments.action",
                        format!("must be one of {}", ACTIONS.join(", ")),
                    )),
                    None | Some(Value::Null) => Err(ValidationError::missing("arguments.action")),
                    Some(_) => Err(ValidationError::invalid("arguments.action", "must be a string")),
                }
            }
            MessageType::WebAction => {
                crate::web_action::WebActionRequest::validate_payload(&self.payload, &self.arguments)
            }
            MessageType::Scheduled | MessageType::AgentResponse => Ok(()),
        }
    }
}

fn object_field(obj: &Map<String, Value>, name: &str) -> Result<Map<String, Value>, ValidationError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ValidationError::invalid(name, "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewMessage, ValidationError> {
        NewMessage::from_json(&v, Stage::Dev)
    }

    #[test]
    fn accepts_a_minimal_notify() {
        let m = parse(json!({"message_type": "notify", "payload": {"message": "hi"}})).unwrap();
        assert_eq!(m.message_type, MessageType::Notify);
        assert_eq!(m.stage, Stage::Dev);
        assert!(m.arguments.is_empty());
    }

    #[test]
    fn rejects_unknown_type_with_the_list() {
        let e = parse(json!({"message_type": "notification", "payload": {"message": "x"}})).unwrap_err();
        assert_eq!(e.code, "unknown_message_type");
        assert!(e.message.contains("notify"), "{}", e.message);
    }

    #[test]
    fn accepts_the_seed_format_with_its_version() {
        parse(json!({"message_type": "notify", "stage": "dev", "version": "1.0", "payload": {"message": "x"}}))
            .unwrap();
        assert_eq!(
            parse(json!({"message_type": "notify", "version": "2.0", "payload": {"message": "x"}})).unwrap_err().field,
            "version"
        );
    }

    #[test]
    fn rejects_server_fields_and_unknown_fields() {
        assert_eq!(
            parse(json!({"message_type": "notify", "status": "completed"})).unwrap_err().code,
            "read_only_field"
        );
        assert_eq!(parse(json!({"message_type": "notify", "paylod": {}})).unwrap_err().code, "unknown_field");
    }

    #[test]
    fn rejects_wrong_types() {
        assert_eq!(parse(json!([1, 2])).unwrap_err().code, "invalid_body");
        assert_eq!(parse(json!({"message_type": 3})).unwrap_err().field, "message_type");
        assert_eq!(parse(json!({"message_type": "web_action", "payload": "x"})).unwrap_err().field, "payload");
        assert_eq!(parse(json!({"message_type": "notify", "payload": "x"})).unwrap_err().field, "payload");
        assert_eq!(parse(json!({"message_type": "web_action", "stage": "qa"})).unwrap_err().field, "stage");
        assert_eq!(parse(json!({"payload": {}})).unwrap_err().code, "missing_field");
    }

    #[test]
    fn notify_needs_a_message() {
        let e = parse(json!({"message_type": "notify", "payload": {"title": "t"}})).unwrap_err();
        assert_eq!(e.field, "payload.message");
    }

    #[test]
    fn other_types_accept_any_object() {
        parse(json!({"message_type": "web_action", "payload": {"action": "weather"}, "arguments": {"operation": "x"}}))
            .unwrap();
        parse(json!({"message_type": "schedule_creation", "arguments": {"action": "pause", "schedule_id": "x"}}))
            .unwrap();
        assert_eq!(parse(json!({"message_type": "schedule_creation"})).unwrap_err().field, "arguments.action");
    }

    #[test]
    fn message_json_uses_contract_names() {
        let now = chrono::Utc::now();
        let new =
            parse(json!({"message_type": "notify", "payload": {"message": "hi"}, "idempotency_key": "k1"})).unwrap();
        let m = Message::create(new, CreatedBy::Api, now);
        let v = serde_json::to_value(&m).unwrap();
        for k in [
            "id",
            "version",
            "created_date",
            "updated_date",
            "created_by",
            "stage",
            "message_type",
            "status",
            "payload",
            "arguments",
            "idempotency_key",
            "retry_count",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["status"], "created");
        assert_eq!(v["created_by"], "api");
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back.id, m.id);
    }

    proptest! {
        #[test]
        fn from_json_never_panics(s in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = NewMessage::from_json(&v, Stage::Dev);
            }
        }

        #[test]
        fn idempotency_key_bounds(k in "[!-~]{1,255}") {
            prop_assert!(IdempotencyKey::parse(&k).is_ok());
        }
    }
}

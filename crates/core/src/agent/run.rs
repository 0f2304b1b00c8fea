//! An agent run: what was asked, where it stands, and every step it took. The steps are the
//! durable record the run loop resumes from: a stored model turn is never requested again
//! and a stored tool result never executed again (see `rez-runtime::agent`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::approval::ApprovalPolicy;
use super::model::{ContentBlock, StopReason, Usage};
use super::money::Nanodollars;
use crate::error::ValidationError;
use crate::id::{AttemptId, ChatSessionId, MessageId, RunId, ScheduleId};
use crate::message::{CreatedBy, IdempotencyKey};
use crate::time::{Timestamp, serde_rfc3339, serde_rfc3339_opt};

/// The longest prompt accepted (characters).
pub const MAX_PROMPT_CHARS: usize = 8192;

/// What a run is asked to do: the body of `POST /api/agent/runs`, an `agent` schedule's
/// target and an `agent_response` message's payload, parsed by one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentRequest {
    pub prompt: String,
    /// A course id or name the run is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course: Option<String>,
    /// Players to book for (1–4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub players: Option<u8>,
    /// May the run book? Without it the booking tool is not offered: the run finds and
    /// proposes.
    #[serde(default)]
    pub auto_book: bool,
    /// Push the outcome (default true).
    #[serde(default = "yes")]
    pub notify: bool,
    /// `required`: every side-effecting call waits for the user's approval.
    #[serde(default)]
    pub approval: ApprovalPolicy,
}

fn yes() -> bool {
    true
}

impl AgentRequest {
    /// The fields of a request.
    pub const FIELDS: [&'static str; 6] = ["prompt", "course", "players", "auto_book", "notify", "approval"];

    /// Parse a request object; `at` prefixes field names in errors (`target`, `payload`,
    /// or empty for a request body).
    pub fn from_json(obj: &Map<String, Value>, at: &str) -> Result<Self, ValidationError> {
        let field = |k: &str| if at.is_empty() { k.to_owned() } else { format!("{at}.{k}") };
        if let Some(k) = obj.keys().find(|k| !Self::FIELDS.contains(&k.as_str())) {
            return Err(ValidationError::new(
                "unknown_field",
                field(k),
                format!(
                    "unknown field `{k}`; an agent request is {{prompt, course?, players?, auto_book?, notify?, approval?}}"
                ),
            ));
        }
        let prompt = match obj.get("prompt") {
            Some(Value::String(p)) if !p.trim().is_empty() && p.chars().count() <= MAX_PROMPT_CHARS => p.clone(),
            Some(Value::String(_)) => {
                return Err(ValidationError::invalid(
                    field("prompt"),
                    format!("must be 1–{MAX_PROMPT_CHARS} characters"),
                ));
            }
            None | Some(Value::Null) => return Err(ValidationError::missing(field("prompt"))),
            Some(_) => return Err(ValidationError::invalid(field("prompt"), "must be a string")),
        };
        let course = match obj.get("course") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if !c.trim().is_empty() && c.len() <= 100 => Some(c.trim().to_owned()),
            Some(_) => return Err(ValidationError::invalid(field("course"), "must be a course id or name")),
        };
        let players = match obj.get("players") {
            None | Some(Value::Null) => None,
            Some(p) => match p.as_u64() {
                Some(n @ 1..=4) => Some(n as u8),
                _ => return Err(ValidationError::invalid(field("players"), "must be 1–4")),
            },
        };
        let flag = |k: &str, default: bool| match obj.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ValidationError::invalid(field(k), "must be a boolean")),
        };
        let approval = match obj.get("approval") {
            None | Some(Value::Null) => ApprovalPolicy::None,
            Some(Value::String(a)) => ApprovalPolicy::parse(a)
                .ok_or_else(|| ValidationError::invalid(field("approval"), "must be none or required"))?,
            Some(_) => return Err(ValidationError::invalid(field("approval"), "must be none or required")),
        };
        Ok(Self {
            prompt,
            course,
            players,
            auto_book: flag("auto_book", false)?,
            notify: flag("notify", true)?,
            approval,
        })
    }

    /// The request as a JSON object (an `agent_response` message's payload).
    pub fn to_object(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// Where a run stands: `queued`, `running` and `awaiting_approval` are not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, waiting for an agent worker.
    Queued,
    /// A worker is taking its steps (or crashed doing so: the next delivery resumes it).
    Running,
    Completed,
    Failed,
    /// It used `max_turns` model turns without finishing.
    MaxTurns,
    /// A model call would have passed the run's or the day's budget.
    BudgetExceeded,
    Cancelled,
    /// Paused on a side-effecting call until the user decides (no worker is held).
    AwaitingApproval,
    /// The user did not answer an approval before its deadline.
    ApprovalExpired,
}

impl RunStatus {
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::MaxTurns,
        RunStatus::BudgetExceeded,
        RunStatus::Cancelled,
        RunStatus::AwaitingApproval,
        RunStatus::ApprovalExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::MaxTurns => "max_turns",
            RunStatus::BudgetExceeded => "budget_exceeded",
            RunStatus::Cancelled => "cancelled",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::ApprovalExpired => "approval_expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingApproval)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ownership of a running run: the delivery working on it and until when. While it is
/// live no other delivery takes a step (every step write is conditional on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    pub attempt: AttemptId,
    #[serde(with = "serde_rfc3339")]
    pub until: Timestamp,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRun {
    pub id: RunId,
    pub request: AgentRequest,
    pub status: RunStatus,
    pub created_by: CreatedBy,
    /// The `agent_response` message that carries the run through the agent queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<ScheduleId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<ChatSessionId>,
    /// `anthropic`, `openai` or `bedrock`; and the model id.
    pub provider: String,
    pub model: String,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_rfc3339_opt")]
    pub finished_at: Option<Timestamp>,
    /// Steps stored so far (the next step's index).
    pub steps: u32,
    /// Model turns stored so far.
    pub turns: u32,
    pub usage: Usage,
    pub cost: Nanodollars,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Someone asked to cancel; the worker stops before its next step.
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<RunLease>,
}

impl AgentRun {
    /// A new run, `queued`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: RunId,
        request: AgentRequest,
        created_by: CreatedBy,
        message_id: Option<MessageId>,
        schedule_id: Option<ScheduleId>,
        session_id: Option<ChatSessionId>,
        provider: &str,
        model: &str,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            request,
            status: RunStatus::Queued,
            created_by,
            message_id,
            schedule_id,
            session_id,
            provider: provider.to_owned(),
            model: model.to_owned(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            steps: 0,
            turns: 0,
            usage: Usage::default(),
            cost: Nanodollars::ZERO,
            answer: None,
            error: None,
            cancel_requested: false,
            lease: None,
        }
    }
}

/// One model turn, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTurn {
    pub model: String,
    /// Size of the request's variable parts (system, messages, tools), bytes.
    pub request_bytes: u64,
    /// What the model answered (text and tool calls).
    pub content: Vec<ContentBlock>,
    pub stop_reason: StopReason,
    pub usage: Usage,
    pub cost: Nanodollars,
    /// Wall time of the call, retries included.
    pub latency_ms: u64,
    /// HTTP attempts it took (1 without retries).
    pub attempts: u32,
}

/// One tool call, as stored: first when it starts (no outcome), then with its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The model's id for the call (`tool_use` id), answered by the tool result.
    pub call_id: String,
    pub name: String,
    pub arguments: Value,
    /// Derived from (run id, step index): every message the call records carries it, so
    /// a call executed again after a crash is the same message, and the same booking.
    pub idempotency_key: IdempotencyKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ToolOutcome>,
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutcome {
    /// The readable result the model is given.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<Value>,
    pub is_error: bool,
    /// The message the call recorded, if it acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    pub duration_ms: u64,
}

/// What a step was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    ModelTurn(ModelTurn),
    ToolCall(ToolCall),
}

/// One step of a run, numbered from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub index: u32,
    #[serde(with = "serde_rfc3339")]
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// The idempotency key of the tool call at `step` of `run`.
pub fn tool_call_key(run: &RunId, step: u32) -> IdempotencyKey {
    // A run id is 30 ASCII characters and a step index at most 10 digits: always valid.
    IdempotencyKey::parse(&format!("{run}.{step}")).unwrap_or_else(|_| unreachable_key())
}

fn unreachable_key() -> IdempotencyKey {
    IdempotencyKey::parse("agent-step").unwrap_or_else(|_| unreachable!("a constant key is valid"))
}

/// The run a message was recorded by, read back from its idempotency key.
pub fn run_of_key(key: &IdempotencyKey) -> Option<(RunId, u32)> {
    let (run, step) = key.as_str().rsplit_once('.')?;
    Some((RunId::parse(run).ok()?, step.parse().ok()?))
}

/// One exchange of a chat session: what the user said and what the run answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatExchange {
    pub run_id: RunId,
    pub user: String,
    pub assistant: String,
    #[serde(with = "serde_rfc3339")]
    pub at: Timestamp,
}

/// A chat session: its exchanges, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSession {
    pub id: ChatSessionId,
    #[serde(with = "serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "serde_rfc3339")]
    pub updated_at: Timestamp,
    pub exchanges: Vec<ChatExchange>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn requests_are_parsed_with_named_fields() {
        let r = AgentRequest::from_json(&obj(json!({"prompt": "book", "players": 4, "auto_book": true})), "").unwrap();
        assert_eq!((r.players, r.auto_book, r.notify), (Some(4), true, true));
        for (body, field) in [
            (json!({}), "target.prompt"),
            (json!({"prompt": " "}), "target.prompt"),
            (json!({"prompt": "x", "players": 5}), "target.players"),
            (json!({"prompt": "x", "notify": "no"}), "target.notify"),
            (json!({"prompt": "x", "url": "http://x"}), "target.url"),
        ] {
            assert_eq!(AgentRequest::from_json(&obj(body), "target").unwrap_err().field, field);
        }
        let back = AgentRequest::from_json(&r.to_object(), "").unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_step_key_names_its_run() {
        let run = RunId::new(chrono::Utc::now());
        let key = tool_call_key(&run, 12);
        assert_eq!(run_of_key(&key), Some((run, 12)));
        assert_eq!(run_of_key(&IdempotencyKey::parse("mcp-book-1").unwrap()), None);
    }

    #[test]
    fn steps_round_trip() {
        let s = Step {
            index: 1,
            at: chrono::Utc::now(),
            kind: StepKind::ToolCall(ToolCall {
                call_id: "tu_1".into(),
                name: "list_courses".into(),
                arguments: json!({}),
                idempotency_key: IdempotencyKey::parse("k").unwrap(),
                outcome: None,
            }),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["kind"], "tool_call");
        let back: Step = serde_json::from_value(v).unwrap();
        assert_eq!(back.index, 1);
        assert_eq!(back.kind, s.kind);
    }
}

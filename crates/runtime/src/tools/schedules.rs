//! The schedule tools. Changes go through the bus like any client's: the tool validates
//! the request with the same parser as the API (`ScheduleSpec`), submits a
//! `schedule_creation` message (the record of the call), waits for the schedule consumer to
//! apply it through the `Schedules` service, and reads the schedule back to answer.
//! Listing reads the service directly and records nothing.

use rez_core::ScheduleId;
use rez_core::message::{IdempotencyKey, Message, MessageType, NewMessage};
use rez_core::ports::{ScheduleFilter, StoreError};
use rez_core::schedule_spec::ScheduleSpec;
use rez_core::schedules::{Schedule, ScheduleStatus, TargetType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::schema::parse_args;
use super::wait::{Settled, pending_text};
use super::{ToolResult, Tools};
use crate::scheduling::ScheduleError;

/// What a schedule sends when it fires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetKind {
    /// target = {payload: {message, title?, priority?, tags?, click?}}
    Notify,
    /// target = {payload: {action: "weather" | "golf", course?, ...}, arguments: {operation?, ...}}
    WebAction,
    /// target = {prompt, course?, players?, auto_book?}
    Agent,
    /// target = any message body {message_type, payload?, arguments?}
    Message,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusFilter {
    Active,
    Paused,
    Completed,
    Error,
    Deleted,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSchedule {
    /// A short name, e.g. "Friday tee-time reminder".
    name: String,
    /// cron(min hour day-of-month month day-of-week year), rate(N unit) or at(YYYY-MM-DDTHH:MM:SS).
    schedule_expression: String,
    /// IANA time zone the expression is evaluated in, e.g. "America/New_York" (default UTC).
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    description: Option<String>,
    target_type: TargetKind,
    /// The message template; its shape depends on target_type (see the tool description).
    target: Map<String, Value>,
    /// Fire at a random moment within this many minutes after each occurrence (0–1440, default 0).
    #[serde(default)]
    #[schemars(range(max = 1440))]
    flexible_time_window_minutes: Option<u32>,
    /// First instant the schedule may fire, RFC 3339 (optional).
    #[serde(default)]
    start_date: Option<String>,
    /// Last instant the schedule may fire, RFC 3339 (optional).
    #[serde(default)]
    end_date: Option<String>,
    /// Create it paused.
    #[serde(default)]
    paused: Option<bool>,
    /// Optional. A repeat of this call with the same key within 24 h returns the first schedule.
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListSchedules {
    /// Only schedules in this status (default: all but deleted).
    #[serde(default)]
    status: Option<StatusFilter>,
    /// Only schedules with this target type.
    #[serde(default)]
    target_type: Option<TargetKind>,
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// next_cursor of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleRef {
    /// The schedule's id, e.g. "sch_01J...", from create_schedule or list_schedules.
    schedule_id: String,
}

/// A schedule after a change.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ScheduleOutput {
    /// The `schedule_creation` message recording this call.
    message_id: String,
    /// Whether the change has been applied; when false, ask get_message_status later.
    done: bool,
    /// The schedule as the API shows it (id, name, status, next_fire_at, ...); null while queued.
    schedule: Value,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SchedulesOutput {
    /// Schedules, newest first, as the API shows them.
    schedules: Vec<Value>,
    /// Pass as cursor to get the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Pause,
    Resume,
    Delete,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Change::Pause => "pause",
            Change::Resume => "resume",
            Change::Delete => "delete",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Change::Pause => "paused",
            Change::Resume => "resumed",
            Change::Delete => "deleted",
        }
    }
}

fn schedule_json(s: &Schedule) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

fn describe(s: &Schedule) -> String {
    let next = s
        .next_fire_at
        .map(|t| format!("next fires {}", rez_core::time::rfc3339(&t)))
        .unwrap_or_else(|| "will not fire again".into());
    format!(
        "Schedule {} \"{}\": {} in {}, {}, {}.",
        s.id,
        s.name,
        s.schedule_expression,
        s.timezone.name(),
        s.status,
        if s.status == ScheduleStatus::Active { next } else { "not firing".into() }
    )
}

/// The fields of a create request as the API (and the schedule consumer) name them.
fn spec_fields(input: &CreateSchedule) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("name".into(), json!(input.name));
    f.insert("schedule_expression".into(), json!(input.schedule_expression));
    if let Some(tz) = &input.timezone {
        f.insert("timezone".into(), json!(tz));
    }
    if let Some(d) = &input.description {
        f.insert("description".into(), json!(d));
    }
    f.insert("target_type".into(), serde_json::to_value(input.target_type).unwrap_or(Value::Null));
    f.insert("target".into(), Value::Object(input.target.clone()));
    if let Some(w) = input.flexible_time_window_minutes {
        f.insert("flexible_time_window_minutes".into(), json!(w));
    }
    if let Some(d) = &input.start_date {
        f.insert("start_date".into(), json!(d));
    }
    if let Some(d) = &input.end_date {
        f.insert("end_date".into(), json!(d));
    }
    if input.paused == Some(true) {
        f.insert("status".into(), json!("paused"));
    }
    f
}

/// Whether `s` is the schedule the consumer made from `spec` for a message created at
/// `message`'s time.
fn made_from(s: &Schedule, spec: &ScheduleSpec, message: &Message) -> bool {
    s.created_date >= message.created_date
        && s.name == spec.name
        && s.schedule_expression == spec.schedule_expression
        && s.timezone == spec.timezone
        && s.target_type == spec.target_type
        && s.target == spec.target
}

fn schedule_error(e: ScheduleError) -> ToolResult {
    match e {
        ScheduleError::Store(StoreError::NotFound(_)) => {
            ToolResult::error("schedule_id: no such schedule (see list_schedules)")
        }
        other => ToolResult::error(other.to_string()),
    }
}

impl Tools<'_> {
    fn schedule_message(&self, arguments: Map<String, Value>, key: Option<IdempotencyKey>) -> NewMessage {
        NewMessage {
            message_type: MessageType::ScheduleCreation,
            stage: self.services.stage,
            payload: Map::new(),
            arguments,
            idempotency_key: key,
        }
    }

    pub(crate) async fn create_schedule(&self, args: Map<String, Value>) -> ToolResult {
        let input: CreateSchedule = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let mut fields = spec_fields(&input);
        // The same validation the API applies, so mistakes come back now, naming the field.
        let spec = match ScheduleSpec::from_object(&fields, self.services.stage) {
            Ok(s) => s,
            Err(e) => return ToolResult::error(e.to_string()),
        };
        let key = match &input.idempotency_key {
            None => None,
            Some(k) if k.is_empty() || k.len() > 128 => {
                return ToolResult::error("idempotency_key: must be 1–128 characters");
            }
            Some(_) => {
                let digest = Sha256::digest(serde_json::to_string(&input).unwrap_or_default().as_bytes());
                let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
                IdempotencyKey::parse(&format!("mcp-schedule-{hex}")).ok()
            }
        };
        fields.insert("action".into(), json!("create"));
        let settled = match self.submit_and_wait(self.schedule_message(fields, key), self.options.wait).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        match settled {
            Settled::Completed { message, .. } => {
                let filter = ScheduleFilter { limit: 100, ..Default::default() };
                let found = match self.services.schedules.list(&filter).await {
                    // Newest first: the last match is the one created right after the message.
                    Ok(page) => page.items.into_iter().rev().find(|s| made_from(s, &spec, &message)),
                    Err(e) => return ToolResult::error_for(message.id, format!("reading the schedule failed: {e}")),
                };
                let text = match &found {
                    Some(s) => format!("Created. {}", describe(s)),
                    None => format!(
                        "Created (message {}); it is no longer listed, so it may have completed or been deleted.",
                        message.id
                    ),
                };
                let out = ScheduleOutput {
                    message_id: message.id.to_string(),
                    done: true,
                    schedule: found.as_ref().map(schedule_json).unwrap_or(Value::Null),
                };
                ToolResult::ok(out, text, Some(message.id))
            }
            Settled::Failed { message, .. } => failed(message),
            Settled::Pending { message, picked_up } => pending(&message, picked_up),
        }
    }

    pub(crate) async fn list_schedules(&self, args: Map<String, Value>) -> ToolResult {
        let input: ListSchedules = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let limit = input.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return ToolResult::error(format!("limit: must be 1–100 (got {limit})"));
        }
        let filter = ScheduleFilter {
            status: input.status.map(|s| match s {
                StatusFilter::Active => ScheduleStatus::Active,
                StatusFilter::Paused => ScheduleStatus::Paused,
                StatusFilter::Completed => ScheduleStatus::Completed,
                StatusFilter::Error => ScheduleStatus::Error,
                StatusFilter::Deleted => ScheduleStatus::Deleted,
            }),
            target_type: input.target_type.map(|t| match t {
                TargetKind::Notify => TargetType::Notify,
                TargetKind::WebAction => TargetType::WebAction,
                TargetKind::Agent => TargetType::Agent,
                TargetKind::Message => TargetType::Message,
            }),
            limit: limit as usize,
            cursor: input.cursor,
        };
        let page = match self.services.schedules.list(&filter).await {
            Ok(p) => p,
            Err(ScheduleError::Store(StoreError::InvalidCursor)) => {
                return ToolResult::error("cursor: not a next_cursor from list_schedules");
            }
            Err(e) => return ToolResult::error(e.to_string()),
        };
        let mut text = if page.items.is_empty() {
            "No schedules.".to_owned()
        } else {
            format!("{} schedule(s):", page.items.len())
        };
        for s in &page.items {
            text.push_str("\n- ");
            text.push_str(&describe(s));
        }
        if page.next_cursor.is_some() {
            text.push_str("\nMore: pass next_cursor as cursor.");
        }
        let out = SchedulesOutput {
            schedules: page.items.iter().map(schedule_json).collect(),
            next_cursor: page.next_cursor,
        };
        ToolResult::ok(out, text, None)
    }

    pub(crate) async fn change_schedule(&self, args: Map<String, Value>, change: Change) -> ToolResult {
        let input: ScheduleRef = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let id = match ScheduleId::parse(input.schedule_id.trim()) {
            Ok(id) => id,
            Err(e) => return ToolResult::error(format!("schedule_id: {}", e.message)),
        };
        // A missing schedule is refused now rather than dead-lettering a message.
        match self.services.schedules.get(&id).await {
            Ok(s) if s.status == ScheduleStatus::Deleted => {
                return ToolResult::error("schedule_id: that schedule has been deleted");
            }
            Ok(_) => {}
            Err(e) => return schedule_error(e),
        }
        let mut arguments = Map::new();
        arguments.insert("action".into(), json!(change.action()));
        arguments.insert("schedule_id".into(), json!(id.as_str()));
        let settled = match self.submit_and_wait(self.schedule_message(arguments, None), self.options.wait).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        match settled {
            Settled::Completed { message, .. } => {
                let schedule = self.services.schedules.get(&id).await.ok();
                let text = match &schedule {
                    Some(s) => format!("{}. {}", capitalize(change.done()), describe(s)),
                    None => format!("Schedule {id} {}.", change.done()),
                };
                let out = ScheduleOutput {
                    message_id: message.id.to_string(),
                    done: true,
                    schedule: schedule.as_ref().map(schedule_json).unwrap_or(Value::Null),
                };
                ToolResult::ok(out, text, Some(message.id))
            }
            Settled::Failed { message, .. } => failed(message),
            Settled::Pending { message, picked_up } => pending(&message, picked_up),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn failed(message: Message) -> ToolResult {
    let why = message.error_message.clone().unwrap_or_else(|| "no reason recorded".into());
    ToolResult::error_for(message.id.clone(), format!("Not done (message {}): {why}", message.id))
}

fn pending(message: &Message, picked_up: bool) -> ToolResult {
    let out = ScheduleOutput { message_id: message.id.to_string(), done: false, schedule: Value::Null };
    ToolResult::ok(out, pending_text(message, picked_up), Some(message.id.clone()))
}

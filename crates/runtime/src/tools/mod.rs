//! The tool registry (SPEC §7): the one list of tools the MCP server offers and the agent
//! will use. Each tool has a name, a description written for a model, JSON Schemas for its
//! input and output (generated from the Rust types below with schemars, the version rmcp
//! uses), and a handler that acts through the same runtime services as the HTTP API —
//! intake, the schedule service, the stores — so nothing is implemented twice.
//!
//! A tool never fails the protocol: a bad argument, a refused request or a failed action
//! is a [`ToolResult`] with `is_error` set and a message a model can act on. Only an
//! unknown tool name is an error of the call itself ([`ToolError`]).
//!
//! Every call that acts is recorded as a message created by the caller (`mcp`), so it is
//! visible in the API: notifications are `notify` messages, weather and golf are
//! `web_action` messages (the tool waits for their result), schedule changes are
//! `schedule_creation` messages (the tool waits for the schedule consumer, then reads the
//! schedule back). Read-only tools (`list_courses`, `list_schedules`,
//! `get_message_status`) have no side effect and record nothing.

mod messages;
mod notify;
mod schedules;
mod schema;
mod wait;
mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rez_core::MessageId;
use rez_core::auth::Scope;
use rez_core::message::{CreatedBy, IdempotencyKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Services;

// The binary provides the list (from `rez-actions`' course configuration).
/// A golf course: where it is and what it is called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CourseInfo {
    /// The id to pass as `course` to the golf and weather tools, e.g. `birdsfoot`.
    pub id: String,
    pub name: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone of the course; tee times are in this zone.
    pub time_zone: String,
}

/// Who is calling: recorded as the `created_by` of the messages a call creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub created_by: CreatedBy,
    /// The scope of the key that made the call; `None` for a caller without one (stdio,
    /// the loopback-only `REZ_MCP_AUTH=none`, the agent), which is trusted like the admin CLI.
    pub scope: Option<Scope>,
    /// The idempotency key of the message the call records, replacing any the tool would
    /// derive: the agent passes its (run, step) key, so a call executed again after a crash
    /// is the same message — the same notification, the same booking.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl CallContext {
    /// A call over MCP without a key.
    pub fn mcp() -> Self {
        Self { created_by: CreatedBy::Mcp, scope: None, idempotency_key: None }
    }

    /// A call over MCP authenticated by a key with `scope`.
    pub fn mcp_with_scope(scope: Scope) -> Self {
        Self { created_by: CreatedBy::Mcp, scope: Some(scope), idempotency_key: None }
    }

    /// A call by an agent run, at the step whose key is `key`.
    pub fn agent(key: IdempotencyKey) -> Self {
        Self { created_by: CreatedBy::Agent, scope: None, idempotency_key: Some(key) }
    }
}

/// How long tools wait for the work they queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolOptions {
    /// Web actions and schedule changes: after this the tool answers "still running"
    /// with the message id.
    pub wait: Duration,
    /// Notifications: after this the tool answers "queued" with the message id.
    pub notify_wait: Duration,
    /// If no worker has picked the message up after this, answer early: nothing is
    /// processing the queues (`rez mcp` without a running `rez serve`).
    pub pickup_grace: Duration,
    /// How often the message is looked at while waiting.
    pub poll: Duration,
}

impl Default for ToolOptions {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(60),
            notify_wait: Duration::from_secs(10),
            pickup_grace: Duration::from_secs(10),
            poll: Duration::from_millis(100),
        }
    }
}

/// What a tool is, for listings (MCP `tools/list`, the agent's tool definitions).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    /// A short human-readable title.
    pub title: &'static str,
    /// What the tool does and when to use it, written for a model.
    pub description: &'static str,
    /// JSON Schema (2020-12) of the arguments object.
    pub input_schema: Map<String, Value>,
    /// JSON Schema (2020-12) of the structured content of a successful result.
    pub output_schema: Map<String, Value>,
    /// Behaviour hints (MCP tool annotations).
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// Whether the tool reaches services outside rez_agent (ntfy, NOAA, cps.golf).
    pub open_world: bool,
}

/// The outcome of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// Structured content, conforming to the tool's output schema; `None` on errors.
    pub structured: Option<Value>,
    /// The same outcome as readable text.
    pub text: String,
    /// The call failed; `text` says why and what to do.
    pub is_error: bool,
    /// The message recorded for this call, if it acted.
    pub message_id: Option<MessageId>,
}

impl ToolResult {
    pub(crate) fn ok(structured: impl Serialize, text: impl Into<String>, message_id: Option<MessageId>) -> Self {
        match serde_json::to_value(structured) {
            Ok(v) => Self { structured: Some(v), text: text.into(), is_error: false, message_id },
            Err(e) => Self::error(format!("the result could not be encoded: {e}")),
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self { structured: None, text: text.into(), is_error: true, message_id: None }
    }

    pub(crate) fn error_for(message_id: MessageId, text: impl Into<String>) -> Self {
        Self { structured: None, text: text.into(), is_error: true, message_id: Some(message_id) }
    }
}

/// A call that names no tool of this registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
}

/// The tools, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolName {
    SendPushNotification,
    GetWeatherForecast,
    GolfSearchTeeTimes,
    GolfBookTeeTime,
    GolfGetReservations,
    ListCourses,
    CreateSchedule,
    ListSchedules,
    PauseSchedule,
    ResumeSchedule,
    DeleteSchedule,
    GetMessageStatus,
}

impl ToolName {
    pub const ALL: [ToolName; 12] = [
        ToolName::SendPushNotification,
        ToolName::GetWeatherForecast,
        ToolName::GolfSearchTeeTimes,
        ToolName::GolfBookTeeTime,
        ToolName::GolfGetReservations,
        ToolName::ListCourses,
        ToolName::CreateSchedule,
        ToolName::ListSchedules,
        ToolName::PauseSchedule,
        ToolName::ResumeSchedule,
        ToolName::DeleteSchedule,
        ToolName::GetMessageStatus,
    ];

    /// The scope a key needs to call this tool: what the same effect needs through the
    /// REST API. Tools that only read (`GET` routes) need `read`; every tool that records
    /// a message (a notification, a web action, a schedule change) needs `write`, as
    /// `POST /api/messages` and the schedule routes do. So a key with scope `mcp` (`read`
    /// plus the MCP endpoint) can look but not act.
    pub fn required_scope(self) -> Scope {
        match self {
            ToolName::ListCourses | ToolName::ListSchedules | ToolName::GetMessageStatus => Scope::Read,
            ToolName::SendPushNotification
            | ToolName::GetWeatherForecast
            | ToolName::GolfSearchTeeTimes
            | ToolName::GolfBookTeeTime
            | ToolName::GolfGetReservations
            | ToolName::CreateSchedule
            | ToolName::PauseSchedule
            | ToolName::ResumeSchedule
            | ToolName::DeleteSchedule => Scope::Write,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::SendPushNotification => "send_push_notification",
            ToolName::GetWeatherForecast => "get_weather_forecast",
            ToolName::GolfSearchTeeTimes => "golf_search_tee_times",
            ToolName::GolfBookTeeTime => "golf_book_tee_time",
            ToolName::GolfGetReservations => "golf_get_reservations",
            ToolName::ListCourses => "list_courses",
            ToolName::CreateSchedule => "create_schedule",
            ToolName::ListSchedules => "list_schedules",
            ToolName::PauseSchedule => "pause_schedule",
            ToolName::ResumeSchedule => "resume_schedule",
            ToolName::DeleteSchedule => "delete_schedule",
            ToolName::GetMessageStatus => "get_message_status",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    fn spec(self) -> ToolSpec {
        use schema::{input_schema as i, output_schema as o};
        let (title, description, input, output) = match self {
            ToolName::SendPushNotification => (
                "Send a push notification",
                "Send a push notification to the user's phone (ntfy) and the rez inbox. Use it to tell the user \
                 something worth interrupting them for. Waits briefly for delivery and reports the message id.",
                i::<notify::SendPushNotification>(),
                o::<notify::NotificationOutput>(),
            ),
            ToolName::GetWeatherForecast => (
                "Weather forecast",
                "Get the NOAA weather forecast (US only) for a golf course (by id or name, see list_courses) or \
                 for a latitude/longitude. Optionally include the hourly forecast around a tee time. Returns a \
                 readable summary and the structured forecast. The user also gets it as a push notification.",
                i::<web::GetWeatherForecast>(),
                o::<web::WebActionOutput>(),
            ),
            ToolName::GolfSearchTeeTimes => (
                "Search tee times",
                "Search available tee times at a golf course on one date, optionally within a time window \
                 (course-local 24-hour times) and for a number of players. Returns each tee time with the \
                 tee_sheet_id needed to book it. Does not book anything.",
                i::<web::GolfSearchTeeTimes>(),
                o::<web::WebActionOutput>(),
            ),
            ToolName::GolfBookTeeTime => (
                "Book a tee time",
                "Book one tee time (a tee_sheet_id from golf_search_tee_times) for 1–4 players with the user's \
                 account at the course. Exactly once: repeating the same call (same course, tee_sheet_id, \
                 players, holes and idempotency_key) within 24 hours returns the first booking instead of \
                 booking again. Only book what the user asked for.",
                i::<web::GolfBookTeeTime>(),
                o::<web::WebActionOutput>(),
            ),
            ToolName::GolfGetReservations => (
                "Upcoming reservations",
                "List the user's upcoming tee-time reservations at a golf course.",
                i::<web::GolfGetReservations>(),
                o::<web::WebActionOutput>(),
            ),
            ToolName::ListCourses => (
                "List golf courses",
                "List the golf courses rez knows: id, name, address, location and time zone. Pass a course id \
                 to the golf and weather tools.",
                i::<messages::ListCourses>(),
                o::<messages::CoursesOutput>(),
            ),
            ToolName::CreateSchedule => (
                "Create a schedule",
                "Create a recurring or one-off schedule (AWS EventBridge Scheduler syntax) that sends a message \
                 each time it fires. Expressions: cron(minutes hours day-of-month month day-of-week year) with \
                 day-of-week 1-7 = SUN-SAT and `?` in one of the day fields, e.g. cron(0 6 ? * FRI *); \
                 rate(2 hours); at(2026-12-24T18:00:00). Targets: notify {payload: {message, title?, \
                 priority?}}; web_action {payload: {action: weather|golf, ...}, arguments: {...}}; agent \
                 {prompt, course?, players?, auto_book?}.",
                i::<schedules::CreateSchedule>(),
                o::<schedules::ScheduleOutput>(),
            ),
            ToolName::ListSchedules => (
                "List schedules",
                "List schedules, newest first, optionally filtered by status or target type. Pass next_cursor \
                 back as cursor for the next page.",
                i::<schedules::ListSchedules>(),
                o::<schedules::SchedulesOutput>(),
            ),
            ToolName::PauseSchedule => (
                "Pause a schedule",
                "Pause a schedule: it stops firing until resumed.",
                i::<schedules::ScheduleRef>(),
                o::<schedules::ScheduleOutput>(),
            ),
            ToolName::ResumeSchedule => (
                "Resume a schedule",
                "Resume a paused schedule. It fires next at its first occurrence after now; occurrences while \
                 paused are not made up.",
                i::<schedules::ScheduleRef>(),
                o::<schedules::ScheduleOutput>(),
            ),
            ToolName::DeleteSchedule => (
                "Delete a schedule",
                "Delete a schedule for good. It never fires again.",
                i::<schedules::ScheduleRef>(),
                o::<schedules::ScheduleOutput>(),
            ),
            ToolName::GetMessageStatus => (
                "Message status",
                "Look up a message by id (every tool that acts reports one): its status, error, the result of \
                 a web action and the delivery of a notification.",
                i::<messages::GetMessageStatus>(),
                o::<messages::MessageStatusOutput>(),
            ),
        };
        let (read_only, destructive, idempotent, open_world) = match self {
            ToolName::ListCourses | ToolName::ListSchedules | ToolName::GetMessageStatus => (true, false, true, false),
            ToolName::GetWeatherForecast | ToolName::GolfSearchTeeTimes | ToolName::GolfGetReservations => {
                (true, false, true, true)
            }
            ToolName::SendPushNotification => (false, false, false, true),
            ToolName::GolfBookTeeTime => (false, false, true, true),
            ToolName::CreateSchedule => (false, false, false, false),
            ToolName::PauseSchedule | ToolName::ResumeSchedule => (false, false, true, false),
            ToolName::DeleteSchedule => (false, true, true, false),
        };
        ToolSpec {
            name: self.as_str(),
            title,
            description,
            input_schema: input,
            output_schema: output,
            read_only,
            destructive,
            idempotent,
            open_world,
        }
    }
}

struct Inner {
    services: Services,
    courses: Vec<CourseInfo>,
    options: ToolOptions,
    specs: Vec<ToolSpec>,
}

/// The tools over one set of runtime services. Cheap to clone.
#[derive(Clone)]
pub struct ToolRegistry {
    inner: Arc<Inner>,
}

impl ToolRegistry {
    pub fn new(services: Services, courses: Vec<CourseInfo>, options: ToolOptions) -> Self {
        let specs = ToolName::ALL.into_iter().map(ToolName::spec).collect();
        Self { inner: Arc::new(Inner { services, courses, options, specs }) }
    }

    /// Every tool, in a stable order.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.inner.specs
    }

    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.inner.specs.iter().find(|s| s.name == name)
    }

    /// The golf courses the tools know.
    pub fn courses(&self) -> &[CourseInfo] {
        &self.inner.courses
    }

    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Run a tool. `arguments` is the JSON object the caller sent (`None` = no arguments).
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: CallContext,
    ) -> Result<ToolResult, ToolError> {
        let tool = ToolName::parse(name).ok_or_else(|| ToolError::UnknownTool(name.chars().take(64).collect()))?;
        if let Some(scope) = ctx.scope
            && !scope.allows(tool.required_scope())
        {
            tracing::info!(tool = name, scope = %scope, "tool call refused: scope too small");
            return Ok(ToolResult::error(format!(
                "this key has scope `{scope}`, which may not call `{name}`: it needs a key with scope `{}` (create one with `rez keys create --scope {}`)",
                tool.required_scope(),
                tool.required_scope()
            )));
        }
        let started = Instant::now();
        let args = arguments.unwrap_or_default();
        let created_by = ctx.created_by;
        let t =
            Tools { services: &self.inner.services, courses: &self.inner.courses, options: self.inner.options, ctx };
        let result = match tool {
            ToolName::SendPushNotification => t.send_push_notification(args).await,
            ToolName::GetWeatherForecast => t.get_weather_forecast(args).await,
            ToolName::GolfSearchTeeTimes => t.golf_search_tee_times(args).await,
            ToolName::GolfBookTeeTime => t.golf_book_tee_time(args).await,
            ToolName::GolfGetReservations => t.golf_get_reservations(args).await,
            ToolName::ListCourses => t.list_courses(args),
            ToolName::CreateSchedule => t.create_schedule(args).await,
            ToolName::ListSchedules => t.list_schedules(args).await,
            ToolName::PauseSchedule => t.change_schedule(args, schedules::Change::Pause).await,
            ToolName::ResumeSchedule => t.change_schedule(args, schedules::Change::Resume).await,
            ToolName::DeleteSchedule => t.change_schedule(args, schedules::Change::Delete).await,
            ToolName::GetMessageStatus => t.get_message_status(args).await,
        };
        let ms = started.elapsed().as_millis() as u64;
        match &result.message_id {
            Some(id) => {
                tracing::info!(tool = name, message_id = %id, is_error = result.is_error, ms, created_by = %created_by, "tool call")
            }
            None => {
                tracing::info!(tool = name, is_error = result.is_error, ms, created_by = %created_by, "tool call")
            }
        }
        Ok(result)
    }
}

/// One call's view of the registry; the tool handlers are methods on it (one file per
/// group of tools).
pub(crate) struct Tools<'a> {
    services: &'a Services,
    courses: &'a [CourseInfo],
    options: ToolOptions,
    ctx: CallContext,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_valid_self_contained_spec() {
        let specs: Vec<ToolSpec> = ToolName::ALL.into_iter().map(ToolName::spec).collect();
        let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ToolName::ALL.len(), "names are unique");
        for s in &specs {
            assert_eq!(ToolName::parse(s.name).map(ToolName::as_str), Some(s.name));
            for schema in [&s.input_schema, &s.output_schema] {
                let v = Value::Object(schema.clone());
                assert_eq!(v["type"], "object", "{}", s.name);
                assert!(v["properties"].is_object(), "{}", s.name);
                let text = v.to_string();
                assert!(!text.contains("$ref"), "{}: {text}", s.name);
                assert!(!text.contains("\\n"), "{}: descriptions are one line: {text}", s.name);
            }
            assert_eq!(s.input_schema["additionalProperties"], Value::Bool(false), "{} refuses stray fields", s.name);
            assert!(s.description.len() > 30 && !s.description.contains("  "), "{}", s.name);
        }
        assert!(!specs.iter().any(|s| s.input_schema.contains_key("url")));
    }
}

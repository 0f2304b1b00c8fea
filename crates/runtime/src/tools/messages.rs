//! The read-only tools: `get_message_status` (what `GET /api/messages/{id}` shows: the
//! message, its web-action results and its notification's delivery) and `list_courses`.
//! They have no side effect and record nothing.

use rez_core::MessageId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::parse_args;
use super::{CourseInfo, ToolResult, Tools};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetMessageStatus {
    /// The message id a tool reported, e.g. "msg_01J...".
    message_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListCourses {}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CoursesOutput {
    courses: Vec<CourseInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct MessageStatusOutput {
    /// The message as the API shows it (id, message_type, status, created_by, error_message, ...).
    message: Value,
    /// Web-action results, oldest first (each with status, output and error_message).
    results: Vec<Value>,
    /// The inbox entry of a notification (delivery state, attempts), if it is one.
    notification: Option<Value>,
}

impl Tools<'_> {
    pub(crate) fn list_courses(&self, args: Map<String, Value>) -> ToolResult {
        if let Err(e) = parse_args::<ListCourses>(args) {
            return ToolResult::error(e);
        }
        let mut text = format!("{} course(s):", self.courses.len());
        for c in self.courses {
            text.push_str(&format!("\n- {} — {} ({}; time zone {})", c.id, c.name, c.address, c.time_zone));
        }
        ToolResult::ok(CoursesOutput { courses: self.courses.to_vec() }, text, None)
    }

    pub(crate) async fn get_message_status(&self, args: Map<String, Value>) -> ToolResult {
        let input: GetMessageStatus = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let id = match MessageId::parse(input.message_id.trim()) {
            Ok(id) => id,
            Err(e) => return ToolResult::error(format!("message_id: {}", e.message)),
        };
        let s = self.services;
        let message = match s.messages.get_message(&id).await {
            Ok(Some(m)) => m,
            Ok(None) => return ToolResult::error(format!("message_id: no message {id}")),
            Err(e) => return ToolResult::error(format!("reading the message failed: {e}")),
        };
        let results = s.results.results_for(&id).await.unwrap_or_default();
        let entry = s.inbox.get_entry(&id).await.ok().flatten();
        let mut text = format!(
            "Message {} ({}, created by {}) is {}.",
            message.id, message.message_type, message.created_by, message.status
        );
        if let Some(e) = &message.error_message {
            text.push_str(&format!(" Error: {e}."));
        }
        if let Some(r) = results.last() {
            text.push_str(&format!(" Latest result: {} {} {}.", r.action, r.operation, json_str(&r.status)));
            if let Some(e) = &r.error_message {
                text.push_str(&format!(" ({e})"));
            }
        }
        if let Some(e) = &entry {
            text.push_str(&format!(" Notification: {} after {} attempt(s).", json_str(&e.state), e.attempts));
        }
        let out = MessageStatusOutput {
            message: serde_json::to_value(&message).unwrap_or(Value::Null),
            results: results.iter().filter_map(|r| serde_json::to_value(r).ok()).collect(),
            notification: entry.and_then(|e| serde_json::to_value(e).ok()),
        };
        ToolResult::ok(out, text, None)
    }
}

/// The JSON name of a serde enum value (`success`, `inbox_only`).
fn json_str(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

//! `send_push_notification`: a `notify` message through intake, exactly as `POST
//! /api/messages` would make it; the notification processor delivers it. The tool waits
//! briefly to report whether the push went out.

use rez_core::message::{MessageType, NewMessage};
use rez_core::ports::DeliveryState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::parse_args;
use super::wait::{Settled, intake_error, pending_text};
use super::{ToolResult, Tools};

/// How urgently the notification is shown.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PriorityName {
    Min,
    Low,
    Default,
    High,
    Urgent,
}

impl PriorityName {
    fn as_str(self) -> &'static str {
        match self {
            PriorityName::Min => "min",
            PriorityName::Low => "low",
            PriorityName::Default => "default",
            PriorityName::High => "high",
            PriorityName::Urgent => "urgent",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendPushNotification {
    /// The text of the notification (at most 4096 bytes).
    message: String,
    /// A short, single-line title.
    #[serde(default)]
    title: Option<String>,
    /// How urgently the phone shows it (default: default).
    #[serde(default)]
    priority: Option<PriorityName>,
    /// Up to 10 ntfy tags; emoji short codes such as "golf" or "warning" show as emoji.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// An https URL opened when the notification is tapped.
    #[serde(default)]
    click: Option<String>,
    /// Render the message as Markdown.
    #[serde(default)]
    markdown: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NotificationOutput {
    /// The `notify` message recording this notification.
    message_id: String,
    /// The message status: completed once handled, or queued/processing if still on its way.
    status: String,
    /// delivered, inbox_only (no push server configured), failed, pending, or unknown (still queued).
    delivery: String,
}

impl Tools<'_> {
    pub(crate) async fn send_push_notification(&self, args: Map<String, Value>) -> ToolResult {
        let input: SendPushNotification = match parse_args(args) {
            Ok(i) => i,
            Err(e) => return ToolResult::error(e),
        };
        let mut payload = Map::new();
        payload.insert("message".into(), Value::String(input.message));
        if let Some(t) = input.title {
            payload.insert("title".into(), Value::String(t));
        }
        if let Some(p) = input.priority {
            payload.insert("priority".into(), Value::String(p.as_str().into()));
        }
        if let Some(tags) = input.tags.filter(|t| !t.is_empty()) {
            payload.insert("tags".into(), Value::Array(tags.into_iter().map(Value::String).collect()));
        }
        if let Some(c) = input.click {
            payload.insert("click".into(), Value::String(c));
        }
        if let Some(m) = input.markdown {
            payload.insert("markdown".into(), Value::Bool(m));
        }
        let new = NewMessage {
            message_type: MessageType::Notify,
            stage: self.services.stage,
            payload,
            arguments: Map::new(),
            idempotency_key: None,
        };
        if let Err(e) = new.validate_payload() {
            return intake_error(e.into());
        }
        let settled = match self.submit_and_wait(new, self.options.notify_wait).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        match settled {
            Settled::Completed { message, .. } => {
                let entry = self.services.inbox.get_entry(&message.id).await.ok().flatten();
                let (delivery, text) = match entry.map(|e| e.state) {
                    Some(DeliveryState::Delivered) => {
                        ("delivered", format!("Notification sent (message {}).", message.id))
                    }
                    Some(DeliveryState::InboxOnly) => (
                        "inbox_only",
                        format!(
                            "Notification stored in the rez inbox (message {}); no push server is configured, so \
                             nothing was pushed to a phone.",
                            message.id
                        ),
                    ),
                    Some(DeliveryState::Failed) => ("failed", format!("The push failed (message {}).", message.id)),
                    Some(DeliveryState::Pending) | None => {
                        ("pending", format!("Notification handled (message {}).", message.id))
                    }
                };
                let out = NotificationOutput {
                    message_id: message.id.to_string(),
                    status: message.status.to_string(),
                    delivery: delivery.into(),
                };
                ToolResult::ok(out, text, Some(message.id))
            }
            Settled::Failed { message, .. } => {
                let why = message.error_message.clone().unwrap_or_else(|| "no reason recorded".into());
                ToolResult::error_for(
                    message.id.clone(),
                    format!("The notification failed (message {}): {why}", message.id),
                )
            }
            Settled::Pending { message, picked_up } => {
                let out = NotificationOutput {
                    message_id: message.id.to_string(),
                    status: message.status.to_string(),
                    delivery: "unknown".into(),
                };
                let text = pending_text(&message, picked_up);
                ToolResult::ok(out, text, Some(message.id))
            }
        }
    }
}

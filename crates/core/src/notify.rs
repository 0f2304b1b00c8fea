//! The `notify` payload: what a push notification says and how it is shown.
//! Validated fully at intake so the notification processor never meets a payload it
//! cannot send (the prior processor panicked on a missing `message`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;

pub const MAX_MESSAGE_BYTES: usize = 4096;
pub const MAX_TITLE_BYTES: usize = 256;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_BYTES: usize = 64;
pub const MAX_CLICK_BYTES: usize = 2048;

/// ntfy priority, 1 (min) to 5 (urgent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(into = "u8", try_from = "u8")]
#[schema(value_type = u8)]
pub struct Priority(u8);

impl Priority {
    pub const DEFAULT: Priority = Priority(3);

    /// `1`–`5`, or `min|low|default|high|urgent` (ntfy's names; `max` is ntfy's alias of urgent).
    pub fn parse_value(v: &Value) -> Result<Self, ValidationError> {
        let err =
            || ValidationError::invalid("payload.priority", "must be 1–5 or one of min, low, default, high, urgent");
        match v {
            Value::Number(n) => n.as_u64().filter(|p| (1..=5).contains(p)).map(|p| Priority(p as u8)).ok_or_else(err),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "min" | "1" => Ok(Priority(1)),
                "low" | "2" => Ok(Priority(2)),
                "default" | "3" => Ok(Priority(3)),
                "high" | "4" => Ok(Priority(4)),
                "urgent" | "max" | "5" => Ok(Priority(5)),
                _ => Err(err()),
            },
            _ => Err(err()),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.0
    }
}

impl TryFrom<u8> for Priority {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        if (1..=5).contains(&v) { Ok(Priority(v)) } else { Err(format!("priority {v} is not 1–5")) }
    }
}

/// The most action buttons ntfy shows on one notification.
pub const MAX_ACTIONS: usize = 3;
pub const MAX_ACTION_LABEL_BYTES: usize = 40;

/// What a notification's button does when tapped (ntfy's action buttons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyActionKind {
    /// Open the URL.
    View,
    /// The ntfy app sends a request to the URL (`method`, POST by default).
    Http,
}

/// One action button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyAction {
    pub action: NotifyActionKind,
    pub label: String,
    pub url: String,
    /// `http` only: `POST` (default), `PUT` or `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Dismiss the notification once the action succeeded.
    #[serde(default)]
    pub clear: bool,
}

impl NotifyAction {
    fn from_value(v: &Value, at: &str) -> Result<Self, ValidationError> {
        let obj =
            v.as_object().ok_or_else(|| ValidationError::invalid(at, "must be an object {action, label, url}"))?;
        let field = |k: &str| format!("{at}.{k}");
        let action = match obj.get("action").and_then(Value::as_str) {
            Some("view") => NotifyActionKind::View,
            Some("http") => NotifyActionKind::Http,
            _ => return Err(ValidationError::invalid(field("action"), "must be view or http")),
        };
        let label = match obj.get("label").and_then(Value::as_str) {
            Some(l) if !l.trim().is_empty() && l.len() <= MAX_ACTION_LABEL_BYTES && !l.contains([',', ';', '\n']) => {
                l.to_owned()
            }
            _ => {
                return Err(ValidationError::invalid(
                    field("label"),
                    format!("must be 1–{MAX_ACTION_LABEL_BYTES} bytes without commas or semicolons"),
                ));
            }
        };
        let url = match obj.get("url").and_then(Value::as_str) {
            Some(u)
                if u.len() <= MAX_CLICK_BYTES
                    && url::Url::parse(u).map(|u| matches!(u.scheme(), "http" | "https")).unwrap_or(false) =>
            {
                u.to_owned()
            }
            _ => return Err(ValidationError::invalid(field("url"), "must be an http(s) URL")),
        };
        let method = match obj.get("method") {
            None | Some(Value::Null) => None,
            Some(Value::String(m))
                if matches!(m.as_str(), "POST" | "PUT" | "GET") && action == NotifyActionKind::Http =>
            {
                Some(m.clone())
            }
            Some(_) => {
                return Err(ValidationError::invalid(field("method"), "must be POST, PUT or GET, on http actions"));
            }
        };
        let clear = match obj.get("clear") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ValidationError::invalid(field("clear"), "must be a boolean")),
        };
        if let Some(k) = obj.keys().find(|k| !["action", "label", "url", "method", "clear"].contains(&k.as_str())) {
            return Err(ValidationError::new(
                "unknown_field",
                field(k),
                "an action is {action, label, url, method?, clear?}",
            ));
        }
        Ok(Self { action, label, url, method, clear })
    }
}

/// A validated notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyPayload {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click: Option<String>,
    #[serde(default)]
    pub markdown: bool,
    /// Overrides the topic of the configured ntfy URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Up to three action buttons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<NotifyAction>,
}

impl NotifyPayload {
    /// A plain notification with just a message.
    pub fn text(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            title: None,
            priority: None,
            tags: vec![],
            click: None,
            markdown: false,
            topic: None,
            actions: vec![],
        }
    }

    /// Validate a `payload` object of a `notify` message.
    pub fn from_payload(p: &Map<String, Value>) -> Result<Self, ValidationError> {
        const FIELDS: [&str; 8] = ["message", "title", "priority", "tags", "click", "markdown", "topic", "actions"];
        if let Some(k) = p.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(ValidationError::new(
                "unknown_field",
                format!("payload.{k}"),
                format!("unknown field; a notify payload has {}", FIELDS.join(", ")),
            ));
        }
        let message = match p.get("message") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => return Err(ValidationError::invalid("payload.message", "must not be empty")),
            None | Some(Value::Null) => return Err(ValidationError::missing("payload.message")),
            Some(_) => return Err(ValidationError::invalid("payload.message", "must be a string")),
        };
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(ValidationError::invalid(
                "payload.message",
                format!("must be at most {MAX_MESSAGE_BYTES} bytes"),
            ));
        }
        let title = opt_string(p, "title", MAX_TITLE_BYTES)?;
        if title.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err(ValidationError::invalid("payload.title", "must be a single line"));
        }
        let priority = match p.get("priority") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Priority::parse_value(v)?),
        };
        let tags = match p.get("tags") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => {
                if items.len() > MAX_TAGS {
                    return Err(ValidationError::invalid("payload.tags", format!("at most {MAX_TAGS} tags")));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match t {
                        Value::String(s)
                            if !s.is_empty() && s.len() <= MAX_TAG_BYTES && !s.contains([',', '\r', '\n']) =>
                        {
                            Ok(s.clone())
                        }
                        _ => Err(ValidationError::invalid(
                            format!("payload.tags[{i}]"),
                            format!("must be a non-empty string of at most {MAX_TAG_BYTES} bytes without commas"),
                        )),
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(_) => return Err(ValidationError::invalid("payload.tags", "must be an array of strings")),
        };
        let click = opt_string(p, "click", MAX_CLICK_BYTES)?;
        if let Some(c) = &click {
            let ok = url::Url::parse(c).map(|u| matches!(u.scheme(), "http" | "https")).unwrap_or(false);
            if !ok {
                return Err(ValidationError::invalid("payload.click", "must be an http(s) URL"));
            }
        }
        let markdown = match p.get("markdown") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ValidationError::invalid("payload.markdown", "must be a boolean")),
        };
        let topic = opt_string(p, "topic", 64)?;
        if let Some(t) = &topic
            && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(ValidationError::invalid("payload.topic", "must be 1–64 characters of A–Z, a–z, 0–9, - and _"));
        }
        let actions = match p.get("actions") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) if items.len() <= MAX_ACTIONS => items
                .iter()
                .enumerate()
                .map(|(i, a)| NotifyAction::from_value(a, &format!("payload.actions[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ValidationError::invalid(
                    "payload.actions",
                    format!("must be an array of at most {MAX_ACTIONS} actions"),
                ));
            }
        };
        Ok(Self { message, title, priority, tags, click, markdown, topic, actions })
    }
}

fn opt_string(p: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, ValidationError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => {
            Err(ValidationError::invalid(format!("payload.{name}"), format!("must be at most {max} bytes")))
        }
        Some(_) => Err(ValidationError::invalid(format!("payload.{name}"), "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Result<NotifyPayload, ValidationError> {
        NotifyPayload::from_payload(v.as_object().unwrap())
    }

    #[test]
    fn actions_are_checked() {
        let n = p(json!({"message": "m", "actions": [{"action": "http", "label": "Approve", "url": "https://rez.example/api/approvals/a/approve?token=t", "method": "POST", "clear": true}]})).unwrap();
        assert_eq!(n.actions[0].action, NotifyActionKind::Http);
        for (actions, field) in [
            (json!([{"action": "broadcast", "label": "x", "url": "https://x/"}]), "payload.actions[0].action"),
            (json!([{"action": "view", "label": "", "url": "https://x/"}]), "payload.actions[0].label"),
            (json!([{"action": "view", "label": "x", "url": "ftp://x/"}]), "payload.actions[0].url"),
            (
                json!([{"action": "view", "label": "x", "url": "https://x/", "method": "POST"}]),
                "payload.actions[0].method",
            ),
            (json!([{}, {}, {}, {}]), "payload.actions"),
        ] {
            assert_eq!(p(json!({"message": "m", "actions": actions})).unwrap_err().field, field);
        }
    }

    #[test]
    fn full_payload() {
        let n = p(json!({"message": "m", "title": "t", "priority": "high", "tags": ["golf", "warning"], "click": "https://x.cps.golf/", "markdown": true, "topic": "my_topic-1"})).unwrap();
        assert_eq!(n.priority, Some(Priority(4)));
        assert_eq!(n.tags.len(), 2);
        assert!(n.markdown);
    }

    #[test]
    fn priorities() {
        for (v, want) in [(json!(1), 1), (json!(5), 5), (json!("min"), 1), (json!("urgent"), 5), (json!("default"), 3)]
        {
            assert_eq!(Priority::parse_value(&v).unwrap().get(), want);
        }
        for v in [json!(0), json!(6), json!("loud"), json!(2.5), json!(true)] {
            assert!(Priority::parse_value(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn rejections_name_the_field() {
        for (v, field) in [
            (json!({}), "payload.message"),
            (json!({"message": ""}), "payload.message"),
            (json!({"message": 1}), "payload.message"),
            (json!({"message": "m", "title": "a\nb"}), "payload.title"),
            (json!({"message": "m", "tags": "a"}), "payload.tags"),
            (json!({"message": "m", "tags": ["a", 1]}), "payload.tags[1]"),
            (json!({"message": "m", "click": "javascript:alert(1)"}), "payload.click"),
            (json!({"message": "m", "markdown": "yes"}), "payload.markdown"),
            (json!({"message": "m", "topic": "../admin"}), "payload.topic"),
            (json!({"message": "m", "prio": 1}), "payload.prio"),
            (json!({"message": "x".repeat(MAX_MESSAGE_BYTES + 1)}), "payload.message"),
        ] {
            assert_eq!(p(v.clone()).unwrap_err().field, field, "{v}");
        }
    }
}

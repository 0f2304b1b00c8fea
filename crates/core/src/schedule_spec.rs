//! Parsing schedule create and update requests (`POST`/`PATCH /api/schedules`, the
//! `schedule_creation` message, MCP tools). Every error names its field.

use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::message::Stage;
use crate::schedule::{ScheduleExpression, Timezone};
use crate::schedules::{
    ActionAfterCompletion, MAX_DESCRIPTION_LEN, MAX_NAME_LEN, RetryPolicy, ScheduleStatus, TargetType, build_target,
};
use crate::time::Timestamp;

/// A validated create request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub name: String,
    pub description: Option<String>,
    pub schedule_expression: ScheduleExpression,
    pub timezone: Timezone,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub flexible_time_window_minutes: u32,
    pub retry_policy: RetryPolicy,
    pub action_after_completion: ActionAfterCompletion,
    pub target_type: TargetType,
    pub target: Map<String, Value>,
    pub stage: Stage,
    /// `active` (default) or `paused`.
    pub status: ScheduleStatus,
}

/// A validated partial update; `None` leaves a field unchanged. `Some(None)` clears an
/// optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub schedule_expression: Option<ScheduleExpression>,
    pub timezone: Option<Timezone>,
    pub start_date: Option<Option<Timestamp>>,
    pub end_date: Option<Option<Timestamp>>,
    pub flexible_time_window_minutes: Option<u32>,
    pub retry_policy: Option<RetryPolicy>,
    pub action_after_completion: Option<ActionAfterCompletion>,
    pub target: Option<(TargetType, Map<String, Value>)>,
    pub status: Option<ScheduleStatus>,
}

const CREATE_FIELDS: [&str; 13] = [
    "name",
    "description",
    "schedule_expression",
    "timezone",
    "start_date",
    "end_date",
    "flexible_time_window_minutes",
    "retry_policy",
    "action_after_completion",
    "target_type",
    "target",
    "stage",
    "status",
];

fn check_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ValidationError> {
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ValidationError::new(
            "unknown_field",
            k.clone(),
            format!("unknown field `{k}`; expected one of {}", allowed.join(", ")),
        ));
    }
    Ok(())
}

fn string(obj: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, ValidationError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ValidationError::invalid(name, "must not be empty")),
        Some(Value::String(s)) if s.len() > max => {
            Err(ValidationError::invalid(name, format!("must be at most {max} bytes")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::invalid(name, "must be a string")),
    }
}

fn expression(obj: &Map<String, Value>) -> Result<Option<ScheduleExpression>, ValidationError> {
    string(obj, "schedule_expression", 256)?
        .map(|e| {
            ScheduleExpression::parse(&e)
                .map_err(|err| ValidationError::new("invalid_expression", "schedule_expression", err.to_string()))
        })
        .transpose()
}

fn timezone(obj: &Map<String, Value>) -> Result<Option<Timezone>, ValidationError> {
    string(obj, "timezone", 64)?.map(|t| Timezone::parse(&t).map_err(ValidationError::from)).transpose()
}

fn date(obj: &Map<String, Value>, name: &str) -> Result<Option<Option<Timestamp>>, ValidationError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(Some(t.with_timezone(&chrono::Utc))))
            .map_err(|_| ValidationError::invalid(name, "must be an RFC 3339 timestamp, e.g. 2026-12-01T00:00:00Z")),
        Some(_) => Err(ValidationError::invalid(name, "must be an RFC 3339 timestamp string")),
    }
}

fn window(obj: &Map<String, Value>) -> Result<Option<u32>, ValidationError> {
    match obj.get("flexible_time_window_minutes") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|m| *m <= 1440)
            .map(|m| Some(m as u32))
            .ok_or_else(|| ValidationError::invalid("flexible_time_window_minutes", "must be an integer 0–1440")),
    }
}

fn retry(obj: &Map<String, Value>) -> Result<Option<RetryPolicy>, ValidationError> {
    match obj.get("retry_policy") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(r)) => {
            check_fields(r, &["maximum_retry_attempts", "maximum_event_age_seconds"])
                .map_err(|e| ValidationError::new(e.code, format!("retry_policy.{}", e.field), e.message))?;
            let d = RetryPolicy::default();
            let get = |k: &str, default: u32| -> Result<u32, ValidationError> {
                match r.get(k) {
                    None | Some(Value::Null) => Ok(default),
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| ValidationError::invalid(format!("retry_policy.{k}"), "must be a whole number")),
                }
            };
            let p = RetryPolicy {
                maximum_retry_attempts: get("maximum_retry_attempts", d.maximum_retry_attempts)?,
                maximum_event_age_seconds: get("maximum_event_age_seconds", d.maximum_event_age_seconds)?,
            };
            p.validate()?;
            Ok(Some(p))
        }
        Some(_) => Err(ValidationError::invalid("retry_policy", "must be an object")),
    }
}

fn after_completion(obj: &Map<String, Value>) -> Result<Option<ActionAfterCompletion>, ValidationError> {
    match string(obj, "action_after_completion", 16)?.as_deref() {
        None => Ok(None),
        Some("NONE") => Ok(Some(ActionAfterCompletion::None)),
        Some("DELETE") => Ok(Some(ActionAfterCompletion::Delete)),
        Some(_) => Err(ValidationError::invalid("action_after_completion", "must be NONE or DELETE")),
    }
}

fn target_type(obj: &Map<String, Value>) -> Result<Option<TargetType>, ValidationError> {
    string(obj, "target_type", 32)?
        .map(|t| {
            TargetType::parse(&t).ok_or_else(|| {
                ValidationError::invalid("target_type", "must be one of notify, web_action, agent, message")
            })
        })
        .transpose()
}

fn target(obj: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ValidationError> {
    match obj.get("target") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(t)) => Ok(Some(t.clone())),
        Some(_) => Err(ValidationError::invalid("target", "must be a JSON object")),
    }
}

fn status(obj: &Map<String, Value>) -> Result<Option<ScheduleStatus>, ValidationError> {
    match string(obj, "status", 16)?.as_deref() {
        None => Ok(None),
        Some("active") => Ok(Some(ScheduleStatus::Active)),
        Some("paused") => Ok(Some(ScheduleStatus::Paused)),
        Some(_) => Err(ValidationError::invalid("status", "may be set to active or paused")),
    }
}

fn check_dates(start: Option<Timestamp>, end: Option<Timestamp>) -> Result<(), ValidationError> {
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(ValidationError::invalid("end_date", "must be after start_date"));
    }
    Ok(())
}

impl ScheduleSpec {
    pub fn from_json(body: &Value, default_stage: Stage) -> Result<Self, ValidationError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("invalid_body", "", "the request body must be a JSON object"))?;
        check_fields(obj, &CREATE_FIELDS)?;
        Self::from_object(obj, default_stage)
    }

    /// From an object that may carry other keys (the `schedule_creation` arguments).
    pub fn from_object(obj: &Map<String, Value>, default_stage: Stage) -> Result<Self, ValidationError> {
        let name = string(obj, "name", MAX_NAME_LEN)?.ok_or_else(|| ValidationError::missing("name"))?;
        let schedule_expression = expression(obj)?.ok_or_else(|| ValidationError::missing("schedule_expression"))?;
        let target_type = target_type(obj)?.ok_or_else(|| ValidationError::missing("target_type"))?;
        let target = target(obj)?.ok_or_else(|| ValidationError::missing("target"))?;
        let stage = match string(obj, "stage", 8)? {
            None => default_stage,
            Some(s) => {
                Stage::parse(&s).ok_or_else(|| ValidationError::invalid("stage", "must be dev, stage or prod"))?
            }
        };
        build_target(target_type, &target, stage, None)?;
        let start_date = date(obj, "start_date")?.flatten();
        let end_date = date(obj, "end_date")?.flatten();
        check_dates(start_date, end_date)?;
        Ok(Self {
            name,
            description: string(obj, "description", MAX_DESCRIPTION_LEN)?,
            schedule_expression,
            timezone: timezone(obj)?.unwrap_or_default(),
            start_date,
            end_date,
            flexible_time_window_minutes: window(obj)?.unwrap_or(0),
            retry_policy: retry(obj)?.unwrap_or_default(),
            action_after_completion: after_completion(obj)?.unwrap_or_default(),
            target_type,
            target,
            stage,
            status: status(obj)?.unwrap_or(ScheduleStatus::Active),
        })
    }
}

impl SchedulePatch {
    pub fn from_json(body: &Value) -> Result<Self, ValidationError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ValidationError::new("invalid_body", "", "the request body must be a JSON object"))?;
        let allowed: Vec<&str> = CREATE_FIELDS.iter().copied().filter(|f| *f != "stage").collect();
        check_fields(obj, &allowed)?;
        Self::from_object(obj)
    }

    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, ValidationError> {
        let tt = target_type(obj)?;
        let t = target(obj)?;
        let target = match (tt, t) {
            (Some(tt), Some(t)) => Some((tt, t)),
            (None, None) => None,
            (Some(_), None) => return Err(ValidationError::missing("target")),
            (None, Some(_)) => return Err(ValidationError::missing("target_type")),
        };
        let description = match obj.get("description") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => Some(string(obj, "description", MAX_DESCRIPTION_LEN)?),
        };
        let patch = Self {
            name: string(obj, "name", MAX_NAME_LEN)?,
            description,
            schedule_expression: expression(obj)?,
            timezone: timezone(obj)?,
            start_date: date(obj, "start_date")?,
            end_date: date(obj, "end_date")?,
            flexible_time_window_minutes: window(obj)?,
            retry_policy: retry(obj)?,
            action_after_completion: after_completion(obj)?,
            target,
            status: status(obj)?,
        };
        if patch == Self::default() {
            return Err(ValidationError::new("empty_update", "", "nothing to update"));
        }
        Ok(patch)
    }

    /// Whether the patch changes when the schedule fires.
    pub fn changes_timing(&self) -> bool {
        self.schedule_expression.is_some()
            || self.timezone.is_some()
            || self.start_date.is_some()
            || self.end_date.is_some()
            || self.flexible_time_window_minutes.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(v: Value) -> Result<ScheduleSpec, ValidationError> {
        ScheduleSpec::from_json(&v, Stage::Dev)
    }

    fn valid() -> Value {
        json!({"name": "weekly", "schedule_expression": "cron(0 6 ? * FRI *)", "timezone": "America/New_York",
               "target_type": "notify", "target": {"payload": {"message": "it is Friday"}}})
    }

    #[test]
    fn accepts_a_full_spec() {
        let mut v = valid();
        v["retry_policy"] = json!({"maximum_retry_attempts": 3});
        v["flexible_time_window_minutes"] = json!(15);
        v["start_date"] = json!("2026-12-01T00:00:00Z");
        let s = create(v).unwrap();
        assert_eq!(s.timezone.name(), "America/New_York");
        assert_eq!(s.retry_policy.maximum_retry_attempts, 3);
        assert_eq!(s.retry_policy.maximum_event_age_seconds, 86_400);
        assert_eq!(s.status, ScheduleStatus::Active);
    }

    #[test]
    fn errors_name_the_field() {
        for (patch, field) in [
            (json!({"name": null}), "name"),
            (json!({"schedule_expression": "cron(0 6 * * * *)"}), "schedule_expression"),
            (json!({"timezone": "Mars/Olympus"}), "timezone"),
            (json!({"target_type": "email"}), "target_type"),
            (json!({"target": {"payload": {}}}), "target.payload.message"),
            (json!({"flexible_time_window_minutes": 2000}), "flexible_time_window_minutes"),
            (json!({"retry_policy": {"maximum_retry_attempts": 200}}), "retry_policy.maximum_retry_attempts"),
            (json!({"retry_policy": {"maximum_event_age_seconds": 10}}), "retry_policy.maximum_event_age_seconds"),
            (json!({"start_date": "2027-01-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}), "end_date"),
            (json!({"action_after_completion": "KEEP"}), "action_after_completion"),
            (json!({"status": "deleted"}), "status"),
            (json!({"cron": "x"}), "cron"),
        ] {
            let mut v = valid();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            let v = Value::Object(
                v.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(_, x)| !x.is_null())
                    .map(|(k, x)| (k.clone(), x.clone()))
                    .collect(),
            );
            assert_eq!(create(v.clone()).unwrap_err().field, field, "{v}");
        }
    }

    #[test]
    fn patches() {
        let p =
            SchedulePatch::from_json(&json!({"schedule_expression": "rate(5 minutes)", "description": null})).unwrap();
        assert!(p.changes_timing());
        assert_eq!(p.description, Some(None));
        assert_eq!(SchedulePatch::from_json(&json!({})).unwrap_err().code, "empty_update");
        assert_eq!(SchedulePatch::from_json(&json!({"target_type": "notify"})).unwrap_err().field, "target");
        assert_eq!(SchedulePatch::from_json(&json!({"stage": "prod"})).unwrap_err().code, "unknown_field");
    }
}

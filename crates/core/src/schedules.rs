//! A schedule: the stored definition of SPEC §5 and the pure rules of firing it.
//!
//! Everything here is deterministic and free of I/O, so both engines (the local timer and
//! EventBridge Scheduler on AWS) and the tests share one definition of "what should fire
//! now, and what comes next": [`plan_firing`].

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

use crate::error::ValidationError;
use crate::id::ScheduleId;
use crate::message::{CreatedBy, IdempotencyKey, MessageType, NewMessage, Stage};
use crate::schedule::{Bounds, ScheduleExpression, Timezone, next_after};
use crate::time::{Timestamp, rfc3339, serde_rfc3339, serde_rfc3339_opt};

/// At most this many occurrences are walked when catching up after downtime.
pub const MAX_CATCH_UP_WALK: u32 = 100_000;
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// What a firing produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    /// A `notify` message from the template `{payload, arguments?}`.
    Notify,
    /// A `web_action` message from the template `{payload, arguments}` (kept whole,
    /// `arguments.operation` included).
    WebAction,
    /// An agent run: `{prompt, course?, players?, auto_book?}` becomes a `scheduled`
    /// message with `arguments.operation = "agentEvent"`.
    Agent,
    /// Any valid message body `{message_type, payload?, arguments?}`.
    Message,
}

impl TargetType {
    pub const ALL: [TargetType; 4] =
        [TargetType::Notify, TargetType::WebAction, TargetType::Agent, TargetType::Message];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Notify => "notify",
            TargetType::WebAction => "web_action",
            TargetType::Agent => "agent",
            TargetType::Message => "message",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Active,
    Paused,
    /// A one-off (`at`) schedule that fired, or a schedule past its end date.
    Completed,
    Deleted,
    /// Its target can no longer be built; see `last_error`.
    Error,
}

impl ScheduleStatus {
    pub const ALL: [ScheduleStatus; 5] = [
        ScheduleStatus::Active,
        ScheduleStatus::Paused,
        ScheduleStatus::Completed,
        ScheduleStatus::Deleted,
        ScheduleStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Active => "active",
            ScheduleStatus::Paused => "paused",
            ScheduleStatus::Completed => "completed",
            ScheduleStatus::Deleted => "deleted",
            ScheduleStatus::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for ScheduleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to an `at` schedule after it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionAfterCompletion {
    #[default]
    None,
    Delete,
}

/// EventBridge Scheduler's retry policy: how long and how often a firing whose target
/// could not be reached is retried before it goes to the DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryPolicy {
    /// 0–185.
    pub maximum_retry_attempts: u32,
    /// 60–86400.
    pub maximum_event_age_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // EventBridge Scheduler's defaults.
        Self { maximum_retry_attempts: 185, maximum_event_age_seconds: 86_400 }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.maximum_retry_attempts > 185 {
            return Err(ValidationError::invalid("retry_policy.maximum_retry_attempts", "must be 0–185"));
        }
        if !(60..=86_400).contains(&self.maximum_event_age_seconds) {
            return Err(ValidationError::invalid("retry_policy.maximum_event_age_seconds", "must be 60–86400"));
        }
        Ok(())
    }
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: ScheduleId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(value_type = String, example = "cron(0 6 ? * FRI *)")]
    pub schedule_expression: ScheduleExpression,
    #[schema(value_type = String, example = "America/New_York")]
    pub timezone: Timezone,
    #[serde(default, with = "serde_rfc3339_opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_date: Option<Timestamp>,
    #[serde(default, with = "serde_rfc3339_opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_date: Option<Timestamp>,
    pub flexible_time_window_minutes: u32,
    pub retry_policy: RetryPolicy,
    pub action_after_completion: ActionAfterCompletion,
    pub target_type: TargetType,
    #[schema(value_type = Object)]
    pub target: Map<String, Value>,
    pub stage: Stage,
    pub status: ScheduleStatus,
    /// The next scheduled instant (UTC), `None` when it will not fire again.
    #[serde(default, with = "serde_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_fire_at: Option<Timestamp>,
    #[serde(default, with = "serde_rfc3339_opt", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_fired_at: Option<Timestamp>,
    pub execution_count: u64,
    /// Occurrences that were not fired (downtime beyond the catch-up window).
    pub missed_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_by: CreatedBy,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date: Timestamp,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_date: Timestamp,
    /// Increments on every update.
    pub version: u64,
}

impl Schedule {
    pub fn bounds(&self) -> Bounds {
        Bounds { start_date: self.start_date, end_date: self.end_date, anchor: self.created_date }
    }

    /// The first instant strictly after `after` at which this schedule fires.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        next_after(&self.schedule_expression, self.timezone, after, &self.bounds())
    }

    /// How late a firing may still happen: the flexible window or the maximum event age,
    /// whichever is longer.
    pub fn catch_up_window(&self) -> TimeDelta {
        let window = TimeDelta::minutes(i64::from(self.flexible_time_window_minutes));
        let age = TimeDelta::seconds(i64::from(self.retry_policy.maximum_event_age_seconds));
        window.max(age)
    }

    /// The message a firing at `scheduled_time` produces. Its idempotency key is
    /// `(schedule_id, scheduled_time)`, so one occurrence can never produce two messages.
    pub fn message_for(&self, scheduled_time: Timestamp) -> Result<NewMessage, ValidationError> {
        build_target(self.target_type, &self.target, self.stage, Some((&self.id, scheduled_time)))
    }
}

/// The idempotency key of the firing of `id` at `scheduled_time`.
pub fn firing_key(id: &ScheduleId, scheduled_time: Timestamp) -> IdempotencyKey {
    // `sch_<ULID>@<RFC 3339>`: printable ASCII, well under 255 characters.
    IdempotencyKey::parse(&format!("{id}@{}", rfc3339(&scheduled_time))).unwrap_or_else(|_| unreachable_key(id))
}

fn unreachable_key(id: &ScheduleId) -> IdempotencyKey {
    // The format above is always a valid key; this keeps the function total.
    IdempotencyKey::parse(id.as_str()).unwrap_or_else(|_| IdempotencyKey::parse("schedule").expect("static key"))
}

/// Turn a target template into a message. With `firing`, the message carries the
/// firing's idempotency key and `arguments.schedule_id` / `arguments.scheduled_time`.
pub fn build_target(
    target_type: TargetType,
    target: &Map<String, Value>,
    stage: Stage,
    firing: Option<(&ScheduleId, Timestamp)>,
) -> Result<NewMessage, ValidationError> {
    let prefix = |e: ValidationError| ValidationError::new(e.code, format!("target.{}", e.field), e.message);
    let body = match target_type {
        TargetType::Notify | TargetType::WebAction => {
            if let Some(k) = target.keys().find(|k| !["payload", "arguments"].contains(&k.as_str())) {
                return Err(ValidationError::new(
                    "unknown_field",
                    format!("target.{k}"),
                    "a notify or web_action target is a message template `{payload, arguments?}`",
                ));
            }
            let mut body = target.clone();
            body.insert(
                "message_type".into(),
                Value::String(
                    if target_type == TargetType::Notify { MessageType::Notify } else { MessageType::WebAction }
                        .as_str()
                        .into(),
                ),
            );
            body
        }
        TargetType::Agent => {
            crate::agent::AgentRequest::from_json(target, "target")?;
            let mut body = Map::new();
            body.insert("message_type".into(), Value::String(MessageType::Scheduled.as_str().into()));
            body.insert("payload".into(), Value::Object(target.clone()));
            let mut args = Map::new();
            args.insert("operation".into(), Value::String("agentEvent".into()));
            body.insert("arguments".into(), Value::Object(args));
            body
        }
        TargetType::Message => {
            check_nesting(target)?;
            let mut body = target.clone();
            body.remove("idempotency_key");
            body
        }
    };
    if !body.contains_key("stage") {
        let mut b = body;
        b.insert("stage".into(), Value::String(stage.as_str().into()));
        return finish(b, firing).map_err(prefix);
    }
    finish(body, firing).map_err(prefix)
}

/// SPEC §8: a schedule may create schedules (a `message` target that is a
/// `schedule_creation`), but not schedules that in turn create schedules — otherwise one
/// schedule could grow without bound. `target` is a `message` target; the schedule it
/// would create or update is described the way the schedule-creation consumer reads it:
/// `arguments` (its `target_type`), and `arguments.target` or else `payload`.
fn check_nesting(target: &Map<String, Value>) -> Result<(), ValidationError> {
    let creates_schedules =
        |m: &Map<String, Value>| m.get("message_type").and_then(Value::as_str) == Some("schedule_creation");
    if !creates_schedules(target) {
        return Ok(());
    }
    let Some(Value::Object(args)) = target.get("arguments") else { return Ok(()) };
    if args.get("target_type").and_then(Value::as_str) != Some(TargetType::Message.as_str()) {
        return Ok(());
    }
    let (field, inner) = match (args.get("target"), target.get("payload")) {
        (Some(Value::Object(t)), _) => ("target.arguments.target", t),
        (_, Some(Value::Object(p))) => ("target.payload", p),
        _ => return Ok(()),
    };
    if creates_schedules(inner) {
        return Err(ValidationError::new(
            "nesting_too_deep",
            format!("{field}.message_type"),
            "a schedule may create schedules, but not schedules that create schedules",
        ));
    }
    Ok(())
}

fn finish(body: Map<String, Value>, firing: Option<(&ScheduleId, Timestamp)>) -> Result<NewMessage, ValidationError> {
    let mut new = NewMessage::from_json(&Value::Object(body), Stage::Dev)?;
    if let Some((id, at)) = firing {
        new.idempotency_key = Some(firing_key(id, at));
        new.arguments.entry("schedule_id").or_insert_with(|| Value::String(id.to_string()));
        new.arguments.entry("scheduled_time").or_insert_with(|| Value::String(rfc3339(&at)));
    }
    Ok(new)
}

/// What the engine should do with a schedule that is due at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringPlan {
    /// The occurrence to fire now, if any (its scheduled time, not `now`).
    pub fire: Option<Timestamp>,
    /// Occurrences skipped without firing (downtime beyond the catch-up window).
    pub missed: u64,
    /// The next occurrence after `now`; `None` when the schedule is done.
    pub next_fire_at: Option<Timestamp>,
}

/// Decide what to fire for a schedule whose `next_fire_at` is at or before `now`.
///
/// Catch-up policy (SPEC §5): if several occurrences passed (downtime), only the latest
/// is fired, and only if it is within [`Schedule::catch_up_window`] of `now`; the others
/// are counted as missed. A single due occurrence is fired if within the window, else it
/// is missed too.
pub fn plan_firing(s: &Schedule, now: Timestamp) -> FiringPlan {
    let Some(first) = s.next_fire_at.filter(|t| *t <= now) else {
        return FiringPlan { fire: None, missed: 0, next_fire_at: s.next_fire_at };
    };
    let mut latest = first;
    let mut passed: u64 = 1;
    let mut next = s.next_after(first);
    while let Some(t) = next {
        if t > now || passed >= u64::from(MAX_CATCH_UP_WALK) {
            break;
        }
        latest = t;
        passed += 1;
        next = s.next_after(t);
    }
    // After a capped walk, jump straight past `now`.
    let next_fire_at = match next {
        Some(t) if t <= now => s.next_after(now),
        other => other,
    };
    if now - latest <= s.catch_up_window() {
        FiringPlan { fire: Some(latest), missed: passed - 1, next_fire_at }
    } else {
        FiringPlan { fire: None, missed: passed, next_fire_at }
    }
}

/// When the engine should actually fire the occurrence at `next`: EventBridge spreads a
/// firing over the flexible time window; locally the offset is derived from the schedule
/// id and the occurrence, so it is stable across restarts and engines.
pub fn due_at(id: &ScheduleId, next: Timestamp, window_minutes: u32) -> Timestamp {
    if window_minutes == 0 {
        return next;
    }
    let window_ms = i64::from(window_minutes) * 60_000;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes().chain(next.timestamp_millis().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    next + TimeDelta::milliseconds((h % window_ms as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn schedule(expr: &str, next: Option<Timestamp>) -> Schedule {
        let created = at(2026, 1, 1, 0, 0);
        Schedule {
            id: ScheduleId::new(created),
            name: "t".into(),
            description: None,
            schedule_expression: ScheduleExpression::parse(expr).unwrap(),
            timezone: Timezone::UTC,
            start_date: None,
            end_date: None,
            flexible_time_window_minutes: 0,
            retry_policy: RetryPolicy { maximum_retry_attempts: 3, maximum_event_age_seconds: 3600 },
            action_after_completion: ActionAfterCompletion::None,
            target_type: TargetType::Notify,
            target: json!({"payload": {"message": "hi"}}).as_object().unwrap().clone(),
            stage: Stage::Dev,
            status: ScheduleStatus::Active,
            next_fire_at: next,
            last_fired_at: None,
            execution_count: 0,
            missed_count: 0,
            last_error: None,
            created_by: CreatedBy::Api,
            created_date: created,
            updated_date: created,
            version: 1,
        }
    }

    #[test]
    fn on_time_fires_and_advances() {
        let s = schedule("cron(0 * * * ? *)", Some(at(2026, 1, 1, 5, 0)));
        let p = plan_firing(&s, at(2026, 1, 1, 5, 0) + TimeDelta::milliseconds(3));
        assert_eq!(
            p,
            FiringPlan { fire: Some(at(2026, 1, 1, 5, 0)), missed: 0, next_fire_at: Some(at(2026, 1, 1, 6, 0)) }
        );
    }

    #[test]
    fn not_due_does_nothing() {
        let s = schedule("cron(0 * * * ? *)", Some(at(2026, 1, 1, 5, 0)));
        let p = plan_firing(&s, at(2026, 1, 1, 4, 59));
        assert_eq!(p.fire, None);
        assert_eq!(p.next_fire_at, Some(at(2026, 1, 1, 5, 0)));
    }

    #[test]
    fn downtime_fires_latest_within_window_and_counts_the_rest() {
        // Hourly; down from 05:00 to 09:30; the 09:00 occurrence is 30 min old (< 1 h age).
        let s = schedule("cron(0 * * * ? *)", Some(at(2026, 1, 1, 5, 0)));
        let p = plan_firing(&s, at(2026, 1, 1, 9, 30));
        assert_eq!(
            p,
            FiringPlan { fire: Some(at(2026, 1, 1, 9, 0)), missed: 4, next_fire_at: Some(at(2026, 1, 1, 10, 0)) }
        );
    }

    #[test]
    fn downtime_beyond_window_misses_everything() {
        let s = schedule("cron(0 6 * * ? *)", Some(at(2026, 1, 1, 6, 0)));
        let p = plan_firing(&s, at(2026, 1, 3, 12, 0));
        assert_eq!(p, FiringPlan { fire: None, missed: 3, next_fire_at: Some(at(2026, 1, 4, 6, 0)) });
    }

    #[test]
    fn at_schedule_completes() {
        let s = schedule("at(2026-01-01T05:00:00)", Some(at(2026, 1, 1, 5, 0)));
        let p = plan_firing(&s, at(2026, 1, 1, 5, 0));
        assert_eq!(p, FiringPlan { fire: Some(at(2026, 1, 1, 5, 0)), missed: 0, next_fire_at: None });
    }

    #[test]
    fn long_downtime_walk_is_capped() {
        let s = schedule("rate(1 minute)", Some(at(2026, 1, 1, 0, 0)));
        let now = at(2026, 12, 1, 0, 0);
        let p = plan_firing(&s, now);
        assert!(p.next_fire_at.unwrap() > now);
        assert!(p.missed >= u64::from(MAX_CATCH_UP_WALK) - 1);
    }

    #[test]
    fn targets_keep_the_template_whole() {
        let id = ScheduleId::new(at(2026, 1, 1, 0, 0));
        let t = json!({"payload": {"action": "golf", "course": "birdsfoot"}, "arguments": {"operation": "search_tee_times", "players": 4}});
        let m =
            build_target(TargetType::WebAction, t.as_object().unwrap(), Stage::Prod, Some((&id, at(2026, 2, 1, 6, 0))))
                .unwrap();
        assert_eq!(m.message_type, MessageType::WebAction);
        assert_eq!(m.arguments["operation"], "search_tee_times");
        assert_eq!(m.arguments["players"], 4);
        assert_eq!(m.arguments["schedule_id"], id.as_str());
        assert_eq!(m.stage, Stage::Prod);
        assert_eq!(m.idempotency_key.unwrap().as_str(), format!("{id}@2026-02-01T06:00:00.000Z"));

        let a = json!({"prompt": "book Saturday", "course": "Birdsfoot", "players": 4, "auto_book": true});
        let m = build_target(TargetType::Agent, a.as_object().unwrap(), Stage::Dev, None).unwrap();
        assert_eq!(m.message_type, MessageType::Scheduled);
        assert_eq!(m.arguments["operation"], "agentEvent");
        assert_eq!(m.payload["prompt"], "book Saturday");

        for (tt, bad, field) in [
            (TargetType::Notify, json!({"payload": {}}), "target.payload.message"),
            (TargetType::Notify, json!({"message": "x"}), "target.message"),
            (TargetType::Agent, json!({"course": "x"}), "target.prompt"),
            (TargetType::Agent, json!({"prompt": "x", "players": 5}), "target.players"),
            (TargetType::Message, json!({"message_type": "nope"}), "target.message_type"),
        ] {
            assert_eq!(build_target(tt, bad.as_object().unwrap(), Stage::Dev, None).unwrap_err().field, field, "{bad}");
        }
    }

    proptest! {
        /// Whatever the downtime, a plan fires at most one occurrence, never one in the
        /// future, and always moves `next_fire_at` past `now`.
        #[test]
        fn plans_are_sane(minutes in 1u32..120, down in 0i64..100_000, age in 60u32..86_400) {
            let expr = if minutes == 1 { "rate(1 minute)".to_owned() } else { format!("rate({minutes} minutes)") };
            let mut s = schedule(&expr, Some(at(2026, 1, 1, 0, 0)));
            s.retry_policy.maximum_event_age_seconds = age;
            let now = at(2026, 1, 1, 0, 0) + TimeDelta::minutes(down);
            let p = plan_firing(&s, now);
            if let Some(f) = p.fire {
                prop_assert!(f <= now);
                prop_assert!(now - f <= s.catch_up_window());
            }
            prop_assert!(p.next_fire_at.is_none_or(|n| n > now));
            let total = down / i64::from(minutes) + 1;
            prop_assert_eq!(p.missed + u64::from(p.fire.is_some()), total as u64);
        }
    }
    #[test]
    fn a_schedule_may_create_schedules_but_not_ones_that_create_schedules() {
        let plain = json!({"payload": {"message": "hi"}});
        let creates = |inner_type: &str, inner: Value| {
            json!({"message_type": "schedule_creation", "payload": inner,
                   "arguments": {"action": "create", "name": "n", "schedule_expression": "rate(1 hour)", "target_type": inner_type}})
        };
        let one_level = creates("notify", plain.clone());
        assert!(build_target(TargetType::Message, one_level.as_object().unwrap(), Stage::Dev, None).is_ok());
        let two_levels = creates("message", creates("notify", plain.clone()));
        let e = build_target(TargetType::Message, two_levels.as_object().unwrap(), Stage::Dev, None).unwrap_err();
        assert_eq!(e.code, "nesting_too_deep");
        assert_eq!(e.field, "target.payload.message_type");
        // The inner target given as `arguments.target` is read the same way.
        let mut via_args = creates("message", json!({}));
        via_args["arguments"]["target"] = creates("notify", plain);
        let e = build_target(TargetType::Message, via_args.as_object().unwrap(), Stage::Dev, None).unwrap_err();
        assert_eq!(e.field, "target.arguments.target.message_type");
    }
}

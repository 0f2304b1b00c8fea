//! EventBridge Scheduler as the [`ScheduleEngine`]: every stored schedule that can still
//! fire has one EventBridge schedule in the stage's schedule group, and what a firing
//! delivers to the schedule-creation queue is parsed back by [`parse_firing`].
//!
//! # Mapping
//!
//! - Name: the schedule id itself (`sch_<ULID>`, 30 characters of `[0-9A-Z_a-z]`, within
//!   EventBridge's `[0-9a-zA-Z-_.]{1,64}`), so no lookup table is needed.
//! - Expression and zone: our expressions *are* EventBridge syntax; the canonical text
//!   and the schedule's IANA zone are sent as they are.
//! - State: `active` → `ENABLED`, `paused` → `DISABLED`; `completed`, `deleted` and
//!   `error` schedules (and schedules past their end date) are deleted from EventBridge,
//!   since they can never fire again.
//! - Start date: EventBridge refuses a start date more than 5 minutes in the past, so a
//!   past start date is left out (it means the same: "may fire from now on"). For a rate
//!   expression the start date is the *first occurrence*, so it is set to our own next
//!   occurrence (rounded up to the second): EventBridge then fires in the same phase as
//!   the local engine, and updating (pausing, resuming) a rate schedule does not shift
//!   its phase. Dates are sent in whole seconds.
//! - Target: the schedule-creation SQS queue, sent to with the scheduler role; the
//!   queue's DLQ receives firings EventBridge could not deliver within the retry policy.
//! - `UpdateSchedule` replaces the whole definition, so [`EventBridgeEngine::sync`] always
//!   sends all of it (create first; on `ConflictException`, update).
//!
//! # What a firing delivers
//!
//! The target input is a small JSON document, [`target_input`]:
//!
//! ```json
//! {"kind":"schedule_firing","schedule_id":"sch_…","schedule_version":3,
//!  "scheduled_time":"<aws.scheduler.scheduled-time>","execution_id":"<aws.scheduler.execution-id>"}
//! ```
//!
//! EventBridge substitutes the two context attributes when it fires. The document is
//! deliberately **not** a message (not a `scheduled` message, nor any other type):
//!
//! - a message on a queue is a stored message (an id, a status, a record in the messages
//!   table) that the consumer completes or fails; EventBridge cannot create one, and a
//!   message-shaped body without a stored record would break that bookkeeping;
//! - `scheduled` already means "an agent run produced by a firing", so reusing it would
//!   make the consumer guess;
//! - the message must be built from the schedule as stored *when it fires* (its target
//!   may have changed, it may have been paused a second ago), atomically with the
//!   schedule's new state: `ScheduleStore::fire` with a message from
//!   `Schedule::message_for(scheduled_time)`, whose idempotency key is
//!   `(schedule_id, scheduled_time)` (`rez_core::schedules::firing_key`). EventBridge
//!   retries and at-least-once delivery therefore never produce two messages.
//!
//! So the scheduler function recognises a firing by its body: [`parse_firing`] returns
//! [`FiringParseError::NotAFiring`] for anything without `"kind": "schedule_firing"`
//! (an ordinary message published to the queue), and any other error means "this is a
//! firing, but broken" (fail it permanently). The same holds for firings redriven from
//! the DLQ. A firing whose placeholders were not substituted (a manual test invoke of
//! the target, or a copy of the input) is [`FiringParseError::Unsubstituted`].
//!
//! `schedule_version` is the version EventBridge was last synced with. Firings bump the
//! stored version without re-syncing, so the stored version is normally *higher*; a
//! stored version *lower* than the firing's means the store has not caught up yet.
//!
//! moto stores schedules but never fires them; firing is tested in-process.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_scheduler::primitives::DateTime as AwsDateTime;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion as AwsActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy as AwsRetryPolicy, ScheduleState, Target,
};
use rez_core::ScheduleId;
use rez_core::clock::{Clock, SystemClock};
use rez_core::message::IdempotencyKey;
use rez_core::ports::{ScheduleEngine, StoreError, StoreResult};
use rez_core::routing::QueueName;
use rez_core::schedule::ScheduleKind;
use rez_core::schedules::{ActionAfterCompletion, RetryPolicy, Schedule, ScheduleStatus, firing_key};
use rez_core::time::Timestamp;
use serde_json::{Map, Value};

use crate::config::QueueAddress;
use crate::error::backend;
use crate::{Clients, Names};

/// The `kind` that marks a target input as a schedule firing.
pub const FIRING_KIND: &str = "schedule_firing";
/// EventBridge Scheduler's context attribute for the scheduled time of a firing.
pub const SCHEDULED_TIME_PLACEHOLDER: &str = "<aws.scheduler.scheduled-time>";
/// EventBridge Scheduler's context attribute for the id of one execution.
pub const EXECUTION_ID_PLACEHOLDER: &str = "<aws.scheduler.execution-id>";
/// Longest EventBridge schedule description.
const MAX_DESCRIPTION_LEN: usize = 512;

/// What one EventBridge firing delivered, parsed from the queue message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledFiring {
    pub schedule_id: ScheduleId,
    /// The occurrence EventBridge fired (not when it ran: the flexible window and
    /// retries make that later). Stable across EventBridge's retries.
    pub scheduled_time: Timestamp,
    /// EventBridge's id of this execution, for logs and tracing.
    pub execution_id: String,
    /// The schedule version EventBridge was last synced with.
    pub version: u64,
}

impl ScheduledFiring {
    /// The idempotency key of the message this firing produces (core's
    /// [`firing_key`]).
    pub fn idempotency_key(&self) -> IdempotencyKey {
        firing_key(&self.schedule_id, self.scheduled_time)
    }
}

/// Why a queue message body is not a usable firing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiringParseError {
    /// The body is not JSON at all.
    #[error("the message body is not JSON: {0}")]
    NotJson(String),
    /// JSON without `"kind": "schedule_firing"`: not a firing (an ordinary message).
    #[error("not a schedule firing (no \"kind\": \"{FIRING_KIND}\")")]
    NotAFiring,
    /// A context attribute was delivered literally: the input was not sent by
    /// EventBridge Scheduler firing the schedule (e.g. a manual test invoke).
    #[error(
        "schedule firing field `{field}` still holds the placeholder {placeholder}: EventBridge Scheduler did not \
         substitute it, so this was not sent by a schedule firing (a manual test invoke?)"
    )]
    Unsubstituted { field: &'static str, placeholder: &'static str },
    /// A field is missing or malformed.
    #[error("schedule firing field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The target input of `schedule`: the firing document described in the module docs,
/// with EventBridge's context attributes as literal placeholders.
pub fn target_input(schedule: &Schedule) -> String {
    let mut doc = Map::new();
    doc.insert("kind".into(), Value::String(FIRING_KIND.into()));
    doc.insert("schedule_id".into(), Value::String(schedule.id.to_string()));
    doc.insert("schedule_version".into(), Value::from(schedule.version));
    doc.insert("scheduled_time".into(), Value::String(SCHEDULED_TIME_PLACEHOLDER.into()));
    doc.insert("execution_id".into(), Value::String(EXECUTION_ID_PLACEHOLDER.into()));
    Value::Object(doc).to_string()
}

/// Parse a queue message body as a firing (see the module docs for how to tell a firing
/// from an ordinary message).
pub fn parse_firing(body: &str) -> Result<ScheduledFiring, FiringParseError> {
    let value: Value = serde_json::from_str(body).map_err(|e| FiringParseError::NotJson(e.to_string()))?;
    let Some(doc) = value.as_object() else { return Err(FiringParseError::NotAFiring) };
    if doc.get("kind").and_then(Value::as_str) != Some(FIRING_KIND) {
        return Err(FiringParseError::NotAFiring);
    }
    let invalid = |field: &'static str, reason: &str| FiringParseError::Invalid { field, reason: reason.to_owned() };
    let text = |field: &'static str| -> Result<&str, FiringParseError> {
        match doc.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            None | Some(Value::Null) => Err(invalid(field, "missing")),
            Some(_) => Err(invalid(field, "must be a string")),
        }
    };
    // A placeholder left as is: any `<aws.scheduler.…>` attribute, not only ours.
    let substituted = |field: &'static str, placeholder: &'static str, raw: &str| {
        if raw.starts_with("<aws.scheduler.") {
            Err(FiringParseError::Unsubstituted { field, placeholder })
        } else {
            Ok(())
        }
    };

    let id_raw = text("schedule_id")?;
    let schedule_id = ScheduleId::parse(id_raw).map_err(|e| invalid("schedule_id", &e.message))?;

    let version = match doc.get("schedule_version") {
        Some(v) => {
            v.as_u64().filter(|n| *n >= 1).ok_or_else(|| invalid("schedule_version", "must be an integer ≥ 1"))?
        }
        None => return Err(invalid("schedule_version", "missing")),
    };

    let time_raw = text("scheduled_time")?;
    substituted("scheduled_time", SCHEDULED_TIME_PLACEHOLDER, time_raw)?;
    let scheduled_time = chrono::DateTime::parse_from_rfc3339(time_raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| FiringParseError::Invalid { field: "scheduled_time", reason: format!("not RFC 3339: {e}") })?;

    let execution_id = text("execution_id")?;
    substituted("execution_id", EXECUTION_ID_PLACEHOLDER, execution_id)?;
    if execution_id.trim().is_empty() {
        return Err(invalid("execution_id", "empty"));
    }

    Ok(ScheduledFiring { schedule_id, scheduled_time, execution_id: execution_id.to_owned(), version })
}

/// An EventBridge schedule as `GetSchedule` returns it (what the tests check).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSchedule {
    pub name: String,
    pub group: String,
    pub expression: String,
    pub timezone: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    pub description: Option<String>,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    /// `None` when the flexible time window is `OFF`.
    pub flexible_window_minutes: Option<u32>,
    pub action_after_completion: Option<String>,
    pub target_arn: String,
    pub role_arn: String,
    pub input: Option<String>,
    pub dlq_arn: Option<String>,
    pub retry_policy: Option<RetryPolicy>,
}

/// The [`ScheduleEngine`] of the AWS deployment.
#[derive(Clone)]
pub struct EventBridgeEngine {
    clients: Clients,
    names: Arc<Names>,
    clock: Arc<dyn Clock>,
}

/// Everything `CreateSchedule` / `UpdateSchedule` take, built once per sync.
struct Definition {
    expression: String,
    timezone: String,
    description: String,
    start_date: Option<AwsDateTime>,
    end_date: Option<AwsDateTime>,
    state: ScheduleState,
    window: FlexibleTimeWindow,
    action_after_completion: AwsActionAfterCompletion,
    target: Target,
}

impl EventBridgeEngine {
    pub fn new(clients: Clients, names: Names) -> Self {
        Self { clients, names: Arc::new(names), clock: Arc::new(SystemClock) }
    }

    /// Use `clock` for "now" (start dates, end dates).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    fn queue(&self) -> StoreResult<&QueueAddress> {
        self.names.queue(QueueName::ScheduleCreation).ok_or_else(|| {
            StoreError::Unavailable("no schedule-creation queue is configured (REZ_QUEUE_SCHEDULE_CREATION_*)".into())
        })
    }

    /// The full EventBridge definition of `s` at `now`; `None` if it can never fire
    /// again (so it should not exist in EventBridge).
    fn definition(&self, s: &Schedule, now: Timestamp) -> StoreResult<Option<Definition>> {
        let state = match s.status {
            ScheduleStatus::Active => ScheduleState::Enabled,
            ScheduleStatus::Paused => ScheduleState::Disabled,
            ScheduleStatus::Completed | ScheduleStatus::Deleted | ScheduleStatus::Error => return Ok(None),
        };
        if s.end_date.is_some_and(|end| end <= now) {
            return Ok(None);
        }
        let start_date = match s.schedule_expression.kind() {
            // The first occurrence: keeps EventBridge in our phase.
            ScheduleKind::Rate => match s.next_after(now - chrono::TimeDelta::milliseconds(1)) {
                Some(t) => Some(t),
                None => return Ok(None),
            },
            ScheduleKind::Cron | ScheduleKind::At => s.start_date.filter(|t| *t > now),
        };
        let queue = self.queue()?;
        let window = if s.flexible_time_window_minutes == 0 {
            FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build()
        } else {
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(to_i32(s.flexible_time_window_minutes))
                .build()
        }
        .map_err(|e| backend("scheduler flexible time window", e))?;
        let target = Target::builder()
            .arn(&queue.arn)
            .role_arn(&self.names.scheduler_role_arn)
            .input(target_input(s))
            .retry_policy(
                AwsRetryPolicy::builder()
                    .maximum_retry_attempts(to_i32(s.retry_policy.maximum_retry_attempts))
                    .maximum_event_age_in_seconds(to_i32(s.retry_policy.maximum_event_age_seconds))
                    .build(),
            )
            .dead_letter_config(DeadLetterConfig::builder().arn(&queue.dlq_arn).build())
            .build()
            .map_err(|e| backend("scheduler target", e))?;
        Ok(Some(Definition {
            expression: s.schedule_expression.to_string(),
            timezone: s.timezone.name().to_owned(),
            description: truncate(&s.name, MAX_DESCRIPTION_LEN),
            start_date: start_date.map(|t| aws_seconds(t, Rounding::Up)),
            end_date: s.end_date.map(|t| aws_seconds(t, Rounding::Down)),
            state,
            window,
            action_after_completion: match s.action_after_completion {
                ActionAfterCompletion::None => AwsActionAfterCompletion::None,
                ActionAfterCompletion::Delete => AwsActionAfterCompletion::Delete,
            },
            target,
        }))
    }

    async fn create(&self, name: &str, d: &Definition) -> Result<bool, StoreError> {
        let out = self
            .clients
            .scheduler
            .create_schedule()
            .name(name)
            .group_name(&self.names.schedule_group)
            .schedule_expression(&d.expression)
            .schedule_expression_timezone(&d.timezone)
            .description(&d.description)
            .set_start_date(d.start_date)
            .set_end_date(d.end_date)
            .state(d.state.clone())
            .flexible_time_window(d.window.clone())
            .action_after_completion(d.action_after_completion.clone())
            .target(d.target.clone())
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => Ok(false),
            Err(e) => Err(backend(&format!("scheduler create_schedule {name}"), e)),
        }
    }

    async fn update(&self, name: &str, d: &Definition) -> Result<(), StoreError> {
        self.clients
            .scheduler
            .update_schedule()
            .name(name)
            .group_name(&self.names.schedule_group)
            .schedule_expression(&d.expression)
            .schedule_expression_timezone(&d.timezone)
            .description(&d.description)
            .set_start_date(d.start_date)
            .set_end_date(d.end_date)
            .state(d.state.clone())
            .flexible_time_window(d.window.clone())
            .action_after_completion(d.action_after_completion.clone())
            .target(d.target.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| backend(&format!("scheduler update_schedule {name}"), e))
    }

    /// The EventBridge schedule of `id`, if it exists.
    pub async fn describe(&self, id: &ScheduleId) -> StoreResult<Option<RemoteSchedule>> {
        let out = match self
            .clients
            .scheduler
            .get_schedule()
            .name(id.as_str())
            .group_name(&self.names.schedule_group)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(backend(&format!("scheduler get_schedule {id}"), e)),
        };
        let target = out.target();
        Ok(Some(RemoteSchedule {
            name: out.name().unwrap_or_default().to_owned(),
            group: out.group_name().unwrap_or_default().to_owned(),
            expression: out.schedule_expression().unwrap_or_default().to_owned(),
            timezone: out.schedule_expression_timezone().map(str::to_owned),
            state: out.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            description: out.description().map(str::to_owned),
            start_date: out.start_date().and_then(chrono_time),
            end_date: out.end_date().and_then(chrono_time),
            flexible_window_minutes: out
                .flexible_time_window()
                .filter(|w| w.mode() == &FlexibleTimeWindowMode::Flexible)
                .and_then(|w| w.maximum_window_in_minutes())
                .and_then(|m| u32::try_from(m).ok()),
            action_after_completion: out.action_after_completion().map(|a| a.as_str().to_owned()),
            target_arn: target.map(|t| t.arn().to_owned()).unwrap_or_default(),
            role_arn: target.map(|t| t.role_arn().to_owned()).unwrap_or_default(),
            input: target.and_then(|t| t.input()).map(str::to_owned),
            dlq_arn: target.and_then(|t| t.dead_letter_config()).and_then(|d| d.arn()).map(str::to_owned),
            retry_policy: target.and_then(|t| t.retry_policy()).map(|r| RetryPolicy {
                maximum_retry_attempts: r.maximum_retry_attempts().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                maximum_event_age_seconds: r
                    .maximum_event_age_in_seconds()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
            }),
        }))
    }
}

#[async_trait]
impl ScheduleEngine for EventBridgeEngine {
    async fn sync(&self, schedule: &Schedule) -> StoreResult<()> {
        let id = &schedule.id;
        let Some(definition) = self.definition(schedule, self.clock.now())? else {
            tracing::debug!(schedule_id = %id, status = %schedule.status, "schedule cannot fire again; removing it from EventBridge");
            return self.remove(id).await;
        };
        if self.create(id.as_str(), &definition).await? {
            tracing::info!(schedule_id = %id, version = schedule.version, group = %self.names.schedule_group, "EventBridge schedule created");
            return Ok(());
        }
        // It exists. Never overwrite a newer definition with an older one (a late retry
        // of an earlier sync): the input carries the version it was synced from.
        if let Some(remote) = self.describe(id).await?
            && let Some(remote_version) = remote.input.as_deref().and_then(synced_version)
            && remote_version > schedule.version
        {
            tracing::info!(schedule_id = %id, version = schedule.version, remote_version, "EventBridge schedule is newer; not overwritten");
            return Ok(());
        }
        self.update(id.as_str(), &definition).await?;
        tracing::info!(schedule_id = %id, version = schedule.version, state = definition.state.as_str(), "EventBridge schedule updated");
        Ok(())
    }

    async fn remove(&self, id: &ScheduleId) -> StoreResult<()> {
        let out = self
            .clients
            .scheduler
            .delete_schedule()
            .name(id.as_str())
            .group_name(&self.names.schedule_group)
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(schedule_id = %id, "EventBridge schedule deleted");
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                tracing::debug!(schedule_id = %id, "EventBridge schedule already gone");
                Ok(())
            }
            Err(e) => Err(backend(&format!("scheduler delete_schedule {id}"), e)),
        }
    }
}

/// The `schedule_version` of a target input as stored (placeholders unsubstituted).
fn synced_version(input: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(input).ok()?;
    v.get("schedule_version").and_then(Value::as_u64)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

enum Rounding {
    Up,
    Down,
}

/// `t` in whole seconds, rounded so the window only shrinks (start up, end down).
/// Fractions would travel as floating-point epoch seconds and come back off by a
/// rounding error; EventBridge fires with 60-second precision anyway.
fn aws_seconds(t: Timestamp, rounding: Rounding) -> AwsDateTime {
    let secs = t.timestamp();
    let fraction = t.timestamp_subsec_nanos() > 0;
    AwsDateTime::from_secs(match rounding {
        Rounding::Up if fraction => secs + 1,
        _ => secs,
    })
}

fn chrono_time(t: &AwsDateTime) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use rez_core::message::{CreatedBy, Stage};
    use rez_core::schedule::{ScheduleExpression, Timezone};
    use rez_core::schedules::TargetType;
    use rez_core::time::rfc3339;
    use serde_json::json;

    fn schedule(id: ScheduleId, version: u64) -> Schedule {
        let created = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Schedule {
            id,
            name: "t".into(),
            description: None,
            schedule_expression: ScheduleExpression::parse("cron(0 6 ? * FRI *)").unwrap(),
            timezone: Timezone::parse("America/New_York").unwrap(),
            start_date: None,
            end_date: None,
            flexible_time_window_minutes: 0,
            retry_policy: RetryPolicy::default(),
            action_after_completion: ActionAfterCompletion::None,
            target_type: TargetType::Notify,
            target: json!({"payload": {"message": "hi"}}).as_object().unwrap().clone(),
            stage: Stage::Dev,
            status: ScheduleStatus::Active,
            next_fire_at: None,
            last_fired_at: None,
            execution_count: 0,
            missed_count: 0,
            last_error: None,
            created_by: CreatedBy::Api,
            created_date: created,
            updated_date: created,
            version,
        }
    }

    /// What EventBridge does at fire time.
    fn fire(input: &str, at: &str, execution: &str) -> String {
        input.replace(SCHEDULED_TIME_PLACEHOLDER, at).replace(EXECUTION_ID_PLACEHOLDER, execution)
    }

    #[test]
    fn input_carries_the_literal_placeholders_and_round_trips() {
        let id = ScheduleId::new(chrono::Utc::now());
        let input = target_input(&schedule(id.clone(), 7));
        let doc: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(doc["kind"], FIRING_KIND);
        assert_eq!(doc["schedule_id"], id.as_str());
        assert_eq!(doc["schedule_version"], 7);
        assert_eq!(doc["scheduled_time"], "<aws.scheduler.scheduled-time>");
        assert_eq!(doc["execution_id"], "<aws.scheduler.execution-id>");

        // EventBridge's format: whole seconds, `Z`.
        let body = fire(&input, "2026-02-06T11:00:00Z", "5b7c1f9e-0d6a-4c59-9c3e-2f1f5f0f7a11");
        let f = parse_firing(&body).unwrap();
        assert_eq!(f.schedule_id, id);
        assert_eq!(f.version, 7);
        assert_eq!(f.scheduled_time, chrono::Utc.with_ymd_and_hms(2026, 2, 6, 11, 0, 0).unwrap());
        assert_eq!(f.execution_id, "5b7c1f9e-0d6a-4c59-9c3e-2f1f5f0f7a11");
        assert_eq!(f.idempotency_key(), firing_key(&id, f.scheduled_time));
        assert_eq!(f.idempotency_key().as_str(), format!("{id}@2026-02-06T11:00:00.000Z"));
    }

    #[test]
    fn unsubstituted_placeholders_are_named() {
        let input = target_input(&schedule(ScheduleId::new(chrono::Utc::now()), 1));
        assert_eq!(
            parse_firing(&input),
            Err(FiringParseError::Unsubstituted { field: "scheduled_time", placeholder: SCHEDULED_TIME_PLACEHOLDER })
        );
        let half = input.replace(SCHEDULED_TIME_PLACEHOLDER, "2026-02-06T11:00:00Z");
        let err = parse_firing(&half).unwrap_err();
        assert_eq!(
            err,
            FiringParseError::Unsubstituted { field: "execution_id", placeholder: EXECUTION_ID_PLACEHOLDER }
        );
        assert!(err.to_string().contains("manual test invoke"), "{err}");
    }

    #[test]
    fn ordinary_messages_are_not_firings() {
        for body in [
            r#"{"id":"msg_01","message_type":"schedule_creation","payload":{},"arguments":{"action":"create"}}"#,
            r#"{"message_type":"scheduled","arguments":{"operation":"agentEvent"}}"#,
            r#"{"kind":"something_else","schedule_id":"sch_01"}"#,
            r#"[1, 2]"#,
            r#""text""#,
        ] {
            assert_eq!(parse_firing(body), Err(FiringParseError::NotAFiring), "{body}");
        }
        assert!(matches!(parse_firing("not json"), Err(FiringParseError::NotJson(_))));
        assert!(matches!(parse_firing(""), Err(FiringParseError::NotJson(_))));
    }

    #[test]
    fn malformed_firings_say_which_field() {
        let id = ScheduleId::new(chrono::Utc::now());
        let good = json!({
            "kind": FIRING_KIND, "schedule_id": id.as_str(), "schedule_version": 2,
            "scheduled_time": "2026-02-06T11:00:00Z", "execution_id": "e-1",
        });
        assert!(parse_firing(&good.to_string()).is_ok());
        for (field, bad) in [
            ("schedule_id", json!(null)),
            ("schedule_id", json!("msg_01J0000000000000000000000")),
            ("schedule_id", json!(42)),
            ("schedule_version", json!(0)),
            ("schedule_version", json!(-1)),
            ("schedule_version", json!("3")),
            ("scheduled_time", json!("yesterday")),
            ("scheduled_time", json!(1_700_000_000)),
            ("execution_id", json!("")),
        ] {
            let mut doc = good.clone();
            doc[field] = bad.clone();
            match parse_firing(&doc.to_string()) {
                Err(FiringParseError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{field} = {bad}: {other:?}"),
            }
            let mut doc = good.clone();
            doc.as_object_mut().unwrap().remove(field);
            assert!(
                matches!(parse_firing(&doc.to_string()), Err(FiringParseError::Invalid { field: f, .. }) if f == field),
                "{field} missing"
            );
        }
    }

    #[test]
    fn description_is_cut_at_a_character_boundary() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("short", 512), "short");
    }

    proptest! {
        /// Any schedule id, version and scheduled time survive the round trip through
        /// the target input and EventBridge's substitution.
        #[test]
        fn any_firing_round_trips(
            minted_ms in 0i64..4_102_444_800_000,
            fired_ms in 0i64..4_102_444_800_000,
            version in 1u64..u64::MAX,
            execution in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            whole_seconds in any::<bool>(),
        ) {
            let id = ScheduleId::new(chrono::DateTime::from_timestamp_millis(minted_ms).unwrap());
            let mut at = chrono::DateTime::from_timestamp_millis(fired_ms).unwrap();
            let text = if whole_seconds {
                at = chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap();
                at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                rfc3339(&at)
            };
            let body = fire(&target_input(&schedule(id.clone(), version)), &text, &execution);
            let f = parse_firing(&body).unwrap();
            prop_assert_eq!(f, ScheduledFiring { schedule_id: id, scheduled_time: at, execution_id: execution, version });
        }
    }
}

//! The EventBridge Scheduler engine against moto: what `sync` and `remove` leave in the
//! stage's schedule group.
//!
//! moto stores schedules but never fires them, so these tests check the definitions
//! only; what a firing delivers is parsed by `parse_firing` (unit tests in the module)
//! and firing itself is tested in-process.

use crate::common;

use chrono::{TimeDelta, TimeZone, Timelike, Utc};
use rez_aws::scheduler::{EXECUTION_ID_PLACEHOLDER, EventBridgeEngine, SCHEDULED_TIME_PLACEHOLDER, parse_firing};
use rez_core::ScheduleId;
use rez_core::message::{CreatedBy, Stage};
use rez_core::ports::ScheduleEngine;
use rez_core::routing::QueueName;
use rez_core::schedule::{ScheduleExpression, Timezone};
use rez_core::schedules::{ActionAfterCompletion, RetryPolicy, Schedule, ScheduleStatus, TargetType};
use serde_json::json;

fn schedule(expression: &str, zone: &str) -> Schedule {
    let now = Utc::now();
    Schedule {
        id: ScheduleId::new(now),
        name: "friday tee times".into(),
        description: Some("search Birdsfoot every Friday".into()),
        schedule_expression: ScheduleExpression::parse(expression).unwrap(),
        timezone: Timezone::parse(zone).unwrap(),
        start_date: None,
        end_date: None,
        flexible_time_window_minutes: 0,
        retry_policy: RetryPolicy { maximum_retry_attempts: 3, maximum_event_age_seconds: 3600 },
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
        created_date: now,
        updated_date: now,
        version: 1,
    }
}

async fn engine() -> EventBridgeEngine {
    let (clients, names) = common::deployment().await;
    EventBridgeEngine::new(clients, names)
}

#[tokio::test]
async fn create_sends_the_full_definition() {
    let engine = engine().await;
    let names = engine.names().clone();
    let queue = names.queue(QueueName::ScheduleCreation).unwrap().clone();
    let mut s = schedule("cron(0 6 ? * FRI *)", "America/New_York");
    s.flexible_time_window_minutes = 15;
    let end = Utc.with_ymd_and_hms(2099, 12, 31, 0, 0, 0).unwrap();
    s.end_date = Some(end);
    engine.sync(&s).await.unwrap();

    let r = engine.describe(&s.id).await.unwrap().expect("created");
    assert_eq!(r.name, s.id.as_str());
    assert_eq!(r.group, names.schedule_group);
    assert_eq!(r.expression, "cron(0 6 ? * FRI *)");
    assert_eq!(r.timezone.as_deref(), Some("America/New_York"));
    assert_eq!(r.state, "ENABLED");
    assert_eq!(r.description.as_deref(), Some("friday tee times"));
    assert_eq!(r.flexible_window_minutes, Some(15));
    assert_eq!(r.end_date, Some(end));
    assert_eq!(r.start_date, None);
    assert_eq!(r.action_after_completion.as_deref(), Some("NONE"));
    assert_eq!(r.target_arn, queue.arn);
    assert_eq!(r.role_arn, names.scheduler_role_arn);
    assert_eq!(r.dlq_arn.as_deref(), Some(queue.dlq_arn.as_str()));
    assert_eq!(r.retry_policy, Some(RetryPolicy { maximum_retry_attempts: 3, maximum_event_age_seconds: 3600 }));

    // The input holds EventBridge's context attributes literally, for it to substitute.
    let input = r.input.expect("input");
    assert!(input.contains(SCHEDULED_TIME_PLACEHOLDER), "{input}");
    assert!(input.contains(EXECUTION_ID_PLACEHOLDER), "{input}");
    let fired =
        input.replace(SCHEDULED_TIME_PLACEHOLDER, "2026-02-06T11:00:00Z").replace(EXECUTION_ID_PLACEHOLDER, "exec-1");
    let f = parse_firing(&fired).unwrap();
    assert_eq!((f.schedule_id, f.version), (s.id.clone(), 1));
}

#[tokio::test]
async fn pause_update_and_delete() {
    let engine = engine().await;
    let mut s = schedule("cron(0 6 ? * FRI *)", "Europe/London");
    engine.sync(&s).await.unwrap();

    // Paused: still there, disabled, everything else unchanged.
    s.status = ScheduleStatus::Paused;
    s.version = 2;
    engine.sync(&s).await.unwrap();
    let r = engine.describe(&s.id).await.unwrap().unwrap();
    assert_eq!(r.state, "DISABLED");
    assert_eq!(r.expression, "cron(0 6 ? * FRI *)");
    assert_eq!(r.timezone.as_deref(), Some("Europe/London"));
    assert!(r.input.unwrap().contains(r#""schedule_version":2"#));

    // Resumed with a new expression and zone: the whole definition is replaced.
    s.status = ScheduleStatus::Active;
    s.schedule_expression = ScheduleExpression::parse("cron(30 7 ? * SAT *)").unwrap();
    s.timezone = Timezone::parse("Asia/Tokyo").unwrap();
    s.retry_policy = RetryPolicy { maximum_retry_attempts: 0, maximum_event_age_seconds: 60 };
    s.version = 3;
    engine.sync(&s).await.unwrap();
    let r = engine.describe(&s.id).await.unwrap().unwrap();
    assert_eq!(r.state, "ENABLED");
    assert_eq!(r.expression, "cron(30 7 ? * SAT *)");
    assert_eq!(r.timezone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(r.retry_policy, Some(RetryPolicy { maximum_retry_attempts: 0, maximum_event_age_seconds: 60 }));
    assert_eq!(r.flexible_window_minutes, None, "window OFF");

    // A late retry of an older sync does not overwrite the newer definition.
    let mut stale = s.clone();
    stale.version = 2;
    stale.status = ScheduleStatus::Paused;
    engine.sync(&stale).await.unwrap();
    assert_eq!(engine.describe(&s.id).await.unwrap().unwrap().state, "ENABLED");

    engine.remove(&s.id).await.unwrap();
    assert_eq!(engine.describe(&s.id).await.unwrap(), None);
    // Removing again (or something never created) is fine.
    engine.remove(&s.id).await.unwrap();
    engine.remove(&ScheduleId::new(Utc::now())).await.unwrap();
}

#[tokio::test]
async fn schedules_that_cannot_fire_are_removed() {
    let engine = engine().await;
    for status in [ScheduleStatus::Completed, ScheduleStatus::Deleted, ScheduleStatus::Error] {
        let mut s = schedule("rate(5 minutes)", "UTC");
        engine.sync(&s).await.unwrap();
        assert!(engine.describe(&s.id).await.unwrap().is_some());
        s.status = status;
        s.version = 2;
        engine.sync(&s).await.unwrap();
        assert_eq!(engine.describe(&s.id).await.unwrap(), None, "{status}");
    }
    // Past its end date: never created.
    let mut s = schedule("cron(0 6 * * ? *)", "UTC");
    s.end_date = Some(Utc::now() - TimeDelta::hours(1));
    engine.sync(&s).await.unwrap();
    assert_eq!(engine.describe(&s.id).await.unwrap(), None);
}

#[tokio::test]
async fn start_dates_never_lie_in_the_past_and_rates_keep_their_phase() {
    let engine = engine().await;
    // A cron whose start date passed long ago: sent without one (AWS refuses start
    // dates more than 5 minutes old on update).
    let mut s = schedule("cron(0 6 * * ? *)", "UTC");
    s.start_date = Some(Utc::now() - TimeDelta::days(30));
    engine.sync(&s).await.unwrap();
    assert_eq!(engine.describe(&s.id).await.unwrap().unwrap().start_date, None);
    // A future start date is kept.
    let start = Utc.with_ymd_and_hms(2098, 1, 1, 0, 0, 0).unwrap();
    s.start_date = Some(start);
    s.version = 2;
    engine.sync(&s).await.unwrap();
    assert_eq!(engine.describe(&s.id).await.unwrap().unwrap().start_date, Some(start));

    // A rate starts at our own next occurrence, in the phase of its anchor (whole
    // seconds: dates are sent rounded, a start up).
    let mut r = schedule("rate(1 hour)", "UTC");
    let anchor = Utc::now().with_nanosecond(0).unwrap() - TimeDelta::minutes(150);
    r.start_date = Some(anchor);
    r.action_after_completion = ActionAfterCompletion::Delete;
    engine.sync(&r).await.unwrap();
    let remote = engine.describe(&r.id).await.unwrap().unwrap();
    let first = remote.start_date.expect("rate start date");
    assert_eq!(first, anchor + TimeDelta::minutes(180));
    // A fraction of a second rounds the start up.
    r.start_date = Some(anchor + TimeDelta::milliseconds(250));
    r.version = 2;
    engine.sync(&r).await.unwrap();
    let first = engine.describe(&r.id).await.unwrap().unwrap().start_date.unwrap();
    assert_eq!(first, anchor + TimeDelta::minutes(180) + TimeDelta::seconds(1));
    assert_eq!(remote.action_after_completion.as_deref(), Some("DELETE"));
}

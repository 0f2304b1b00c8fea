//! Managing schedules: create, update, pause, resume, delete, run now, preview. Each
//! change is a versioned, conditional write to the `ScheduleStore`, then the engine is
//! told (the local timer re-arms; on AWS the EventBridge schedule is updated).

use std::sync::Arc;

use chrono::TimeDelta;
use rez_core::ScheduleId;
use rez_core::ValidationError;
use rez_core::clock::Clock;
use rez_core::message::{CreatedBy, Message};
use rez_core::ports::{FireOutcome, Firing, Page, ScheduleEngine, ScheduleFilter, ScheduleStore, StoreError};
use rez_core::schedule::{ScheduleExpression, Timezone, occurrences};
use rez_core::schedule_spec::{SchedulePatch, ScheduleSpec};
use rez_core::schedules::{Schedule, ScheduleStatus};
use rez_core::time::Timestamp;

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Valid but impossible, e.g. an `at` in the past.
    #[error("{0}")]
    Unprocessable(String),
    /// The store already holds the most schedules allowed (SPEC §8).
    #[error("there are already {max} schedules, the most allowed; delete some first (or raise REZ_MAX_SCHEDULES)")]
    TooMany { max: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most attempts at a conditional update before giving up on a busy schedule.
const CAS_ATTEMPTS: usize = 5;

/// The default most schedules that may exist at once (SPEC §8).
pub const DEFAULT_MAX_SCHEDULES: u64 = 10_000;

#[derive(Clone)]
pub struct Schedules {
    store: Arc<dyn ScheduleStore>,
    engine: Arc<dyn ScheduleEngine>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    max_schedules: u64,
}

impl Schedules {
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        engine: Arc<dyn ScheduleEngine>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self { store, engine, clock, metrics, max_schedules: DEFAULT_MAX_SCHEDULES }
    }

    /// The most schedules that may exist at once. The count is checked before each
    /// create, so creates racing at the limit may pass it by their number (a bound on
    /// growth, not an exact quota).
    pub fn with_max_schedules(mut self, max: u64) -> Self {
        self.max_schedules = max;
        self
    }

    pub fn store(&self) -> &Arc<dyn ScheduleStore> {
        &self.store
    }

    /// The first fire instant of a schedule created or changed at `now`.
    fn first_fire(s: &Schedule, now: Timestamp) -> Option<Timestamp> {
        // Strictly after the instant just before `now`: a rate anchored at `now` fires now.
        s.next_after(now - TimeDelta::milliseconds(1))
    }

    pub async fn create(&self, spec: ScheduleSpec, created_by: CreatedBy) -> Result<Schedule, ScheduleError> {
        if self.store.count_schedules().await? >= self.max_schedules {
            return Err(ScheduleError::TooMany { max: self.max_schedules });
        }
        let now = self.clock.now();
        let mut s = Schedule {
            id: ScheduleId::new(now),
            name: spec.name,
            description: spec.description,
            schedule_expression: spec.schedule_expression,
            timezone: spec.timezone,
            start_date: spec.start_date,
            end_date: spec.end_date,
            flexible_time_window_minutes: spec.flexible_time_window_minutes,
            retry_policy: spec.retry_policy,
            action_after_completion: spec.action_after_completion,
            target_type: spec.target_type,
            target: spec.target,
            stage: spec.stage,
            status: spec.status,
            next_fire_at: None,
            last_fired_at: None,
            execution_count: 0,
            missed_count: 0,
            last_error: None,
            created_by,
            created_date: now,
            updated_date: now,
            version: 1,
        };
        s.next_fire_at = Self::first_fire(&s, now);
        if s.next_fire_at.is_none() {
            return Err(ScheduleError::Unprocessable(format!(
                "`{}` in {} never fires after now (check the expression and the start/end dates)",
                s.schedule_expression,
                s.timezone.name()
            )));
        }
        self.store.insert_schedule(&s).await?;
        self.engine.sync(&s).await?;
        tracing::info!(schedule_id = %s.id, expression = %s.schedule_expression, timezone = s.timezone.name(), "schedule created");
        Ok(s)
    }

    pub async fn get(&self, id: &ScheduleId) -> Result<Schedule, ScheduleError> {
        self.store.get_schedule(id).await?.ok_or_else(|| StoreError::NotFound(format!("schedule {id}")).into())
    }

    pub async fn list(&self, filter: &ScheduleFilter) -> Result<Page<Schedule>, ScheduleError> {
        Ok(self.store.list_schedules(filter).await?)
    }

    /// Apply `change` to the current version and store it, retrying if another writer
    /// (typically the engine firing it) got there first.
    async fn modify(
        &self,
        id: &ScheduleId,
        change: impl Fn(&mut Schedule, Timestamp) -> Result<(), ScheduleError>,
    ) -> Result<Schedule, ScheduleError> {
        for _ in 0..CAS_ATTEMPTS {
            let mut s = self.get(id).await?;
            if s.status == ScheduleStatus::Deleted {
                return Err(StoreError::NotFound(format!("schedule {id}")).into());
            }
            let expected = s.version;
            change(&mut s, self.clock.now())?;
            match self.store.update_schedule(&s, expected).await {
                Ok(updated) => {
                    self.engine.sync(&updated).await?;
                    return Ok(updated);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("schedule {id} is changing too often; retry")).into())
    }

    pub async fn update(&self, id: &ScheduleId, patch: SchedulePatch) -> Result<Schedule, ScheduleError> {
        let s = self
            .modify(id, |s, now| {
                if let Some(n) = &patch.name {
                    s.name = n.clone();
                }
                if let Some(d) = &patch.description {
                    s.description = d.clone();
                }
                if let Some(e) = &patch.schedule_expression {
                    s.schedule_expression = e.clone();
                }
                if let Some(t) = patch.timezone {
                    s.timezone = t;
                }
                if let Some(d) = patch.start_date {
                    s.start_date = d;
                }
                if let Some(d) = patch.end_date {
                    s.end_date = d;
                }
                if let (Some(st), Some(en)) = (s.start_date, s.end_date)
                    && en <= st
                {
                    return Err(ValidationError::invalid("end_date", "must be after start_date").into());
                }
                if let Some(w) = patch.flexible_time_window_minutes {
                    s.flexible_time_window_minutes = w;
                }
                if let Some(r) = patch.retry_policy {
                    s.retry_policy = r;
                }
                if let Some(a) = patch.action_after_completion {
                    s.action_after_completion = a;
                }
                if let Some((tt, t)) = &patch.target {
                    rez_core::schedules::build_target(*tt, t, s.stage, None)?;
                    s.target_type = *tt;
                    s.target = t.clone();
                }
                let resumed = patch.status == Some(ScheduleStatus::Active) && s.status != ScheduleStatus::Active;
                if let Some(st) = patch.status {
                    if !matches!(s.status, ScheduleStatus::Active | ScheduleStatus::Paused | ScheduleStatus::Error) {
                        return Err(ScheduleError::Unprocessable(format!(
                            "a {} schedule cannot be set to {st}",
                            s.status
                        )));
                    }
                    s.status = st;
                }
                if patch.changes_timing() || resumed || patch.target.is_some() {
                    s.next_fire_at = Self::first_fire(s, now);
                    if s.status == ScheduleStatus::Error {
                        s.status = ScheduleStatus::Active;
                    }
                    s.last_error = None;
                    if s.next_fire_at.is_none() && s.status == ScheduleStatus::Active {
                        return Err(ScheduleError::Unprocessable(format!(
                            "`{}` in {} never fires after now",
                            s.schedule_expression,
                            s.timezone.name()
                        )));
                    }
                }
                Ok(())
            })
            .await?;
        tracing::info!(schedule_id = %s.id, version = s.version, "schedule updated");
        Ok(s)
    }

    pub async fn pause(&self, id: &ScheduleId) -> Result<Schedule, ScheduleError> {
        self.update(id, SchedulePatch { status: Some(ScheduleStatus::Paused), ..Default::default() }).await
    }

    /// Resume: the next firing is the first occurrence after now; occurrences while
    /// paused are not fired (as on EventBridge).
    pub async fn resume(&self, id: &ScheduleId) -> Result<Schedule, ScheduleError> {
        self.update(id, SchedulePatch { status: Some(ScheduleStatus::Active), ..Default::default() }).await
    }

    pub async fn delete(&self, id: &ScheduleId) -> Result<Schedule, ScheduleError> {
        let s = self
            .modify(id, |s, _| {
                s.status = ScheduleStatus::Deleted;
                s.next_fire_at = None;
                Ok(())
            })
            .await?;
        self.engine.remove(id).await?;
        tracing::info!(schedule_id = %id, "schedule deleted");
        Ok(s)
    }

    /// Fire once now, outside the schedule's timing (counts as an execution).
    pub async fn run_now(&self, id: &ScheduleId) -> Result<Message, ScheduleError> {
        for _ in 0..CAS_ATTEMPTS {
            let s = self.get(id).await?;
            if s.status == ScheduleStatus::Deleted {
                return Err(StoreError::NotFound(format!("schedule {id}")).into());
            }
            let now = self.clock.now();
            let new = s.message_for(now)?;
            let firing = Firing {
                schedule: Box::new(s.clone()),
                message: Some(Message::create(new, CreatedBy::Scheduler, now)),
                missed: 0,
                next_fire_at: s.next_fire_at,
                status: s.status,
                last_error: None,
                at: now,
            };
            match self.store.fire(&firing).await? {
                FireOutcome::Applied { message: Some(m), .. } => {
                    self.metrics.schedule_fired(0.0);
                    tracing::info!(schedule_id = %id, message_id = %m.id, "schedule run now");
                    return Ok(m);
                }
                FireOutcome::Applied { message: None, .. } => {
                    return Err(StoreError::Corrupt("run-now applied without a message".into()).into());
                }
                FireOutcome::Stale => continue,
            }
        }
        Err(StoreError::Conflict(format!("schedule {id} is changing too often; retry")).into())
    }
}

impl Schedules {
    /// Record an occurrence fired by an external scheduler (EventBridge Scheduler on AWS)
    /// and create its message — once: the message's idempotency key is `(schedule_id,
    /// scheduled_time)`, so a redelivered or retried firing returns the first message.
    /// `None` when the schedule no longer exists or is not active (a firing that raced a
    /// pause or delete is dropped, as the local engine would not have fired it).
    pub async fn fire_occurrence(
        &self,
        id: &ScheduleId,
        scheduled_time: Timestamp,
    ) -> Result<Option<Message>, ScheduleError> {
        use rez_core::schedules::ActionAfterCompletion;
        for _ in 0..CAS_ATTEMPTS {
            let Some(s) = self.store.get_schedule(id).await? else {
                tracing::info!(schedule_id = %id, "firing of an unknown schedule dropped");
                return Ok(None);
            };
            if s.status != ScheduleStatus::Active {
                tracing::info!(schedule_id = %id, status = %s.status, "firing of a schedule that is not active dropped");
                return Ok(None);
            }
            let now = self.clock.now();
            let new = s.message_for(scheduled_time)?;
            let next_fire_at = s.next_after(scheduled_time.max(now));
            let status = match next_fire_at {
                Some(_) => s.status,
                None if s.action_after_completion == ActionAfterCompletion::Delete => ScheduleStatus::Deleted,
                None => ScheduleStatus::Completed,
            };
            let firing = Firing {
                schedule: Box::new(s.clone()),
                message: Some(Message::create(new, CreatedBy::Scheduler, now)),
                missed: 0,
                next_fire_at,
                status,
                last_error: None,
                at: now,
            };
            match self.store.fire(&firing).await? {
                FireOutcome::Applied { message, .. } => {
                    let lateness = (now - scheduled_time).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    self.metrics.schedule_fired(lateness.max(0.0));
                    if let Some(m) = &message {
                        tracing::info!(schedule_id = %id, message_id = %m.id, scheduled_time = %rez_core::time::rfc3339(&scheduled_time), "schedule fired");
                    }
                    return Ok(message);
                }
                FireOutcome::Stale => continue,
            }
        }
        Err(StoreError::Conflict(format!("schedule {id} is changing too often; retry")).into())
    }
}

/// One previewed fire time.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PreviewTime {
    /// RFC 3339, UTC.
    pub utc: String,
    /// RFC 3339 with the zone's offset at that instant.
    pub local: String,
}

/// The next `count` fire times of `expression` in `timezone` strictly after `from`.
pub fn preview(expression: &ScheduleExpression, timezone: Timezone, from: Timestamp, count: usize) -> Vec<PreviewTime> {
    let bounds = rez_core::schedule::Bounds::new(from);
    occurrences(expression, timezone, from - TimeDelta::milliseconds(1), &bounds)
        .take(count)
        .map(|t| PreviewTime {
            utc: rez_core::time::rfc3339(&t),
            local: t.with_timezone(&timezone.tz()).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        })
        .collect()
}

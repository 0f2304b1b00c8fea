//! The in-process schedule engine: one timer, armed for the earliest due schedule.
//!
//! The loop holds the engine lease (only one process fires at a time), fires everything
//! that is due, then sleeps until the next due time — or until a schedule changes
//! ([`LocalEngine::sync`]), or until the lease needs renewing. A firing is planned by
//! `rez_core::schedules::plan_firing` and applied by `ScheduleStore::fire` in one
//! transaction, conditional on the schedule's version: two engines racing on one
//! database, or a restart mid-firing, can never produce two messages for one occurrence.
//!
//! Look-ahead: when the next due time is less than [`EngineConfig::lookahead`] away, the
//! engine reads and plans what will be due then *before* it (planned as of the due
//! instant: the message's `created_date` and the schedule's `last_fired_at` are that
//! instant) and hands it to `ScheduleStore::fire_many_after` with a gate that opens at
//! the instant: the store encodes the batch meanwhile, so at the instant only the writes
//! remain. Nothing is committed before its due time, and a schedule changed in between
//! fails the version check (`Stale`) and is re-planned.
//!
//! Retry policy: if the store cannot take a firing, the schedule stays due and is retried
//! with backoff up to `maximum_retry_attempts`; past that, or past the maximum event age,
//! the occurrence is recorded as missed with the error on the schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rez_core::ScheduleId;
use rez_core::clock::Clock;
use rez_core::message::{CreatedBy, Message};
use rez_core::ports::{FireOutcome, Firing, Gate, ScheduleEngine, ScheduleStore, StoreResult};
use rez_core::schedules::{ActionAfterCompletion, Schedule, ScheduleStatus, due_at, plan_firing};
use rez_core::time::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The engine handle the management service talks to: any change re-arms the timer.
#[derive(Clone, Default)]
pub struct LocalEngine {
    wake: Arc<Notify>,
}

impl LocalEngine {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

#[async_trait]
impl ScheduleEngine for LocalEngine {
    async fn sync(&self, _schedule: &Schedule) -> StoreResult<()> {
        self.wake.notify_one();
        Ok(())
    }

    async fn remove(&self, _id: &ScheduleId) -> StoreResult<()> {
        self.wake.notify_one();
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This engine's name in the lease table.
    pub owner: String,
    pub lease_ttl: Duration,
    /// While another engine holds the lease, try to take it over this often.
    pub renew_every: Duration,
    /// While this engine holds the lease and nothing is due sooner, sleep at most this
    /// long. The lease is not renewed while idle (no write between fires): it is taken
    /// again, a write, on the tick before the next firing. Schedule changes wake the
    /// engine at once ([`LocalEngine`]; other processes' through the store's wake
    /// socket); this is only the safety net.
    pub idle_wake: Duration,
    /// Schedules fired per batch.
    pub batch: usize,
    /// How long before a due instant the schedules due then are read and planned.
    pub lookahead: Duration,
}

impl EngineConfig {
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            idle_wake: Duration::from_secs(60),
            batch: 1024,
            lookahead: Duration::from_millis(200),
        }
    }
}

/// One planned firing and what it was planned from.
struct Planned {
    firing: Firing,
    /// The occurrence fired, if any.
    fire: Option<Timestamp>,
    missed: u64,
}

pub struct Engine {
    store: Arc<dyn ScheduleStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
    /// Failed attempts per (schedule, occurrence), for the retry policy.
    attempts: HashMap<(ScheduleId, Timestamp), u32>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        config: EngineConfig,
    ) -> Self {
        Self { store, clock, metrics, config, attempts: HashMap::new() }
    }

    /// Run until `shutdown`.
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        tracing::info!(owner = %self.config.owner, "schedule engine started");
        loop {
            let sleep = match self.tick().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "schedule engine tick failed; retrying");
                    Duration::from_millis(500)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("schedule engine stopped");
    }

    /// Fire whatever is due; return how long to sleep.
    pub async fn tick(&mut self) -> StoreResult<Duration> {
        if !self.store.acquire_engine_lease(&self.config.owner, self.config.lease_ttl).await? {
            return Ok(self.config.renew_every);
        }
        let mut retry_soon = false;
        loop {
            let now = self.clock.now();
            let due = self.store.due_schedules(now, self.config.batch).await?;
            let n = due.len();
            let planned: Vec<Planned> = due.iter().map(|s| self.plan(s, now)).collect();
            retry_soon |= self.fire_batch(due, planned, None).await;
            if n < self.config.batch {
                break;
            }
        }
        if retry_soon {
            return Ok(Duration::from_millis(250));
        }
        let Some(next) = self.store.next_due().await? else {
            return Ok(self.config.idle_wake);
        };
        let until_next = self.until(next);
        if until_next > self.config.lookahead {
            return Ok((until_next - self.config.lookahead).min(self.config.idle_wake));
        }
        if !until_next.is_zero() {
            // Look-ahead: read and plan what is due at `next` now, as of `next`; the store
            // encodes it while the gate waits, and applies it once the clock reads `next`.
            // (A change or a shutdown in the meantime waits at most `lookahead`; a schedule
            // changed in between is `Stale` and re-planned on the next tick.)
            let due = self.store.due_schedules(next, self.config.batch).await?;
            let planned: Vec<Planned> = due.iter().map(|s| self.plan(s, next)).collect();
            if self.fire_batch(due, planned, Some(self.gate(next))).await {
                return Ok(Duration::from_millis(250));
            }
        }
        // Tick again now: more may be due, and the lease is renewed on the way.
        Ok(Duration::ZERO)
    }

    /// Time from now until `t` (zero if it has passed).
    fn until(&self, t: Timestamp) -> Duration {
        (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO)
    }

    /// Resolves once the clock reads `t` or later (timers may round; the clock decides).
    fn gate(&self, t: Timestamp) -> Gate {
        let clock = self.clock.clone();
        Box::pin(async move {
            loop {
                let d = (t - clock.now()).to_std().unwrap_or(Duration::ZERO);
                if d.is_zero() {
                    return;
                }
                tokio::time::sleep(d).await;
            }
        })
    }

    /// Apply planned firings in one `fire_many` (the store folds them into one commit),
    /// after `gate` if given, then settle each outcome. Returns true if any must be
    /// retried soon.
    async fn fire_batch(&mut self, due: Vec<Schedule>, planned: Vec<Planned>, gate: Option<Gate>) -> bool {
        if planned.is_empty() {
            return false;
        }
        let (firings, meta): (Vec<Firing>, Vec<(Option<Timestamp>, u64)>) =
            planned.into_iter().map(|p| (p.firing, (p.fire, p.missed))).unzip();
        let outcomes = match gate {
            Some(gate) => self.store.fire_many_after(&firings, gate).await,
            None => self.store.fire_many(&firings).await,
        };
        debug_assert_eq!(outcomes.len(), firings.len(), "fire_many returns one outcome per firing");
        let mut retry_soon = false;
        for (((s, firing), (fire, missed)), outcome) in due.iter().zip(firings).zip(meta).zip(outcomes) {
            retry_soon |= !self.settle(s, Planned { firing, fire, missed }, outcome).await;
        }
        retry_soon
    }

    /// What to apply for one due schedule.
    fn plan(&self, s: &Schedule, now: Timestamp) -> Planned {
        let plan = plan_firing(s, now);
        let status = match plan.next_fire_at {
            Some(_) => s.status,
            None if s.action_after_completion == ActionAfterCompletion::Delete => ScheduleStatus::Deleted,
            None => ScheduleStatus::Completed,
        };
        let mut firing = Firing {
            schedule: Box::new(s.clone()),
            message: None,
            missed: plan.missed,
            next_fire_at: plan.next_fire_at,
            status,
            last_error: None,
            at: now,
        };
        if let Some(t) = plan.fire {
            match s.message_for(t) {
                Ok(new) => firing.message = Some(Message::create(new, CreatedBy::Scheduler, now)),
                Err(e) => {
                    // The target no longer builds: nothing will ever fire; say why.
                    firing.status = ScheduleStatus::Error;
                    firing.next_fire_at = None;
                    firing.last_error = Some(format!("target cannot be built: {e}"));
                    self.metrics.schedule_failed();
                    tracing::error!(schedule_id = %s.id, error = %e, "schedule target is invalid");
                }
            }
        }
        Planned { firing, fire: plan.fire, missed: plan.missed }
    }

    /// Record the outcome of one firing. Returns false if it must be retried.
    async fn settle(&mut self, s: &Schedule, p: Planned, outcome: StoreResult<FireOutcome>) -> bool {
        let key = p.fire.map(|t| (s.id.clone(), t));
        match outcome {
            Ok(FireOutcome::Applied { message, .. }) => {
                if let Some(k) = &key {
                    self.attempts.remove(k);
                }
                if p.missed > 0 {
                    self.metrics.schedule_missed(p.missed);
                    tracing::warn!(schedule_id = %s.id, missed = p.missed, "occurrences missed during downtime");
                }
                if let (Some(m), Some(t)) = (message, p.fire) {
                    // Lateness: from the instant the firing was due (its scheduled time plus
                    // any flexible-window offset) to now, when its message is queued.
                    let due = if p.missed > 0 { t } else { due_at(&s.id, t, s.flexible_time_window_minutes) };
                    let lateness = (self.clock.now() - due).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    self.metrics.schedule_fired(lateness.max(0.0));
                    tracing::info!(schedule_id = %s.id, message_id = %m.id, scheduled_time = %rez_core::time::rfc3339(&t), lateness_ms = lateness * 1000.0, "schedule fired");
                }
                true
            }
            Ok(FireOutcome::Stale) => {
                tracing::debug!(schedule_id = %s.id, "schedule changed before firing; re-planning");
                true
            }
            Err(e) => {
                let Some(k) = key else { return false };
                let n = self.attempts.entry(k.clone()).or_insert(0);
                *n += 1;
                tracing::warn!(schedule_id = %s.id, attempt = *n, error = %e, "firing failed; will retry");
                if *n <= s.retry_policy.maximum_retry_attempts {
                    return false;
                }
                self.attempts.remove(&k);
                self.metrics.schedule_failed();
                let give_up = Firing {
                    message: None,
                    missed: p.firing.missed + 1,
                    last_error: Some(format!(
                        "firing at {} failed after {} attempts: {e}",
                        rez_core::time::rfc3339(&k.1),
                        s.retry_policy.maximum_retry_attempts + 1
                    )),
                    ..p.firing
                };
                if let Err(e2) = self.store.fire(&give_up).await {
                    tracing::error!(schedule_id = %s.id, error = %e2, "could not record the failed firing");
                    return false;
                }
                true
            }
        }
    }
}

//! The schedule engine under a paused tokio clock: exact fire times across DST changes,
//! pause/resume, catch-up after downtime, `at` completion, and no double fire across a
//! restart or with two engines on one store. The store is in memory (pure async), so
//! tokio's auto-advance moves virtual time exactly from one timer to the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rez_core::clock::Clock;
use rez_core::message::{CreatedBy, Message};
use rez_core::ports::*;
use rez_core::schedule_spec::ScheduleSpec;
use rez_core::schedules::{Schedule, ScheduleStatus, due_at};
use rez_core::time::Timestamp;
use rez_core::{ScheduleId, Stage};
use rez_runtime::metrics::Metrics;
use rez_runtime::scheduling::Schedules;
use rez_runtime::scheduling::engine::{Engine, EngineConfig, LocalEngine};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Wall clock driven by tokio's (pausable) clock.
struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    fn at(base: Timestamp) -> Arc<Self> {
        Arc::new(Self { base, start: tokio::time::Instant::now() })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    schedules: HashMap<ScheduleId, Schedule>,
    messages: Vec<Message>,
    keys: HashMap<String, usize>,
    lease: Option<(String, Timestamp)>,
}

/// An in-memory `ScheduleStore` with the same conditional semantics as SQLite.
struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self { inner: Mutex::default(), clock })
    }

    fn messages(&self) -> Vec<Message> {
        self.inner.lock().unwrap().messages.clone()
    }

    fn fired_times(&self) -> Vec<String> {
        self.messages().iter().map(|m| m.arguments["scheduled_time"].as_str().unwrap().to_owned()).collect()
    }

    fn due(s: &Schedule) -> Option<Timestamp> {
        match (s.status, s.next_fire_at) {
            (ScheduleStatus::Active, Some(n)) => Some(due_at(&s.id, n, s.flexible_time_window_minutes)),
            _ => None,
        }
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn insert_schedule(&self, s: &Schedule) -> StoreResult<()> {
        self.inner.lock().unwrap().schedules.insert(s.id.clone(), s.clone());
        Ok(())
    }
    async fn get_schedule(&self, id: &ScheduleId) -> StoreResult<Option<Schedule>> {
        Ok(self.inner.lock().unwrap().schedules.get(id).cloned())
    }
    async fn list_schedules(&self, _f: &ScheduleFilter) -> StoreResult<Page<Schedule>> {
        Ok(Page { items: self.inner.lock().unwrap().schedules.values().cloned().collect(), next_cursor: None })
    }
    async fn update_schedule(&self, s: &Schedule, expected: u64) -> StoreResult<Schedule> {
        let mut g = self.inner.lock().unwrap();
        let cur = g.schedules.get(&s.id).ok_or_else(|| StoreError::NotFound(s.id.to_string()))?;
        if cur.version != expected {
            return Err(StoreError::Conflict("version".into()));
        }
        let mut s = s.clone();
        s.version = expected + 1;
        g.schedules.insert(s.id.clone(), s.clone());
        Ok(s)
    }
    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        let g = self.inner.lock().unwrap();
        let mut v: Vec<_> = g.schedules.values().filter(|s| Self::due(s).is_some_and(|d| d <= now)).cloned().collect();
        v.sort_by_key(Self::due);
        v.truncate(limit);
        Ok(v)
    }
    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        Ok(self.inner.lock().unwrap().schedules.values().filter_map(Self::due).min())
    }
    async fn fire(&self, f: &Firing) -> StoreResult<FireOutcome> {
        let mut g = self.inner.lock().unwrap();
        let mut s = g.schedules.get(&f.schedule.id).cloned().ok_or_else(|| StoreError::NotFound("s".into()))?;
        if s.version != f.schedule.version {
            return Ok(FireOutcome::Stale);
        }
        let mut out = None;
        if let Some(m) = &f.message {
            let key = m.idempotency_key.as_ref().unwrap().as_str().to_owned();
            if let Some(&i) = g.keys.get(&key) {
                out = Some(g.messages[i].clone());
            } else {
                let n = g.messages.len();
                g.keys.insert(key, n);
                g.messages.push(m.clone());
                s.execution_count += 1;
                s.last_fired_at = Some(f.at);
                out = Some(m.clone());
            }
        }
        s.missed_count += f.missed;
        s.next_fire_at = f.next_fire_at;
        s.status = f.status;
        s.last_error = f.last_error.clone().or(s.last_error);
        s.version += 1;
        g.schedules.insert(s.id.clone(), s.clone());
        Ok(FireOutcome::Applied { schedule: Box::new(s), message: out })
    }
    async fn acquire_engine_lease(&self, owner: &str, ttl: Duration) -> StoreResult<bool> {
        let now = self.clock.now();
        let mut g = self.inner.lock().unwrap();
        match &g.lease {
            Some((o, until)) if o != owner && *until > now => Ok(false),
            _ => {
                g.lease = Some((owner.to_owned(), now + chrono::Duration::from_std(ttl).unwrap()));
                Ok(true)
            }
        }
    }
}

struct Rig {
    store: Arc<MemoryStore>,
    schedules: Schedules,
    engine: LocalEngine,
    clock: Arc<TokioClock>,
    metrics: Arc<Metrics>,
}

fn rig(start: Timestamp) -> Rig {
    let clock = TokioClock::at(start);
    let store = MemoryStore::new(clock.clone());
    let engine = LocalEngine::new();
    let metrics = Arc::new(Metrics::new());
    let schedules = Schedules::new(store.clone(), Arc::new(engine.clone()), clock.clone(), metrics.clone());
    Rig { store, schedules, engine, clock, metrics }
}

impl Rig {
    fn start_engine(&self, owner: &str) -> CancellationToken {
        let token = CancellationToken::new();
        let mut config = EngineConfig::new(owner);
        config.renew_every = Duration::from_secs(3600);
        config.lease_ttl = Duration::from_secs(3 * 3600);
        let e = Engine::new(self.store.clone(), self.clock.clone(), self.metrics.clone(), config);
        tokio::spawn(e.run(self.engine.waker(), token.clone()));
        token
    }

    async fn create(&self, expr: &str, tz: &str) -> Schedule {
        let spec = ScheduleSpec::from_json(
            &json!({"name": "t", "schedule_expression": expr, "timezone": tz, "target_type": "notify", "target": {"payload": {"message": "tick"}},
                    "retry_policy": {"maximum_event_age_seconds": 3600}}),
            Stage::Dev,
        )
        .unwrap();
        self.schedules.create(spec, CreatedBy::Api).await.unwrap()
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

async fn advance_to(clock: &TokioClock, t: Timestamp) {
    let d = (t - clock.now()).to_std().unwrap();
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn fires_exactly_once_at_the_first_occurrence_across_fall_back() {
    // 01:30 America/New_York happens twice on 2026-11-01 (EDT 05:30Z, then EST 06:30Z).
    let r = rig(utc(2026, 10, 31, 0, 0));
    r.create("cron(30 1 * * ? *)", "America/New_York").await;
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 11, 3, 0, 0)).await;
    assert_eq!(
        r.store.fired_times(),
        ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
    );
    // Lateness in virtual time is zero: the timer was armed for the due instant.
    assert!(r.store.messages().iter().all(|m| m.created_date.format("%M:%S").to_string() == "30:00"));
}

#[tokio::test(start_paused = true)]
async fn skips_the_nonexistent_time_at_spring_forward() {
    // 02:30 does not exist in New York on 2026-03-08.
    let r = rig(utc(2026, 3, 7, 0, 0));
    r.create("cron(30 2 * * ? *)", "America/New_York").await;
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 3, 10, 0, 0)).await;
    assert_eq!(r.store.fired_times(), ["2026-03-07T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]);
}

#[tokio::test(start_paused = true)]
async fn lord_howe_half_hour_shift_and_london() {
    let r = rig(utc(2026, 10, 2, 0, 0));
    // Lord Howe moves from +10:30 to +11 on 2026-10-04 at 02:00 local.
    r.create("cron(0 9 * * ? *)", "Australia/Lord_Howe").await;
    r.create("cron(0 9 ? * SUN *)", "Europe/London").await;
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 10, 27, 0, 0)).await;
    let times = r.store.fired_times();
    // 09:00 on 3 October is still +10:30; 09:00 on 4 October (after 02:00) is +11.
    assert!(times.contains(&"2026-10-02T22:30:00.000Z".to_owned()), "{times:?}");
    assert!(times.contains(&"2026-10-03T22:00:00.000Z".to_owned()), "{times:?}");
    assert!(!times.contains(&"2026-10-03T22:30:00.000Z".to_owned()), "{times:?}");
    // London: 09:00 BST (08:00Z) until the last Sunday of October, then GMT (09:00Z).
    assert!(times.contains(&"2026-10-18T08:00:00.000Z".to_owned()), "{times:?}");
    assert!(times.contains(&"2026-10-25T09:00:00.000Z".to_owned()), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    let s = r.create("rate(1 hour)", "UTC").await;
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 1, 1, 2, 30)).await;
    assert_eq!(r.store.messages().len(), 3); // 00:00, 01:00, 02:00
    r.schedules.pause(&s.id).await.unwrap();
    advance_to(&r.clock, utc(2026, 1, 1, 6, 30)).await;
    assert_eq!(r.store.messages().len(), 3, "nothing fires while paused");
    let resumed = r.schedules.resume(&s.id).await.unwrap();
    assert_eq!(resumed.next_fire_at, Some(utc(2026, 1, 1, 7, 0)), "resumes at the next occurrence, no backlog");
    advance_to(&r.clock, utc(2026, 1, 1, 8, 30)).await;
    assert_eq!(r.store.fired_times()[3..], ["2026-01-01T07:00:00.000Z", "2026-01-01T08:00:00.000Z"]);
    assert_eq!(r.store.get_schedule(&s.id).await.unwrap().unwrap().missed_count, 0);
}

#[tokio::test(start_paused = true)]
async fn catches_up_after_downtime_with_the_latest_occurrence_only() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    let s = r.create("cron(0 * * * ? *)", "UTC").await; // hourly, max event age 1 h
    // The engine is "down": time passes with no engine running.
    advance_to(&r.clock, utc(2026, 1, 1, 5, 20)).await;
    assert!(r.store.messages().is_empty());
    let _e = r.start_engine("a");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(r.store.fired_times(), ["2026-01-01T05:00:00.000Z"], "only the latest missed occurrence fires");
    let after = r.store.get_schedule(&s.id).await.unwrap().unwrap();
    assert_eq!(after.missed_count, 5, "00:00–04:00 are recorded as missed");
    assert_eq!(after.next_fire_at, Some(utc(2026, 1, 1, 6, 0)));
    assert_eq!(r.metrics.summary().schedules.missed, 5);
}

#[tokio::test(start_paused = true)]
async fn downtime_beyond_the_maximum_event_age_fires_nothing() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    let s = r.create("cron(0 6 * * ? *)", "UTC").await; // daily, max event age 1 h
    advance_to(&r.clock, utc(2026, 1, 3, 9, 0)).await; // 06:00 on the 1st–3rd passed; the last is 3 h old
    let _e = r.start_engine("a");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(r.store.messages().is_empty());
    let after = r.store.get_schedule(&s.id).await.unwrap().unwrap();
    assert_eq!(after.missed_count, 3);
    assert_eq!(after.next_fire_at, Some(utc(2026, 1, 4, 6, 0)));
}

#[tokio::test(start_paused = true)]
async fn at_schedules_complete_or_delete() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    let keep = r.create("at(2026-01-01T09:00:00)", "Europe/London").await;
    let spec = ScheduleSpec::from_json(
        &json!({"name": "once", "schedule_expression": "at(2026-01-01T10:00:00)", "target_type": "notify",
                "target": {"payload": {"message": "x"}}, "action_after_completion": "DELETE"}),
        Stage::Dev,
    )
    .unwrap();
    let gone = r.schedules.create(spec, CreatedBy::Api).await.unwrap();
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 1, 2, 0, 0)).await;
    assert_eq!(r.store.fired_times(), ["2026-01-01T09:00:00.000Z", "2026-01-01T10:00:00.000Z"]);
    let keep = r.store.get_schedule(&keep.id).await.unwrap().unwrap();
    assert_eq!((keep.status, keep.next_fire_at, keep.execution_count), (ScheduleStatus::Completed, None, 1));
    assert_eq!(r.store.get_schedule(&gone.id).await.unwrap().unwrap().status, ScheduleStatus::Deleted);
}

#[tokio::test(start_paused = true)]
async fn no_double_fire_across_restart_or_with_two_engines() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    r.create("rate(10 minutes)", "UTC").await;
    let a = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 1, 1, 0, 35)).await;
    assert_eq!(r.store.messages().len(), 4);
    // "Crash" engine a and start b: b waits for a's lease to expire (3 h in this rig),
    // then catches up with the latest occurrence only; nothing is fired twice.
    a.cancel();
    let _b = r.start_engine("b");
    // Two engines at once: c competes with b for the lease.
    let _c = r.start_engine("c");
    advance_to(&r.clock, utc(2026, 1, 1, 6, 0)).await;
    let times = r.store.fired_times();
    let unique: std::collections::HashSet<_> = times.iter().collect();
    assert_eq!(unique.len(), times.len(), "an occurrence fired twice: {times:?}");
    assert!(times.len() >= 4);
}

#[tokio::test(start_paused = true)]
async fn look_ahead_never_fires_early_and_a_change_in_between_is_re_planned() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    let s = r.create("at(2026-01-01T09:00:00)", "UTC").await;
    let due = utc(2026, 1, 1, 9, 0);
    let _e = r.start_engine("a");
    // Inside the look-ahead window the batch is read and planned; nothing is committed.
    advance_to(&r.clock, due - chrono::Duration::milliseconds(50)).await;
    assert!(r.store.messages().is_empty());
    // Another process changes the schedule (no wake-up): the planned firing is now stale.
    let mut changed = r.store.get_schedule(&s.id).await.unwrap().unwrap();
    changed.target = json!({"payload": {"message": "changed"}}).as_object().unwrap().clone();
    r.store.update_schedule(&changed, changed.version).await.unwrap();
    advance_to(&r.clock, due - chrono::Duration::milliseconds(1)).await;
    assert!(r.store.messages().is_empty(), "nothing is committed before its instant");
    advance_to(&r.clock, utc(2026, 1, 1, 9, 1)).await;
    let m = r.store.messages();
    assert_eq!(m.len(), 1, "fired once");
    assert_eq!(m[0].payload["message"], "changed", "re-planned from the changed schedule");
    assert_eq!(m[0].created_date, due, "stamped with the due instant, not the planning time");
    let after = r.store.get_schedule(&s.id).await.unwrap().unwrap();
    assert_eq!((after.status, after.last_fired_at, after.execution_count), (ScheduleStatus::Completed, Some(due), 1));
}

#[tokio::test(start_paused = true)]
async fn a_batch_due_together_fires_together_at_its_instant() {
    let r = rig(utc(2026, 1, 1, 0, 0));
    for _ in 0..50 {
        r.create("cron(0 6 * * ? *)", "UTC").await;
    }
    let _e = r.start_engine("a");
    advance_to(&r.clock, utc(2026, 1, 1, 6, 0) - chrono::Duration::milliseconds(1)).await;
    assert!(r.store.messages().is_empty());
    advance_to(&r.clock, utc(2026, 1, 2, 5, 0)).await;
    let m = r.store.messages();
    assert_eq!(m.len(), 50);
    assert!(m.iter().all(|m| m.created_date == utc(2026, 1, 1, 6, 0)));
}
